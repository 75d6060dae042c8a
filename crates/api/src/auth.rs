//! The one place where a request's credentials become a principal.
//!
//! Every front door calls [`authenticate`]; it accepts a Keystone token
//! (`X-Auth-Token`, or `Authorization: Bearer` for the native API and
//! kubectl), or an AWS SigV4 signature (header or presigned URL). Policy is
//! not checked here: core services do it with the principal, so the rules are
//! the same whichever door a call came through.

use http::request::Parts;
use nuage_identity::sigv4::SignedRequest;
use nuage_identity::IdentityError;
use nuage_model::identity::Principal;

use crate::Core;

/// The client's address, for throttling failed logins per source. It is
/// the TCP peer (the server records it for every connection); `None` when
/// the server was built without it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// sha256 of the empty string: the payload hash of a request without body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The bearer token of a request, if it carries one.
pub fn token(parts: &Parts) -> Option<&str> {
    if let Some(t) = parts
        .headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
    {
        return Some(t.trim());
    }
    parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The headers a SigV4 signature covers: HTTP/2 carries the host in
/// `:authority`, which SigV4 signs as `host`, so it is added when missing.
pub fn signed_headers(parts: &Parts) -> std::borrow::Cow<'_, http::HeaderMap> {
    if parts.headers.contains_key(http::header::HOST) {
        return std::borrow::Cow::Borrowed(&parts.headers);
    }
    let mut h = parts.headers.clone();
    if let Some(v) = parts
        .uri
        .authority()
        .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
    {
        h.insert(http::header::HOST, v);
    }
    std::borrow::Cow::Owned(h)
}

/// Authenticates a request. `Ok(None)` means it carries no credentials at
/// all; bad credentials are an error. `body_sha256` is the hex sha256 of the
/// body when the caller has read it (needed for SigV4 without
/// `x-amz-content-sha256`); `None` for a request without body.
pub async fn authenticate(
    core: &Core,
    parts: &Parts,
    body_sha256: Option<&str>,
) -> Result<Option<Principal>, IdentityError> {
    if let Some(t) = token(parts) {
        return core.identity.validate(t).await.map(Some);
    }
    let headers = signed_headers(parts);
    let req = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body_sha256: Some(body_sha256.unwrap_or(EMPTY_SHA256)),
    };
    match core.identity.authenticate_sigv4(&req).await? {
        Some((principal, auth)) => {
            // Routing sent s3- and ec2-scoped signatures to their dialects;
            // what reaches here must be scoped to this region and `nuage`.
            auth.check_scope(&core.region, "nuage")?;
            Ok(Some(principal))
        }
        None => Ok(None),
    }
}
