//! Cross-check of `nuage_identity::sigv4` against a real client: botocore
//! signs a batch of EC2-, IAM-, STS- and S3-style requests (header auth and
//! presigned URLs, odd keys, odd queries, odd headers) with a frozen clock,
//! and every one of them must verify, and stop verifying when one character of
//! the signature or of a signed header changes.
//!
//! Needs `python3` with botocore (`apt install python3-botocore`, or awscli).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use http::{HeaderMap, HeaderName, HeaderValue};
use nuage_identity::sigv4::{self, SigV4Error, SignedRequest};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Signs the batch and prints it as JSON. Exit status 3: botocore missing.
const SIGNER: &str = r##"
import datetime, hashlib, json, sys
try:
    import botocore.auth as A
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.config import Config
    from botocore.utils import percent_encode
except ImportError as e:
    print("BOTOCORE_MISSING: %s" % e, file=sys.stderr)
    sys.exit(3)
from urllib.parse import urlsplit

FROZEN = datetime.datetime(2024, 3, 1, 12, 0, 0)

class FrozenDateTime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return cls(2024, 3, 1, 12, 0, 0)
    @classmethod
    def now(cls, tz=None):
        return cls(2024, 3, 1, 12, 0, 0, tzinfo=tz)

class FrozenModule:
    pass

FrozenModule.datetime = FrozenDateTime
FrozenModule.timezone = datetime.timezone
FrozenModule.timedelta = datetime.timedelta
A.datetime = FrozenModule
if hasattr(A, "get_current_datetime"):  # botocore >= 1.34 reads the clock through this
    A.get_current_datetime = lambda *args, **kwargs: FROZEN

REGION = "nuage-1"
CREDS = Credentials("AKIANUAGETEST0000001", "nuage/secret+key/0123456789abcdefGHIJ")
TOKEN_CREDS = Credentials("ASIANUAGETEST0000002", "nuage/secret+key/0123456789abcdefGHIJ", "FQoG/token+with/odd=chars")

out = []

def emit(name, request, signer, expect="accept", body_hash_known=None):
    signer.add_auth(request)
    if request.context.get("timestamp") != "20240301T120000Z":
        raise SystemExit("could not freeze botocore's clock: %r" % request.context.get("timestamp"))
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = [[k, v] for k, v in request.headers.items()]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.append(["host", A._host_from_url(prepared.url)])
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    out.append({
        "name": name,
        "method": prepared.method,
        "path": parts.path,
        "query": parts.query,
        "headers": headers,
        "body_hex": body.hex(),
        "expect": expect,
        # Whether the front door would hash the body itself (EC2 Query, non-S3 presigned).
        "front_door_hashes_body": body_hash_known,
    })

def s3_key_path(bucket, key):
    return "/" + bucket + "/" + percent_encode(key, safe="/~")

# --- EC2 Query dialect (service ec2): POST with a form body, GET with the query.
FORM = "application/x-www-form-urlencoded; charset=utf-8"
ec2 = lambda creds=CREDS: A.SigV4Auth(creds, "ec2", REGION)
emit("ec2 post form", AWSRequest("POST", "https://ec2.nuage.test/",
     data="Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3AName&Filter.1.Value.1=a+b%2Bc%20d",
     headers={"Content-Type": FORM}), ec2(), body_hash_known=True)
emit("ec2 post empty body", AWSRequest("POST", "https://ec2.nuage.test/", data="",
     headers={"Content-Type": FORM}), ec2(), body_hash_known=True)
emit("ec2 post with token", AWSRequest("POST", "https://ec2.nuage.test/",
     data="Action=DescribeRegions&Version=2016-11-15", headers={"Content-Type": FORM}),
     ec2(TOKEN_CREDS), body_hash_known=True)
emit("ec2 get query in url", AWSRequest("GET",
     "https://ec2.nuage.test/?Action=DescribeRegions&Version=2016-11-15&RegionName.1=nuage-1&Empty="),
     ec2(), body_hash_known=True)
emit("ec2 get params (quote_plus on the wire)", AWSRequest("GET", "https://ec2.nuage.test/",
     params={"Action": "DescribeTags", "Filter.1.Value.1": "a b+c/~*!'()", "Empty": "", "Uni": "h\u00e9\u20ac"}),
     ec2(), body_hash_known=True)
emit("ec2 repeated keys", AWSRequest("GET",
     "https://ec2.nuage.test/?b=2&a=2&a=1&a=&flag=&z=%2F%3D%26"), ec2(), body_hash_known=True)
