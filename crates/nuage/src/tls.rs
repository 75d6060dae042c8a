//! nuage's own certificate authority, made on first start, and the server
//! certificate it signs. Clients trust the CA through AWS_CA_BUNDLE and
//! OS_CACERT in admin.env, so TLS works without any outside PKI.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

use crate::files::write_private;

/// Paths of the TLS material in the data directory.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "nuage CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "nuage");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_after = rcgen::date_time_ymd(2046, 1, 1);
    params
}

/// Makes the CA and a server certificate for `names` unless they exist and
/// the certificate still covers every name.
pub fn ensure(dir: &Path, ip: IpAddr) -> Result<TlsFiles> {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).with_context(|| format!("cannot create {}", tls.display()))?;
    let files = TlsFiles {
        ca_cert: tls.join("ca.pem"),
        cert: tls.join("server.pem"),
        key: tls.join("server-key.pem"),
    };
    let ca_key_path = tls.join("ca-key.pem");
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut names = vec!["localhost".to_string()];
    if !host.is_empty() {
        names.push(host);
    }
    let mut ips: Vec<IpAddr> = vec!["127.0.0.1".parse()?, "::1".parse()?];
    if !ip.is_unspecified() && !ips.contains(&ip) {
        ips.push(ip);
    }
    let names_file = tls.join("server.names");
    let wanted = format!("{names:?} {ips:?}");
    let fresh = files.cert.exists()
        && files.key.exists()
        && files.ca_cert.exists()
        && std::fs::read_to_string(&names_file)
            .map(|s| s == wanted)
            .unwrap_or(false);
    if fresh {
        return Ok(files);
    }

    // rcgen signs with the issuer's parameters and key; rebuilding the same
    // parameters around the stored key yields the issuer clients already
    // trust (same name, same key), without parsing the stored certificate.
    let (ca_cert, ca_key) = if files.ca_cert.exists() && ca_key_path.exists() {
        let key_pem = std::fs::read_to_string(&ca_key_path)?;
        let key = KeyPair::from_pem(&key_pem).context("the CA key is not valid")?;
        let cert = ca_params().self_signed(&key)?;
        (cert, key)
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
        std::fs::write(&files.ca_cert, cert.pem())?;
        (cert, key)
    };

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.clone())?;
    params.distinguished_name.push(DnType::CommonName, "nuage");
    for ip in &ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params.signed_by(&key, &ca_cert, &ca_key)?;
    write_private(&files.key, key.serialize_pem().as_bytes())?;
    std::fs::write(&files.cert, cert.pem())?;
    std::fs::write(&names_file, wanted)?;
    tracing::info!(ca = %files.ca_cert.display(), "made a TLS certificate signed by nuage's CA");
    Ok(files)
}
