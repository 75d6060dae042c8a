//! One listener, many dialects: which front door a request belongs to.
//!
//! The rule (docs/adr/0002-one-endpoint-routing.md):
//! 1. A request signed with AWS SigV4 goes to the dialect its credential
//!    scope names (`s3`, `ec2`), whatever its path, so a bucket may be called
//!    `v3` and still be reached by S3 clients.
//! 2. Otherwise the first path segment decides: `/nuage` native JSON,
//!    `/v3` Keystone, `/v1/AUTH_*` and `/info` (capabilities) Swift, `/api`
//!    and `/apis` Kubernetes,
//!    `/healthz` and `/metrics` operations. An unsigned form POST to `/`
//!    (or a GET with `?Action=`) is EC2 Query, so unsigned EC2 calls get an
//!    EC2 error. An unsigned `GET /` that accepts JSON and not XML is
//!    OpenStack version discovery (keystoneauth given the bare endpoint as
//!    its auth URL) and gets Keystone's versions document; S3 clients list
//!    buckets with a signature, and anonymous ones accept XML.
//! 3. Anything else is S3 (anonymous access to public buckets). The S3
//!    dialect refuses to create buckets named like a reserved first segment
//!    ([`RESERVED_BUCKET_NAMES`]), so an anonymous path never means two
//!    things.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{header, StatusCode};
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;

use crate::{context, ec2, glance, keystone, native, neutron, nova, s3, swift, SharedCore};

/// Bucket names S3 must refuse, since unsigned requests on those paths
/// belong to another dialect.
pub const RESERVED_BUCKET_NAMES: &[&str] = &[
    "nuage",
    "v1",
    "v2",
    "v3",
    "api",
    "apis",
    "healthz",
    "metrics",
    "dashboard",
    "compute",
    "image",
    "network",
    "networking",
    "volume",
    "orchestration",
    "version",
    "openapi",
    "static",
    "info",
];

/// The front door a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Native,
    Keystone,
    Swift,
    Kubernetes,
    S3,
    Ec2,
    /// OpenStack Compute (Nova) under `/compute`.
    Compute,
    /// OpenStack Image (Glance) under `/image`.
    Image,
    /// OpenStack Networking (Neutron) under `/networking`.
    Network,
    Ops,
}

impl Dialect {
    pub fn label(self) -> &'static str {
        match self {
            Dialect::Native => "native",
            Dialect::Keystone => "keystone",
            Dialect::Swift => "swift",
            Dialect::Kubernetes => "kubernetes",
            Dialect::S3 => "s3",
            Dialect::Ec2 => "ec2",
            Dialect::Compute => "compute",
            Dialect::Image => "image",
            Dialect::Network => "network",
            Dialect::Ops => "ops",
        }
    }

    /// Classifies a request by the rule in the module documentation.
    pub fn of<B>(req: &http::Request<B>) -> Dialect {
        if let Some(service) = sigv4_service(req) {
            match service {
                "s3" => return Dialect::S3,
                "ec2" => return Dialect::Ec2,
                _ => {}
            }
        }
        let path = req.uri().path();
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        if path == "/" && is_version_discovery(req) {
            return Dialect::Keystone;
        }
        match first {
            "nuage" => Dialect::Native,
            "v3" => Dialect::Keystone,
            "v1" if path.starts_with("/v1/AUTH_") => Dialect::Swift,
            "info" if path == "/info" => Dialect::Swift,
            "api" | "apis" => Dialect::Kubernetes,
            "compute" => Dialect::Compute,
            "image" => Dialect::Image,
            "networking" => Dialect::Network,
            "healthz" | "metrics" => Dialect::Ops,
            "" if is_ec2_query(req) => Dialect::Ec2,
            _ => Dialect::S3,
        }
    }
}

/// The service named in a SigV4 credential scope, from the Authorization
/// header or a presigned URL's `X-Amz-Credential`, without full parsing.
fn sigv4_service<B>(req: &http::Request<B>) -> Option<&str> {
    let cred = if let Some(auth) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("AWS4-HMAC-SHA256"))
    {
        let at = auth.find("Credential=")? + "Credential=".len();
        &auth[at..]
    } else {
        let q = req.uri().query()?;
        let at = q.find("X-Amz-Credential=")? + "X-Amz-Credential=".len();
        &q[at..]
    };
    // AKID/DATE/REGION/SERVICE/aws4_request, '/' possibly as %2F.
    let mut parts = cred.split(['/', ',', '&']).flat_map(|p| p.split("%2F"));
    parts.nth(3)
}

/// An unsigned `GET /` (no query) whose `Accept` names JSON and not XML:
/// what keystoneauth sends to discover the Identity API's versions.
fn is_version_discovery<B>(req: &http::Request<B>) -> bool {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    (req.method() == http::Method::GET || req.method() == http::Method::HEAD)
        && req.uri().query().is_none()
        && !req.headers().contains_key(header::AUTHORIZATION)
        && accept.contains("application/json")
        && !accept.contains("xml")
}

