//! The OpenStack Compute (Nova) v2.1 API under `/compute`, as devstack lays
//! it out (ADR 28): version discovery, microversions, flavors, key pairs,
//! server groups, availability zones, limits and quota sets, over the same
//! compute and identity services the EC2 and native doors use.
//!
//! As every door (habit 12): the request is recognised whole (method, path
//! and body into one [`Op`]) before anything acts; a Nova resource nuage does
//! not serve yet answers `501 notImplemented`, an unknown path `404
//! itemNotFound`; errors take Nova's fault shape,
//! `{"badRequest": {"code": 400, "message": "..."}}`.
//!
//! Microversions: a request names one with `OpenStack-API-Version: compute
//! 2.N` (or the older `X-OpenStack-Nova-API-Version: 2.N`), `latest` for the
//! highest; none means 2.1. Answers carry the version used, and their shapes
//! follow it where Nova's changed within the range served.

mod flavors;
mod hypervisors;
mod keypairs;
mod limits;
mod security_groups;
mod server_actions;
mod server_groups;
mod server_views;
mod servers;
mod services;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use nuage_model::identity::Principal;
use nuage_model::{ErrorKind, HasKind};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::{auth, context, Core, SharedCore};

/// The oldest and newest microversions served.
pub const MIN_VERSION: Version = Version(2, 1);
pub const MAX_VERSION: Version = Version(2, 79);

/// Largest request body the door reads.
const MAX_BODY: usize = 1 << 20;

/// A compute API microversion, `2.N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl Version {
    fn parse(s: &str) -> Option<Version> {
        let (a, b) = s.trim().split_once('.')?;
        let num = |x: &str| {
            (!x.is_empty() && x.len() <= 4 && x.bytes().all(|c| c.is_ascii_digit()))
                .then(|| x.parse().ok())
                .flatten()
        };
        Some(Version(num(a)?, num(b)?))
    }

    /// Whether this version is at least `2.minor`.
    pub fn at_least(self, minor: u32) -> bool {
        self >= Version(2, minor)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The microversion a request asks for.
fn requested_version(headers: &HeaderMap) -> Result<Version> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let asked = match header("openstack-api-version") {
        // `compute 2.79`, possibly among other services' versions.
        Some(v) => v.split(',').map(str::trim).find_map(|part| {
            let (service, version) = part.split_once(char::is_whitespace)?;
            service
                .eq_ignore_ascii_case("compute")
                .then(|| version.trim())
        }),
        None => None,
    }
    .or_else(|| header("x-openstack-nova-api-version").map(str::trim));
    let Some(asked) = asked else {
        return Ok(MIN_VERSION);
    };
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(MAX_VERSION);
    }
    let v = Version::parse(asked).ok_or_else(|| {
        Fault::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid format of client version '{asked}'. Expected format 'X.Y', where X is a major part and Y is a minor part of version."),
        )
    })?;
    if v < MIN_VERSION || v > MAX_VERSION {
        return Err(Fault::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Version {v} is not supported by the API. Minimum is {MIN_VERSION} and maximum is {MAX_VERSION}."),
        ));
    }
    Ok(v)
}

/// A Nova fault: `{"<name>": {"code": N, "message": "..."}}`, the name
/// chosen by status as Nova's `wsgi.Fault` does.
#[derive(Debug)]
pub struct Fault {
    status: StatusCode,
    message: String,
}

impl Fault {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Fault {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Fault::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Fault::new(StatusCode::NOT_FOUND, message)
    }

    fn name(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "badRequest",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "itemNotFound",
            405 => "badMethod",
            409 => "conflictingRequest",
            413 | 429 => "overLimit",
            415 => "badMediaType",
            501 => "notImplemented",
            503 => "serviceUnavailable",
            _ => "computeFault",
        }
    }

    /// A core error, by kind; internal details stay in the log.
    pub fn from_core<E: HasKind + std::error::Error>(e: &E) -> Self {
        let (kind, message) = context::public_error(e);
        let status = match kind {
            // Nova answers an exceeded quota with 403 Forbidden.
            ErrorKind::QuotaExceeded => StatusCode::FORBIDDEN,
            ErrorKind::AlreadyExists => StatusCode::CONFLICT,
            other => context::status_of(other),
        };
        Fault::new(status, message)
    }
}

impl From<nuage_compute::ComputeError> for Fault {
    fn from(e: nuage_compute::ComputeError) -> Self {
        Fault::from_core(&e)
    }
}

impl From<nuage_identity::IdentityError> for Fault {
    fn from(e: nuage_identity::IdentityError) -> Self {
        Fault::from_core(&e)
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        let body = json!({ self.name(): {"code": self.status.as_u16(), "message": self.message} });
        (self.status, axum::Json(body)).into_response()
    }
}

pub type Result<T> = std::result::Result<T, Fault>;