emit("ec2 non-default port", AWSRequest("POST", "https://ec2.nuage.test:8773/",
     data="Action=DescribeRegions", headers={"Content-Type": FORM}), ec2(), body_hash_known=True)
emit("ec2 date header", AWSRequest("POST", "https://ec2.nuage.test/", data="Action=DescribeRegions",
     headers={"Content-Type": FORM, "Date": "x"}), ec2(), body_hash_known=True)
r = AWSRequest("POST", "https://ec2.nuage.test/", data="Action=DescribeRegions",
               headers={"Content-Type": FORM, "X-Odd": "  a   b \t c  "})
r.headers["X-Multi"] = "first"
r.headers["X-Multi"] = "second,  third"
emit("ec2 odd and repeated headers", r, ec2(), body_hash_known=True)
emit("iam path normalization and double encoding", AWSRequest("GET",
     "https://iam.nuage.test/a%20b/./c//d/../e%2Fx/~u/?Action=ListUsers"),
     A.SigV4Auth(CREDS, "iam", REGION), body_hash_known=True)

# --- S3 dialect: header auth.
s3 = lambda creds=CREDS: A.S3SigV4Auth(creds, "s3", REGION)
for key in ["plain.txt", "with space.txt", "\u00fcn\u00efc\u00f6d\u00e9/\u043a\u043b\u044e\u0447", "a+b", "a=b", "t~lde",
            "100%", "x/../y/./z", "double//slash", "!$&'()*,;:@", "emoji \U0001F600"]:
    emit("s3 get " + repr(key), AWSRequest("GET", "https://s3.nuage.test" + s3_key_path("bucket", key)), s3())
emit("s3 list v2 query", AWSRequest("GET", "https://s3.nuage.test/bucket?" +
     "list-type=2&prefix=a%20b%2Fc&delimiter=%2F&continuation-token=abc%2B%3D%3D&fetch-owner=&encoding-type=url"), s3())
emit("s3 bare subresource", AWSRequest("GET", "https://s3.nuage.test/bucket?acl"), s3())
emit("s3 params", AWSRequest("GET", "https://s3.nuage.test/bucket",
     params={"prefix": "sp ace+plus", "marker": "~!*", "tag": "\u00e9"}), s3())
emit("s3 put signed body", AWSRequest("PUT", "https://s3.nuage.test" + s3_key_path("bucket", "dir/file name.bin"),
     data=b"hello \x00 world",
     headers={"Content-Type": "application/octet-stream", "x-amz-meta-Owner": "Alice  Smith",
              "Content-MD5": "ignored-but-signed"}), s3())
r = AWSRequest("PUT", "https://s3.nuage.test/bucket/unsigned.bin", data=b"payload")
r.context["client_config"] = Config(s3={"payload_signing_enabled": False})
emit("s3 put unsigned payload", r, s3())
emit("s3 with token", AWSRequest("GET", "https://s3.nuage.test/bucket/k"), s3(TOKEN_CREDS))
emit("s3 virtual host", AWSRequest("GET", "https://bucket.s3.nuage.test/key%20x"), s3())

# --- S3 presigned (query auth).
s3q = lambda creds=CREDS, expires=3600: A.S3SigV4QueryAuth(creds, "s3", REGION, expires=expires)
emit("s3 presigned get", AWSRequest("GET", "https://s3.nuage.test" + s3_key_path("bucket", "odd key+=~%.txt")), s3q())
emit("s3 presigned get with query", AWSRequest("GET", "https://s3.nuage.test/bucket/k?versionId=v1" +
     "&response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22"), s3q(expires=604800))
emit("s3 presigned params", AWSRequest("GET", "https://s3.nuage.test/bucket/k",
     params={"response-content-type": "text/plain; charset=utf-8", "x": "a b+c"}), s3q())
emit("s3 presigned with token", AWSRequest("GET", "https://s3.nuage.test/bucket/k"), s3q(TOKEN_CREDS, 60))
emit("s3 presigned put", AWSRequest("PUT", "https://s3.nuage.test/bucket/upload.bin",
     headers={"Content-Type": "image/png"}), s3q())

# --- Other-service presigned URL (botocore signs the real body hash there).
emit("sts presigned get", AWSRequest("GET", "https://sts.nuage.test/?Action=GetCallerIdentity&Version=2011-06-15"),
     A.SigV4QueryAuth(CREDS, "sts", REGION, expires=900), body_hash_known=True)

