//! Microbenchmark of the SigV4 verifier on one thread:
//!
//! ```text
//! cargo run --release -p nuage-identity --example sigv4_bench [N]
//! ```
//!
//! Each iteration is what a front door does per request: `parse` then
//! `verify` (signing-key derivation included, nothing cached). The body hash
//! of the EC2 request is computed once outside the loop, as the front door
//! hashes the body while reading it anyway.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};
use nuage_identity::sigv4::{self, SignedRequest};
use sha2::{Digest, Sha256};

const SECRET: &str = "nuage/bench+secret/0123456789abcdefGHIJKL";
const PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn now() -> chrono::DateTime<chrono::Utc> {
    sigv4::parse_amz_date("20240301T120130Z").unwrap_or_default()
}

fn run(label: &str, n: u32, req: &SignedRequest<'_>) -> Result<(), String> {
    let now = now();
    // Warm up, and make sure the request is valid before timing it.
    for _ in 0..n.min(1000) {
        let auth = sigv4::parse(req)
            .map_err(|e| e.to_string())?
            .ok_or("not signed")?;
        sigv4::verify(req, &auth, SECRET, now).map_err(|e| format!("{label}: {e}"))?;
    }
    let start = Instant::now();
    let mut ok = 0u32;
    for _ in 0..n {
        if let Ok(Some(auth)) = sigv4::parse(black_box(req)) {
            if sigv4::verify(black_box(req), &auth, black_box(SECRET), now).is_ok() {
                ok += 1;
            }
        }
    }
    let elapsed = start.elapsed().max(Duration::from_nanos(1));
    if ok != n {
        return Err(format!("{label}: only {ok} of {n} verified"));
    }
    println!(
        "sigv4 {label} verify: {:.0} verifications/s ({n} in {:.1} ms)",
        f64::from(n) / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0
    );
    Ok(())
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<(), String> {
    let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
    headers.insert(name, value);
    Ok(())
}

/// An EC2 Query POST signed in the Authorization header, headers as botocore sends them.
fn header_signed(headers: &mut HeaderMap, body_sha256: &str) -> Result<(), String> {
    set(headers, "host", "ec2.nuage.example:8773")?;
    set(
        headers,
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )?;
    set(headers, "x-amz-date", "20240301T120000Z")?;
    set(
        headers,
        "user-agent",
        "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.debian.12 prompt/off command/ec2.run-instances",
    )?;
    set(headers, "content-length", "412")?;
    set(headers, "accept-encoding", "identity")?;
    let authorization = |signature: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIANUAGEBENCH000001/20240301/nuage-1/ec2/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
        )
    };
    set(headers, "authorization", &authorization(PLACEHOLDER))?;
    let req = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers,
        body_sha256: Some(body_sha256),
    };
    let signature = sign(&req)?;
    set(headers, "authorization", &authorization(&signature))
}

fn sign(req: &SignedRequest<'_>) -> Result<String, String> {
    let auth = sigv4::parse(req)
        .map_err(|e| e.to_string())?
        .ok_or("not signed")?;
    let c = &auth.credential;
    let key = sigv4::signing_key(SECRET, &c.date, &c.region, &c.service);
    sigv4::compute_signature(req, &auth, &key).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);

    let body = "Action=RunInstances&Version=2016-11-15&ImageId=img-0123456789abcdef0\
        &InstanceType=m1.small&MinCount=1&MaxCount=1&KeyName=my%20key\
        &SecurityGroupId.1=sg-0123456789abcdef0&SubnetId=subnet-0123456789abcdef0\
        &TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=Name\
        &TagSpecification.1.Tag.1.Value=web%20server%201&UserData=IyEvYmluL3NoCmVjaG8gaGVsbG8K";
    let body_sha256 = hex::encode(Sha256::digest(body.as_bytes()));
    let mut ec2_headers = HeaderMap::new();
    if let Err(e) = header_signed(&mut ec2_headers, &body_sha256) {
        eprintln!("cannot build the EC2 request: {e}");
        return ExitCode::FAILURE;
    }
    let ec2 = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &ec2_headers,
        body_sha256: Some(&body_sha256),
    };

    // An S3 presigned GET as `aws s3 presign` makes it, fetched by a browser.
    let mut s3_headers = HeaderMap::new();
    s3_headers.insert("host", HeaderValue::from_static("s3.nuage.example"));
    s3_headers.insert(
        "user-agent",
        HeaderValue::from_static(
            "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        ),
    );
    s3_headers.insert("accept", HeaderValue::from_static("*/*"));
    let path = "/photos/2024/03/holiday%20pictures/IMG_0042.jpg";
    let query = |signature: &str| {
        format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIANUAGEBENCH000001%2F20240301%2Fnuage-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20240301T120000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host\
             &X-Amz-Signature={signature}"
        )
    };
    let unsigned = query(PLACEHOLDER);
    let signature = match sign(&SignedRequest {
        method: "GET",
        path,
        query: &unsigned,
        headers: &s3_headers,
        body_sha256: None,
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot sign the S3 request: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signed = query(&signature);
    let s3 = SignedRequest {
        method: "GET",
        path,
        query: &signed,
        headers: &s3_headers,
        body_sha256: None,
    };

    for (label, req) in [("header", &ec2), ("presigned", &s3)] {
        if let Err(e) = run(label, n, req) {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