/// One recognised Nova request.
#[derive(Debug)]
enum Op {
    /// `GET /compute/`: the versions document.
    Versions,
    /// `GET /compute/v2.1/`: this version's document.
    Version,
    Flavors(flavors::Op),
    Keypairs(keypairs::Op),
    Limits(limits::Op),
    Servers(servers::Op),
    Hypervisors(hypervisors::Op),
    Services(services::Op),
    SecurityGroups(security_groups::Op),
    ServerGroups(server_groups::Op),
}

/// Nova collections nuage does not serve yet: recognised, answered 501.
const NOT_YET: &[&str] = &[
    "images",
    "os-aggregates",
    "os-migrations",
    "os-simple-tenant-usage",
    "os-quota-class-sets",
    "os-volumes",
    "os-volumes_boot",
    "os-instance-actions",
    "os-server-external-events",
    "os-assisted-volume-snapshots",
    "os-instance_usage_audit_log",
];

/// The request's path below `/compute`, split into segments.
fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches("/compute")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect()
}

impl Op {
    /// Recognises `method path` with its body; nothing has acted yet.
    fn parse(method: &Method, path: &str, query: &[(String, String)], body: &[u8]) -> Result<Op> {
        let segs = segments(path);
        let (version, rest) = match segs.split_first() {
            None if method == Method::GET => return Ok(Op::Versions),
            None => return Err(bad_method()),
            Some((v, rest)) => (*v, rest),
        };
        if version != "v2.1" && version != "v2" {
            return Err(Fault::not_found(format!(
                "nuage serves the Compute API as v2.1 under /compute/v2.1, not {version}"
            )));
        }
        let Some((first, more)) = rest.split_first() else {
            return match *method {
                Method::GET => Ok(Op::Version),
                _ => Err(bad_method()),
            };
        };
        match *first {
            "flavors" => flavors::Op::parse(method, more, query, body).map(Op::Flavors),
            "os-keypairs" => keypairs::Op::parse(method, more, query, body).map(Op::Keypairs),
            "os-server-groups" => {
                server_groups::Op::parse(method, more, query, body).map(Op::ServerGroups)
            }
            "limits" | "os-availability-zone" | "os-quota-sets" => {
                limits::Op::parse(method, first, more, query, body).map(Op::Limits)
            }
            "servers" => servers::Op::parse(method, more, query, body).map(Op::Servers),
            "os-hypervisors" => hypervisors::Op::parse(method, more, query).map(Op::Hypervisors),
            "os-services" => services::Op::parse(method, more, query).map(Op::Services),
            "os-security-groups" => security_groups::Op::parse(method, more).map(Op::SecurityGroups),
            other if NOT_YET.contains(&other) => Err(Fault::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("nuage does not serve /{other} through the Compute API yet; the native API (/nuage/v1) and EC2 serve instances"),
            )),
            other => Err(Fault::not_found(format!(
                "The resource could not be found: the Compute API has no /{other}."
            ))),
        }
    }
}

/// `405 badMethod`.
pub fn bad_method() -> Fault {
    Fault::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method specified is not allowed for this resource.",
    )
}

/// Parses a JSON request body into `T`, as Nova's schema checks would
/// refuse it: malformed JSON, wrong types and unknown keys are 400.
pub fn body<T: DeserializeOwned>(raw: &[u8]) -> Result<T> {
    if raw.is_empty() {
        return Err(Fault::bad_request(
            "The request body is empty; it must be a JSON object.",
        ));
    }
    serde_json::from_slice(raw)
        .map_err(|e| Fault::bad_request(format!("Invalid input for the request body: {e}")))
}

/// A query parameter's value, if given.
pub fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The door's base URL, for links.
pub fn base(core: &Core) -> String {
    format!("{}/compute", core.public_url.trim_end_matches('/'))
}

fn version_view(core: &Core) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": MAX_VERSION.to_string(),
        "min_version": MIN_VERSION.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{}/v2.1/", base(core))}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.compute+json;version=2.1",
        }],
    })
}