# --- Documented divergence: botocore copies a query string given in the URL
# into the canonical request byte for byte. A raw '+' there is signed as '+',
# but every server decodes and re-encodes (to %20 here), so no server can
# accept it; botocore's own clients never send such URLs.
emit("raw plus in url query (unverifiable)", AWSRequest("GET", "https://s3.nuage.test/bucket?prefix=a+b"),
     s3(), expect="reject")

json.dump({
    "access_key": CREDS.access_key,
    "token_access_key": TOKEN_CREDS.access_key,
    "secret": CREDS.secret_key,
    "region": REGION,
    "now": "20240301T120000Z",
    "requests": out,
}, sys.stdout, indent=1)
"##;

struct Case {
    name: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    expect_accept: bool,
    front_door_hashes_body: bool,
}

struct Batch {
    secret: String,
    region: String,
    access_keys: Vec<String>,
    now: chrono::DateTime<chrono::Utc>,
    cases: Vec<Case>,
}

fn run_botocore() -> Batch {
    let output = match Command::new("python3").arg("-c").arg(SIGNER).output() {
        Ok(output) => output,
        Err(e) => panic!(
            "cannot run python3 ({e}); this test needs python3 with botocore: \
             install python3-botocore (apt install python3-botocore) or awscli"
        ),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(3) || stderr.contains("BOTOCORE_MISSING") {
        panic!(
            "python3 has no botocore ({}); install python3-botocore \
             (apt install python3-botocore) or awscli to run this test",
            stderr.trim()
        );
    }
    assert!(
        output.status.success(),
        "the botocore signer failed: {}\n{stderr}",
        output.status
    );
    let json: Value =
        serde_json::from_slice(&output.stdout).expect("botocore signer output is JSON");
    let text = |v: &Value| v.as_str().expect("a string").to_owned();
    let cases = json["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| Case {
            name: text(&r["name"]),
            method: text(&r["method"]),
            path: text(&r["path"]),
            query: text(&r["query"]),
            headers: r["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .map(|pair| (text(&pair[0]), text(&pair[1])))
                .collect(),
            body: hex::decode(text(&r["body_hex"])).expect("body hex"),
            expect_accept: r["expect"] == "accept",
            front_door_hashes_body: r["front_door_hashes_body"] == true,
        })
        .collect();
    Batch {
        secret: text(&json["secret"]),
        region: text(&json["region"]),
        access_keys: vec![text(&json["access_key"]), text(&json["token_access_key"])],
        now: sigv4::parse_amz_date(json["now"].as_str().expect("now")).expect("now parses"),
        cases,
    }
}

fn header_map(headers: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    map
}

/// Parses and verifies one (possibly mutated) request.
fn check(
    batch: &Batch,
    case: &Case,
    query: &str,
    headers: &[(String, String)],
) -> Result<sigv4::SigV4Auth, SigV4Error> {
    let map = header_map(headers);
    let body_hash = hex::encode(Sha256::digest(&case.body));
    let req = SignedRequest {
        method: &case.method,
        path: &case.path,
        query,
        headers: &map,
        body_sha256: case.front_door_hashes_body.then_some(body_hash.as_str()),
    };
    let auth = sigv4::parse(&req)?.ok_or_else(|| {
        SigV4Error::IncompleteSignature(format!("{}: parsed as anonymous", case.name))
    })?;
    sigv4::verify(&req, &auth, &batch.secret, batch.now)?;
    Ok(auth)
}

/// The canonical request the verifier built, to show when a case fails.
fn explain(case: &Case) -> String {
    let map = header_map(&case.headers);
    let body_hash = hex::encode(Sha256::digest(&case.body));
    let req = SignedRequest {
        method: &case.method,
        path: &case.path,
        query: &case.query,
        headers: &map,
        body_sha256: case.front_door_hashes_body.then_some(body_hash.as_str()),
    };
    match sigv4::parse(&req) {
        Ok(Some(auth)) => sigv4::canonical_request(&req, &auth).unwrap_or_else(|e| e.to_string()),
        other => format!("{other:?}"),
    }
}

/// Changes the last ASCII letter or digit of `s` into another one.
fn flip_one_char(s: &str) -> String {
    let mut bytes = s.as_bytes().to_vec();
    let at = bytes
        .iter()
        .rposition(u8::is_ascii_alphanumeric)
        .expect("something to flip");
    bytes[at] = match bytes[at] {
        b'0' => b'1',
        b'9' | b'a'..=b'f' => b'0',
        b'z' => b'y',
        b'Z' => b'Y',
        b => b + 1,
    };
    String::from_utf8(bytes).expect("still UTF-8")
}

fn signature_flipped(case: &Case) -> (String, Vec<(String, String)>) {
    let mut headers = case.headers.clone();
    if let Some((_, value)) = headers
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
    {
        *value = flip_one_char(value);
        return (case.query.clone(), headers);
    }
    let query = case
        .query
        .split('&')
        .map(|p| {
            if p.starts_with("X-Amz-Signature=") {
                flip_one_char(p)
            } else {
                p.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    assert_ne!(query, case.query, "{}: no signature found", case.name);
    (query, headers)
}

#[test]
fn sigv4_botocore_signed_requests_verify() {
    let batch = run_botocore();
    assert!(batch.cases.len() >= 30, "the batch is incomplete");
    let mut accepted = 0;
    for case in &batch.cases {
        let result = check(&batch, case, &case.query, &case.headers);
        if !case.expect_accept {
            assert_eq!(
                result.err(),
                Some(SigV4Error::SignatureDoesNotMatch),
                "{}: expected to be refused",
                case.name
            );
            continue;
        }
        let auth = result.unwrap_or_else(|e| {
            panic!(
                "{}: refused: {e}\ncanonical request:\n{}",
                case.name,
                explain(case)
            )
        });
        accepted += 1;
        assert!(batch.access_keys.contains(&auth.credential.access_key_id));
        assert_eq!(auth.credential.region, batch.region);
        auth.check_scope(&batch.region, &auth.credential.service)
            .unwrap();
        assert_eq!(auth.amz_date, "20240301T120000Z", "{}", case.name);
        if auth.credential.access_key_id == batch.access_keys[1] {
            assert_eq!(
                auth.security_token.as_deref(),
                Some("FQoG/token+with/odd=chars"),
                "{}",
                case.name
            );
        }

        // One character of the signature.
        let (query, headers) = signature_flipped(case);
        assert_eq!(
            check(&batch, case, &query, &headers).err(),
            Some(SigV4Error::SignatureDoesNotMatch),
            "{}: a changed signature must be refused",
            case.name
        );

        // One character of each signed header (every occurrence is tried).
        for (i, (name, _)) in case.headers.iter().enumerate() {
            let lname = name.to_ascii_lowercase();
            if !auth.signed_headers.contains(&lname) {
                continue;
            }
            let mut headers = case.headers.clone();
            headers[i].1 = flip_one_char(&headers[i].1);
            assert!(
                check(&batch, case, &case.query, &headers).is_err(),
                "{}: a change to the signed header {name} must be refused",
                case.name
            );
        }

        // An extra query parameter.
        let query = if case.query.is_empty() {
            "x=1".to_owned()
        } else {
            format!("{}&x=1", case.query)
        };
        assert!(
            check(&batch, case, &query, &case.headers).is_err(),
            "{}: an extra query parameter must be refused",
            case.name
        );

        // Unsigned headers may come and go.
        let mut headers = case.headers.clone();
        headers.push(("user-agent".into(), "something else".into()));
        check(&batch, case, &case.query, &headers)
            .unwrap_or_else(|e| panic!("{}: an unsigned header broke it: {e}", case.name));
    }
    assert_eq!(
        accepted,
        batch.cases.iter().filter(|c| c.expect_accept).count()
    );
}

/// The clock: the botocore batch is refused 16 minutes later (header auth),
/// or after its expiry (presigned).
#[test]
fn sigv4_botocore_time_limits() {
    let mut batch = run_botocore();
    batch.now += chrono::Duration::minutes(16);
    let mut presigned_still_valid = 0;
    for case in batch.cases.iter().filter(|c| c.expect_accept) {
        match check(&batch, case, &case.query, &case.headers) {
            Err(SigV4Error::RequestTimeTooSkewed) => {}
            Ok(auth) => {
                assert!(auth.presigned, "{}", case.name);
                presigned_still_valid += 1;
            }
            // Those presigned for less than 16 minutes.
            Err(SigV4Error::Expired)
                if case.query.contains("X-Amz-Expires=900")
                    || case.query.contains("X-Amz-Expires=60&") => {}
            Err(e) => panic!("{}: unexpected {e}", case.name),
        }
    }
    assert!(presigned_still_valid >= 4);
    batch.now += chrono::Duration::days(7);
    for case in batch.cases.iter().filter(|c| c.expect_accept) {
        let err = check(&batch, case, &case.query, &case.headers).unwrap_err();
        assert!(
            matches!(err, SigV4Error::RequestTimeTooSkewed | SigV4Error::Expired),
            "{}: {err}",
            case.name
        );
    }
}
