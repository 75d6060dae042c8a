//! `admin.env`: the file a user sources to drive nuage with every client.
//!
//! Credentials are made before the bootstrap transaction and written to
//! `admin.env.new` first; the transaction commits; then the file is renamed
//! into place. A crash between the commit and the rename is repaired at the
//! next start by finishing the rename, so the admin password (stored only as
//! a hash) is never lost.

use std::path::PathBuf;

use anyhow::Result;

use crate::config::Config;
use crate::files::write_private;
use crate::tls::TlsFiles;

pub struct Credentials {
    pub password: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

pub fn path(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("admin.env")
}

pub fn pending_path(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("admin.env.new")
}

fn shell_quote(v: &str) -> String {
    if v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/:._-@+=,".contains(&b))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', r"'\''"))
    }
}

/// The endpoint variables, which follow the server's address and TLS state.
fn endpoint_vars(cfg: &Config, tls: Option<&TlsFiles>) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("NUAGE_URL", cfg.public_url.clone()),
        ("AWS_ENDPOINT_URL", cfg.public_url.clone()),
        ("OS_AUTH_URL", format!("{}/v3", cfg.public_url)),
        ("OS_IDENTITY_API_VERSION", "3".into()),
        ("OS_REGION_NAME", cfg.region.clone()),
        ("OS_INTERFACE", "public".into()),
        ("AWS_DEFAULT_REGION", cfg.region.clone()),
    ];
    if let Some(t) = tls {
        let ca = t.ca_cert.display().to_string();
        v.push(("NUAGE_CACERT", ca.clone()));
        v.push(("AWS_CA_BUNDLE", ca.clone()));
        v.push(("OS_CACERT", ca.clone()));
        v.push(("REQUESTS_CA_BUNDLE", ca));
    }
    v
}

fn render(vars: &[(String, String)]) -> String {
    let mut out = String::from(
        "# nuage admin credentials: `source` this file, then use aws, openstack, swift or nuage.\n\
         # It holds secrets: keep it private (mode 0600).\n",
    );
    for (k, v) in vars {
        out.push_str(&format!("export {k}={}\n", shell_quote(v)));
    }
    out
}

/// Parses `export K=V` lines written by [`render`].
fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .map(|v| v.replace(r"'\''", "'"))
                .unwrap_or_else(|| v.to_string());
            (k.to_string(), v)
        })
        .collect()
}

/// Writes the pending file for a bootstrap about to happen.
pub fn write_pending(cfg: &Config, tls: Option<&TlsFiles>, c: &Credentials) -> Result<()> {
    let mut vars: Vec<(String, String)> = endpoint_vars(cfg, tls)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    for (k, v) in [
        ("OS_USERNAME", "admin"),
        ("OS_PASSWORD", c.password.as_str()),
        ("OS_PROJECT_NAME", "admin"),
        ("OS_USER_DOMAIN_NAME", "Default"),
        ("OS_PROJECT_DOMAIN_NAME", "Default"),
        ("AWS_ACCESS_KEY_ID", c.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key.as_str()),
    ] {
        vars.push((k.to_string(), v.to_string()));
    }
    write_private(&pending_path(cfg), render(&vars).as_bytes())
}

/// Moves the pending file into place (after the bootstrap committed).
pub fn commit_pending(cfg: &Config) -> Result<()> {
    std::fs::rename(pending_path(cfg), path(cfg))?;
    std::fs::File::open(&cfg.data_dir)?.sync_all()?;
    Ok(())
}

/// At a later start: finishes an interrupted bootstrap's rename, and points
/// the endpoint variables at the current address.
pub fn refresh(cfg: &Config, tls: Option<&TlsFiles>) -> Result<bool> {
    let p = path(cfg);
    if !p.exists() {
        if pending_path(cfg).exists() {
            commit_pending(cfg)?;
        } else {
            return Ok(false);
        }
    }
    let mut vars = parse(&std::fs::read_to_string(&p)?);
    let endpoint = endpoint_vars(cfg, tls);
    vars.retain(|(k, _)| {
        !endpoint.iter().any(|(e, _)| e == k)
            && ![
                "NUAGE_CACERT",
                "AWS_CA_BUNDLE",
                "OS_CACERT",
                "REQUESTS_CA_BUNDLE",
            ]
            .contains(&k.as_str())
    });
    let mut all: Vec<(String, String)> = endpoint
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    all.extend(vars);
    write_private(&p, render(&all).as_bytes())?;
    Ok(true)
}

/// Removes a pending file left by a bootstrap that never committed.
pub fn discard_pending(cfg: &Config) {
    let _ = std::fs::remove_file(pending_path(cfg));
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_round_trip() {
        let vars = vec![
            ("A".to_string(), "plain".to_string()),
            ("B".to_string(), "it's $odd".to_string()),
        ];
        assert_eq!(super::parse(&super::render(&vars)), vars);
    }
}