/// Serves one Compute API request.
pub async fn handle(core: SharedCore, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let version = requested_version(&parts.headers);
    let used = version.as_ref().copied().unwrap_or(MIN_VERSION);
    let mut resp = match serve(&core, &parts, body, version).await {
        Ok(r) => r,
        Err(f) => f.into_response(),
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("compute {used}")) {
        h.insert("openstack-api-version", v);
    }
    if let Ok(v) = HeaderValue::from_str(&used.to_string()) {
        h.insert("x-openstack-nova-api-version", v);
    }
    h.insert(
        http::header::VARY,
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
    if let Ok(v) = HeaderValue::from_str(&context::request_id()) {
        h.insert("x-openstack-request-id", v.clone());
        h.insert("x-compute-request-id", v);
    }
    resp
}

async fn serve(
    core: &Core,
    parts: &http::request::Parts,
    body: Body,
    version: Result<Version>,
) -> Result<Response> {
    let raw = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        Fault::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than {MAX_BODY} bytes."),
        )
    })?;
    let query = crate::wire::query_pairs(&parts.uri);
    let op = Op::parse(&parts.method, parts.uri.path(), &query, &raw)?;
    match op {
        Op::Versions => {
            let mut v2 = version_view(core);
            v2["links"] = json!([{"rel": "self", "href": format!("{}/v2.1/", base(core))}]);
            return Ok(axum::Json(json!({"versions": [v2]})).into_response());
        }
        Op::Version => {
            return Ok(axum::Json(json!({"version": version_view(core)})).into_response())
        }
        _ => {}
    }
    let caller = authenticate(core, parts).await?;
    let version = version?;
    match op {
        Op::Flavors(op) => op.run(core, &caller, version).await,
        Op::Keypairs(op) => op.run(core, &caller, version).await,
        Op::Limits(op) => op.run(core, &caller, version).await,
        Op::Servers(op) => op.run(core, &caller, version).await,
        Op::Hypervisors(op) => op.run(core, &caller, version).await,
        Op::Services(op) => op.run(core, &caller, version).await,
        Op::SecurityGroups(op) => op.run(core, &caller, version).await,
        Op::ServerGroups(op) => op.run(core, &caller, version).await,
        Op::Versions | Op::Version => Err(Fault::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "version documents are answered above",
        )),
    }
}

/// The caller of a request, from its Keystone token.
async fn authenticate(core: &Core, parts: &http::request::Parts) -> Result<Principal> {
    let Some(token) = auth::token(parts) else {
        return Err(Fault::new(
            StatusCode::UNAUTHORIZED,
            "The request you have made requires authentication.",
        ));
    };
    core.identity.validate(token).await.map_err(|e| {
        let (kind, message) = context::public_error(&e);
        match kind {
            ErrorKind::Internal | ErrorKind::Unavailable => {
                Fault::new(StatusCode::SERVICE_UNAVAILABLE, message)
            }
            _ => Fault::new(
                StatusCode::UNAUTHORIZED,
                "The request you have made requires authentication.",
            ),
        }
    })
}

/// A JSON answer with a status.
pub fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn microversions_are_negotiated_as_nova_does() {
        assert_eq!(requested_version(&headers(&[])).ok(), Some(MIN_VERSION));
        let v = |s: &str| requested_version(&headers(&[("openstack-api-version", s)]));
        assert_eq!(v("compute 2.55").ok(), Some(Version(2, 55)));
        assert_eq!(v("image 2, compute 2.10").ok(), Some(Version(2, 10)));
        assert_eq!(v("compute latest").ok(), Some(MAX_VERSION));
        assert_eq!(v("volume 3.0").ok(), Some(MIN_VERSION));
        assert_eq!(
            v("compute 2.500").map_err(|f| f.status.as_u16()).err(),
            Some(406)
        );
        assert_eq!(
            v("compute 3.0").map_err(|f| f.status.as_u16()).err(),
            Some(406)
        );
        assert_eq!(
            v("compute 2.0").map_err(|f| f.status.as_u16()).err(),
            Some(406)
        );
        assert_eq!(
            v("compute two").map_err(|f| f.status.as_u16()).err(),
            Some(400)
        );
        let legacy = requested_version(&headers(&[("x-openstack-nova-api-version", "2.3")]));
        assert_eq!(legacy.ok(), Some(Version(2, 3)));
    }

    #[test]
    fn paths_are_recognised_before_anything_acts() {
        let get = |p: &str| Op::parse(&Method::GET, p, &[], b"");
        assert!(matches!(get("/compute"), Ok(Op::Versions)));
        assert!(matches!(get("/compute/v2.1/"), Ok(Op::Version)));
        assert!(matches!(
            get("/compute/v2.1/flavors/detail"),
            Ok(Op::Flavors(_))
        ));
        let code = |r: Result<Op>| r.map_err(|f| f.status.as_u16()).err();
        assert_eq!(code(get("/compute/v2.1/images")), Some(501));
        assert_eq!(code(get("/compute/v2.1/rockets")), Some(404));
        assert_eq!(code(get("/compute/v3/flavors")), Some(404));
        assert_eq!(
            code(Op::parse(&Method::DELETE, "/compute/v2.1", &[], b"")),
            Some(405)
        );
    }

    #[test]
    fn faults_take_novas_names() {
        let r = Fault::new(StatusCode::CONFLICT, "x");
        assert_eq!(r.name(), "conflictingRequest");
        assert_eq!(
            Fault::new(StatusCode::NOT_ACCEPTABLE, "x").name(),
            "computeFault"
        );
    }
}
