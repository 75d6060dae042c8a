//! Per-request context: request ids and Prometheus metrics.
//!
//! Every response carries a request id (`x-request-id`, and the names
//! OpenStack and AWS clients print: `x-openstack-request-id`,
//! `x-amz-request-id`). Error bodies need the same id, so the middleware also
//! makes it available to the handler's task through [`request_id`].

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::route::Dialect;
use crate::SharedCore;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled by this task, or `"-"` outside one.
pub fn request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| "-".to_string())
}

/// The HTTP status of an error kind, as the JSON dialects answer it.
pub fn status_of(kind: nuage_model::ErrorKind) -> http::StatusCode {
    http::StatusCode::from_u16(kind.http_status())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// What a client may be told about a core error, for every dialect: its
/// kind and a message. Internal and unavailable errors may name tables or
/// hosts in their causes, so those are logged here with the request id and
/// replaced by a generic message pointing at the log.
pub fn public_error<E: nuage_model::HasKind + std::error::Error>(
    e: &E,
) -> (nuage_model::ErrorKind, String) {
    use nuage_model::ErrorKind;
    let kind = e.kind();
    if matches!(kind, ErrorKind::Internal | ErrorKind::Unavailable) {
        let id = request_id();
        tracing::error!(request_id = %id, error = %e, source = ?e.source(), "internal error");
        return (
            kind,
            format!("nuage failed to handle the request; the server log has the details under request id {id}"),
        );
    }
    (kind, e.to_string())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    dialect: &'static str,
    method: &'static str,
    status: u16,
}

/// A method name without allocating: labels only need the common ones.
fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DialectLabel {
    dialect: &'static str,
}

/// The server's Prometheus metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<DialectLabel, Histogram>,
    /// The connection table's figures ([`crate::conn`]).
    pub connections: std::sync::Arc<crate::conn::ConnMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("nuage");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<DialectLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ])
        });
        registry.register("http_requests", "HTTP requests handled", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            latency.clone(),
        );
        registry.register(
            "object_sendfile_bytes",
            "Object bytes the kernel sent from the page cache (zero-copy GETs)",
            crate::zerocopy::SENT.clone(),
        );
        let connections = std::sync::Arc::new(crate::conn::ConnMetrics::default());
        registry.register(
            "http_connections",
            "Client connections held now",
            connections.open.clone(),
        );
        registry.register(
            "http_connections_evicted",
            "Idle connections closed to admit a new one at the connection limit",
            connections.evicted.clone(),
        );
        registry.register(
            "http_connections_refused",
            "Connections refused at the limit because every one had a request in flight",
            connections.refused.clone(),
        );
        registry.register(
            "http_connections_idle_closed",
            "Connections closed after sitting idle",
            connections.idle_closed.clone(),
        );
        {
            use nuage_identity::hasher::{HASHES_PEAK, HASHES_REFUSED, HASHES_RUNNING};
            registry.register(
                "password_hashes_running",
                "Password hashes running now",
                HASHES_RUNNING.clone(),
            );
            registry.register(
                "password_hashes_peak",
                "The most password hashes that ran at once (the hashing pool's bound)",
                HASHES_PEAK.clone(),
            );
            registry.register(
                "password_checks_refused",
                "Password checks refused because every hashing worker stayed busy",
                HASHES_REFUSED.clone(),
            );
        }
        Metrics {
            registry,
            requests,
            latency,
            connections,
        }
    }

    /// The registry, for services that add metrics of their own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Assigns the request id, times the request and counts it.
pub async fn middleware(State(core): State<SharedCore>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4()));
    let dialect = Dialect::of(&req);
    let method = method_label(req.method());
    // Kept for the log line; only its path is logged, since query strings
    // may carry presigned signatures. Cloning a Uri shares its bytes.
    let uri = req.uri().clone();
    let start = Instant::now();
    let mut resp = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    let status = resp.status().as_u16();
    if let Ok(v) = HeaderValue::from_str(&id) {
        let h = resp.headers_mut();
        h.insert("x-request-id", v.clone());
        h.insert("x-openstack-request-id", v.clone());
        h.insert("x-amz-request-id", v);
    }
    let label = dialect.label();
    core.metrics
        .latency
        .get_or_create(&DialectLabel { dialect: label })
        .observe(start.elapsed().as_secs_f64());
    core.metrics
        .requests
        .get_or_create(&RequestLabels {
            dialect: label,
            method,
            status,
        })
        .inc();
    match status {
        500.. => {
            tracing::warn!(request_id = %id, dialect = label, method, path = uri.path(), status, "request failed")
        }
        400..=499 => {
            tracing::info!(request_id = %id, dialect = label, method, path = uri.path(), status, "request refused")
        }
        _ => {
            tracing::debug!(request_id = %id, dialect = label, method, path = uri.path(), status, "request")
        }
    }
    resp
}
