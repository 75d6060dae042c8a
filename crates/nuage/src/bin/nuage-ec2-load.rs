//! A bounded, compiled load generator for EC2 Query endpoints, for
//! `scripts/bench-ec2` (not a test, not shipped as a command of `nuage`).
//!
//! It sends one signed form POST (`--param NAME=VALUE`, with `Version`)
//! from `--clients` concurrent clients, each on its own keep-alive
//! connection, until `--requests` answers or `--seconds` pass, and prints
//! one JSON line: answers per second, errors and latency percentiles. It
//! drives nuage and moto_server alike, so neither pays for the other's
//! client: the Python generator it replaces spent most of its time signing.
//!
//! Signing is SigV4 with nuage-identity's own functions
//! ([`sigv4::signing_key`], [`sigv4::compute_signature`]); nuage verifies
//! every request, so a signing mistake shows up as errors, not as speed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use nuage_identity::sigv4::{self, Credential, SigV4Auth, SignedRequest};
use sha2::{Digest, Sha256};

#[derive(Parser, Debug)]
#[command(about = "Signed EC2 Query load, bounded in count and time")]
struct Args {
    /// The endpoint, e.g. http://127.0.0.1:8080 (plain HTTP only).
    #[arg(long)]
    endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: String,
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    region: String,
    /// A form parameter, NAME=VALUE; repeat for each.
    #[arg(long = "param", required = true)]
    params: Vec<String>,
    /// Concurrent clients, each with one connection.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=256))]
    clients: u32,
    /// Stop after this many answers in all...
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// ...or after this many seconds, whichever comes first.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Also report how often this string occurs in the last answer's body
    /// (e.g. `<instanceId>`), to check what was answered.
    #[arg(long)]
    count: Option<String>,
}

/// `application/x-www-form-urlencoded` as AWS SDKs write it (RFC 3986
/// unreserved characters kept, the rest %XX).
fn form_encode(pairs: &[(String, String)]) -> String {
    fn enc(s: &str, out: &mut String) {
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(k, &mut out);
        out.push('=');
        enc(v, &mut out);
    }
    out
}

struct Signer {
    access_key: String,
    secret_key: String,
    region: String,
    host: String,
}

impl Signer {
    /// The headers of a signed POST of `body` to `/`, signed now.
    fn headers(&self, body: &str) -> Result<http::HeaderMap> {
        let now = chrono::Utc::now();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        headers.insert(http::header::HOST, self.host.parse()?);
        headers.insert("x-amz-date", amz_date.parse()?);
        let sha = hex::encode(Sha256::digest(body.as_bytes()));
        let mut auth = SigV4Auth {
            credential: Credential {
                access_key_id: self.access_key.clone(),
                date: amz_date[..8].to_string(),
                region: self.region.clone(),
                service: "ec2".into(),
            },
            signed_headers: vec!["content-type".into(), "host".into(), "x-amz-date".into()],
            signature: String::new(),
            amz_date,
            presigned: false,
            expires_secs: None,
            payload_hash: sha.clone(),
            security_token: None,
        };
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body_sha256: Some(&sha),
        };
        let c = &auth.credential;
        let key = sigv4::signing_key(&self.secret_key, &c.date, &c.region, &c.service);
        auth.signature = sigv4::compute_signature(&req, &auth, &key)
            .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
        let value = format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{}/ec2/aws4_request, SignedHeaders={}, Signature={}",
            auth.credential.access_key_id,
            auth.credential.date,
            auth.credential.region,
            auth.signed_headers.join(";"),
            auth.signature
        );
        headers.insert(http::header::AUTHORIZATION, value.parse()?);
        Ok(headers)
    }
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    errors: AtomicU64,
}