fn is_ec2_query<B>(req: &http::Request<B>) -> bool {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    (req.method() == http::Method::POST && form)
        || req
            .uri()
            .query()
            .is_some_and(|q| q.starts_with("Action=") || q.contains("&Action="))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(core): State<SharedCore>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        core.metrics.render(),
    )
        .into_response()
}

/// A dialect that a later part of nuage will serve: answer plainly, in JSON,
/// rather than pretend.
async fn not_served(dialect: Dialect) -> Response {
    let body = serde_json::json!({
        "error": {
            "code": "not_found",
            "message": format!("the {} API is not served by this nuage yet; the native API is under /nuage/v1", dialect.label()),
            "request_id": context::request_id(),
        }
    });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// The one router of the server, with its middleware.
pub fn router(core: SharedCore) -> Router {
    let native = native::router(core.clone());
    let keystone = keystone::router(core.clone());
    let ops = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(core.clone());
    let core_for_dispatch = core.clone();
    let dispatch = move |req: Request<Body>| {
        let dialect = Dialect::of(&req);
        let target = match dialect {
            Dialect::Native => Some(native.clone()),
            Dialect::Keystone => Some(keystone.clone()),
            Dialect::Ops => Some(ops.clone()),
            _ => None,
        };
        let core = core_for_dispatch.clone();
        async move {
            match target {
                Some(r) => match r.oneshot(req).await {
                    Ok(resp) => resp,
                    Err(never) => match never {},
                },
                None if dialect == Dialect::Swift => swift::handle(core, req).await,
                None if dialect == Dialect::S3 => s3::handle(core, req).await,
                None if dialect == Dialect::Ec2 => ec2::handle(core, req).await,
                None if dialect == Dialect::Compute => nova::handle(core, req).await,
                None if dialect == Dialect::Image => glance::handle(core, req).await,
                None if dialect == Dialect::Network => neutron::handle(core, req).await,
                None => not_served(dialect).await,
            }
        }
    };
    Router::new()
        .fallback(dispatch)
        .layer(axum::middleware::from_fn_with_state(
            core,
            context::middleware,
        ))
        .layer(CatchPanicLayer::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request")
    }

    #[test]
    fn classifies() {
        assert_eq!(
            Dialect::of(&req("GET", "/nuage/v1/projects", &[])),
            Dialect::Native
        );
        assert_eq!(
            Dialect::of(&req("POST", "/v3/auth/tokens", &[])),
            Dialect::Keystone
        );
        assert_eq!(
            Dialect::of(&req("GET", "/v1/AUTH_abc/c", &[])),
            Dialect::Swift
        );
        assert_eq!(Dialect::of(&req("GET", "/v1/other", &[])), Dialect::S3);
        assert_eq!(Dialect::of(&req("GET", "/info", &[])), Dialect::Swift);
        // Version discovery at the root, not an anonymous ListBuckets.
        let json = [("accept", "application/json")];
        assert_eq!(Dialect::of(&req("GET", "/", &json)), Dialect::Keystone);
        assert_eq!(Dialect::of(&req("GET", "/", &[])), Dialect::S3);
        assert_eq!(
            Dialect::of(&req(
                "GET",
                "/",
                &[("accept", "application/xml, application/json")]
            )),
            Dialect::S3
        );
        assert_eq!(
            Dialect::of(&req("GET", "/?list-type=2", &json)),
            Dialect::S3
        );
        assert_eq!(
            Dialect::of(&req("GET", "/api/v1/pods", &[])),
            Dialect::Kubernetes
        );
        assert_eq!(Dialect::of(&req("GET", "/mybucket/key", &[])), Dialect::S3);
        assert_eq!(Dialect::of(&req("GET", "/healthz", &[])), Dialect::Ops);
        assert_eq!(
            Dialect::of(&req("GET", "/compute/v2.1/flavors", &[])),
            Dialect::Compute
        );
        assert_eq!(
            Dialect::of(&req("GET", "/networking/v2.0/networks", &[])),
            Dialect::Network
        );
        let s3 = "AWS4-HMAC-SHA256 Credential=AKIA/20260101/nuage-1/s3/aws4_request, SignedHeaders=host, Signature=00";
        assert_eq!(
            Dialect::of(&req("GET", "/v3/key", &[("authorization", s3)])),
            Dialect::S3
        );
        let ec2 = s3.replace("/s3/", "/ec2/");
        assert_eq!(
            Dialect::of(&req("POST", "/", &[("authorization", &ec2)])),
            Dialect::Ec2
        );
        assert_eq!(
            Dialect::of(&req(
                "POST",
                "/",
                &[("content-type", "application/x-www-form-urlencoded")]
            )),
            Dialect::Ec2
        );
        assert_eq!(
            Dialect::of(&req("GET", "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fr%2Fs3%2Faws4_request", &[])),
            Dialect::S3
        );
        assert_eq!(
            Dialect::of(&req("GET", "/?Action=DescribeInstances", &[])),
            Dialect::Ec2
        );
    }
}
