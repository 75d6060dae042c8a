//! Fuzz target for the `nuage` CLI's reading of the aws CLI's argument
//! syntaxes (`crates/cli/src/shorthand.rs`): shorthand
//! (`Name=tag:Name,Values=a,b`, `Tags=[{Key=k,Value=v}]`), its JSON form,
//! `--count N:M`, placements, IP permissions and literal blobs. Every
//! parser must return (never panic, never hang) and answer the same twice;
//! a structure that parses must print back through the shorthand printer
//! used here and parse to the same value.
//!
//! ```text
//! scripts/fuzz 60 cli_shorthand
//! ```
#![no_main]

use libfuzzer_sys::fuzz_target;
use nuage_fuzz::shorthand::{self as sh, Sh};

/// Prints a parsed structure back as shorthand, quoting every scalar so
/// that the printer never has to know which characters are special.
fn print_pairs(pairs: &[(String, Sh)]) -> Option<String> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        if k.is_empty() || k.chars().any(|c| "=,{}[]\"' \t\n\r".contains(c)) {
            return None;
        }
        out.push(format!("{k}={}", print(v)?));
    }
    Some(out.join(","))
}

fn print(v: &Sh) -> Option<String> {
    Some(match v {
        Sh::Str(s) if s.contains('"') || s.contains('\\') || s != s.trim() => return None,
        Sh::Str(s) => format!("\"{s}\""),
        Sh::List(l) => {
            let items: Option<Vec<String>> = l.iter().map(print).collect();
            format!("[{}]", items?.join(","))
        }
        Sh::Map(m) => format!("{{{}}}", print_pairs(m)?),
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // Blobs naming files would read this machine's files; literals only.
    if s.contains("file") {
        return;
    }
    let first = sh::parse(s);
    assert_eq!(first, sh::parse(s));
    if let (Ok(structs), false) = (&first, s.trim_start().starts_with(['{', '['])) {
        if let [pairs] = structs.as_slice() {
            if let Some(text) = print_pairs(pairs) {
                if !text.is_empty() {
                    let again = sh::parse(&text);
                    assert_eq!(again.as_ref().ok(), Some(structs), "{s:?} printed as {text:?}");
                }
            }
        }
    }
    assert_eq!(sh::parse_filters(s), sh::parse_filters(s));
    let _ = sh::parse_instance_filters(s);
    let _ = sh::parse_image_filters(s);
    let _ = sh::parse_tag_spec(s);
    let _ = sh::parse_ip_permissions(s);
    let _ = sh::parse_placement(s);
    let _ = sh::parse_count(s);
    let _ = sh::parse_user_data(s);
    let _ = sh::parse_public_key(s);
    if let Ok(f) = sh::parse_filters(s) {
        let _ = sh::instance_query(&[s.to_string()], &f.0);
    }
});