/// One client: its own connection, one request at a time.
async fn client(
    signer: Arc<Signer>,
    url: String,
    body: Arc<String>,
    tally: Arc<Tally>,
    budget: u64,
    deadline: Instant,
) -> Result<(Vec<f64>, Option<String>)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut times = Vec::new();
    let mut last = None;
    while Instant::now() < deadline {
        if tally.ok.load(Ordering::Relaxed) + tally.errors.load(Ordering::Relaxed) >= budget {
            break;
        }
        let headers = signer.headers(&body)?;
        let t = Instant::now();
        let r = http
            .post(&url)
            .headers(headers)
            .body(body.as_str().to_owned())
            .send()
            .await;
        let (ok, text) = match r {
            Ok(r) => {
                let ok = r.status().is_success();
                (ok, r.text().await.unwrap_or_default())
            }
            Err(e) => (false, e.to_string()),
        };
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if ok {
            tally.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            tally.errors.fetch_add(1, Ordering::Relaxed);
        }
        last = Some(text);
    }
    Ok((times, last))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    let Some(host) = a.endpoint.strip_prefix("http://") else {
        bail!("--endpoint must be http://HOST:PORT");
    };
    let host = host.trim_end_matches('/').to_string();
    let mut pairs = Vec::new();
    for p in &a.params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param {p:?} is not NAME=VALUE"))?;
        pairs.push((k.to_string(), v.to_string()));
    }
    if !pairs.iter().any(|(k, _)| k == "Version") {
        pairs.push(("Version".into(), "2016-11-15".into()));
    }
    let body = Arc::new(form_encode(&pairs));
    let signer = Arc::new(Signer {
        access_key: a.access_key,
        secret_key: a.secret_key,
        region: a.region,
        host: host.clone(),
    });
    let url = format!("http://{host}/");
    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.seconds);
    let tasks: Vec<_> = (0..a.clients)
        .map(|_| {
            tokio::spawn(client(
                signer.clone(),
                url.clone(),
                body.clone(),
                tally.clone(),
                a.requests,
                deadline,
            ))
        })
        .collect();
    let mut times = Vec::new();
    let mut last = None;
    for t in tasks {
        let (t, l) = t.await.context("a client panicked")??;
        times.extend(t);
        if l.is_some() {
            last = l;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let ok = tally.ok.load(Ordering::Relaxed);
    let errors = tally.errors.load(Ordering::Relaxed);
    let count = a
        .count
        .as_deref()
        .map(|s| last.as_deref().unwrap_or("").matches(s).count());
    let sample = if errors > 0 {
        last.as_deref()
            .map(|l| l.chars().take(300).collect::<String>())
    } else {
        None
    };
    println!(
        "{{\"ok\":{ok},\"errors\":{errors},\"seconds\":{wall:.3},\"per_second\":{:.1},\
         \"p50_ms\":{:.2},\"p90_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2},\"count\":{},\
         \"last_error\":{}}}",
        ok as f64 / wall,
        percentile(&times, 50.0),
        percentile(&times, 90.0),
        percentile(&times, 99.0),
        times.last().copied().unwrap_or(0.0),
        count.map_or("null".to_string(), |c| c.to_string()),
        sample.map_or("null".to_string(), |s| format!("{s:?}")),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_encode_like_the_sdks() {
        let pairs = vec![
            ("Action".to_string(), "DescribeInstances".to_string()),
            ("Filter.1.Value.1".to_string(), "a b/c*".to_string()),
        ];
        assert_eq!(
            form_encode(&pairs),
            "Action=DescribeInstances&Filter.1.Value.1=a%20b%2Fc%2A"
        );
    }

    #[test]
    fn a_signature_verifies() {
        let s = Signer {
            access_key: "AKID".into(),
            secret_key: "secret".into(),
            region: "nuage-1".into(),
            host: "127.0.0.1:1".into(),
        };
        let body = "Action=DescribeRegions&Version=2016-11-15";
        let headers = s.headers(body).expect("signed headers");
        let sha = hex::encode(Sha256::digest(body.as_bytes()));
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body_sha256: Some(&sha),
        };
        let auth = sigv4::parse(&req)
            .expect("a well-formed signature")
            .expect("an Authorization header");
        sigv4::verify(&req, &auth, "secret", chrono::Utc::now()).expect("verifies");
        assert!(sigv4::verify(&req, &auth, "other", chrono::Utc::now()).is_err());
    }
}
