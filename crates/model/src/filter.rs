//! EC2-style filtering, shared by the core services that filter on EC2's
//! terms (instances, networks) and by the front doors.

/// EC2's filter wildcards: `*` any run of characters, `?` one, `\` escapes
/// the next. Case-sensitive, as EC2's are.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    // Iterative matching with one backtrack point for the last `*`:
    // linear in practice, never exponential.
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, vi));
                pi += 1;
                continue;
            }
            Some('?') => {
                pi += 1;
                vi += 1;
                continue;
            }
            Some('\\') if pi + 1 < p.len() && p[pi + 1] == v[vi] => {
                pi += 2;
                vi += 1;
                continue;
            }
            Some(c) if *c != '\\' && *c == v[vi] => {
                pi += 1;
                vi += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, sv)) => {
                pi = sp + 1;
                vi = sv + 1;
                star = Some((sp, sv + 1));
            }
            None => return false,
        }
    }
    while p.get(pi) == Some(&'*') {
        pi += 1;
    }
    pi == p.len()
}

/// `ip-10-0-0-5.<region>.compute.internal`: the EC2 private DNS name of an
/// IPv4 address, which nuage's resolver answers (crates/metadata).
pub fn private_dns_name(ip: &str, region: &str) -> String {
    format!("ip-{}.{region}.compute.internal", ip.replace('.', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("web*", "web-1"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("w?b", "web"));
        assert!(!wildcard_match("w?b", "wb"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(wildcard_match(r"a\*", "a*"));
        assert!(!wildcard_match(r"a\*", "ab"));
        assert!(!wildcard_match("Web", "web"));
        // No exponential blow-up on adversarial patterns.
        let long = "a".repeat(5000);
        let pattern = format!("{}b", "*a".repeat(200));
        let t = std::time::Instant::now();
        assert!(!wildcard_match(&pattern, &long));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn private_names() {
        assert_eq!(
            private_dns_name("10.0.0.5", "nuage-1"),
            "ip-10-0-0-5.nuage-1.compute.internal"
        );
    }
}
