//! Printing answers: tables for people (`-o table`, the default) or the
//! server's JSON (`-o json`).

use std::io::IsTerminal;

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN);
    // Wrap long cells on a terminal only: piped output stays one line per row.
    if std::io::stdout().is_terminal() {
        t.set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        t.set_content_arrangement(ContentArrangement::Disabled);
    }
    t.set_header(header.iter().copied());
    t
}

/// A JSON value as a table cell: strings bare, `null` empty, lists joined.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Prints JSON, pretty.
pub fn json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// A table column: its header and how to get the cell from a row.
pub struct Col<'a> {
    pub header: &'a str,
    pub get: Box<dyn Fn(&Value) -> String + 'a>,
}

impl<'a> Col<'a> {
    /// A column showing the field at a JSON pointer (`/user/name`) or key.
    pub fn field(header: &'a str, key: &'a str) -> Col<'a> {
        Col {
            header,
            get: Box::new(move |row| {
                let v = if key.starts_with('/') {
                    row.pointer(key)
                } else {
                    row.get(key)
                };
                v.map(cell).unwrap_or_default()
            }),
        }
    }

    pub fn with(header: &'a str, get: impl Fn(&Value) -> String + 'a) -> Col<'a> {
        Col {
            header,
            get: Box::new(get),
        }
    }
}

/// The table of `rows`.
pub fn table(rows: &[Value], cols: &[Col<'_>]) -> String {
    let headers: Vec<&str> = cols.iter().map(|c| c.header).collect();
    let mut t = new_table(&headers);
    for r in rows {
        t.add_row(cols.iter().map(|c| (c.get)(r)));
    }
    t.to_string()
}

/// Prints a list answer: the JSON as is, or a table of `rows`.
pub fn list(format: Format, answer: &Value, rows: &[Value], cols: &[Col<'_>]) {
    if format == Format::Json {
        return json(answer);
    }
    println!("{}", table(rows, cols));
}

/// Flattens an object into `(field, value)` pairs, nested objects as `a.b`.
pub fn fields(v: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&name, x, out);
                }
            }
            other => out.push((prefix.to_string(), cell(other))),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}

/// Prints one object: the JSON as is, or a Field | Value table of `pairs`.
pub fn pairs(format: Format, answer: &Value, pairs: &[(String, String)]) {
    if format == Format::Json {
        return json(answer);
    }
    let mut t = new_table(&["Field", "Value"]);
    for (k, v) in pairs {
        t.add_row([k.as_str(), v.as_str()]);
    }
    println!("{t}");
}

/// Prints one object with all its fields.
pub fn show(format: Format, answer: &Value) {
    pairs(format, answer, &fields(answer))
}

/// Milliseconds since the epoch as RFC 3339 UTC (`2026-01-31T12:00:00Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A time field for a table: milliseconds as RFC 3339, and RFC 3339
/// strings without their fractional seconds, which only widen columns.
pub fn time_cell(v: &Value) -> String {
    if let Some(ms) = v.as_i64() {
        return rfc3339_ms(ms);
    }
    let s = cell(v);
    match (s.find('T'), s.rfind('.')) {
        (Some(t), Some(dot)) if dot > t => {
            let digits = s[dot + 1..].bytes().take_while(u8::is_ascii_digit).count();
            format!("{}{}", &s[..dot], &s[dot + 1 + digits..])
        }
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_795_713_596_010), "2026-11-26T17:19:56Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn time_cells() {
        assert_eq!(time_cell(&json!(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            time_cell(&json!("2026-11-26T17:19:56.123456Z")),
            "2026-11-26T17:19:56Z"
        );
        assert_eq!(
            time_cell(&json!("2026-11-26T17:19:56.5+01:00")),
            "2026-11-26T17:19:56+01:00"
        );
        assert_eq!(
            time_cell(&json!("2026-11-26T17:19:56Z")),
            "2026-11-26T17:19:56Z"
        );
        assert_eq!(time_cell(&Value::Null), "");
    }

    #[test]
    fn nested_fields_flatten() {
        let v = json!({"user": {"id": "u1", "name": "admin"}, "roles": ["admin", "member"], "email": null});
        assert_eq!(
            fields(&v),
            vec![
                ("email".to_string(), String::new()),
                ("roles".to_string(), "admin, member".to_string()),
                ("user.id".to_string(), "u1".to_string()),
                ("user.name".to_string(), "admin".to_string()),
            ]
        );
    }
}
