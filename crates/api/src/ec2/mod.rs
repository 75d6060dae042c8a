//! The EC2 Query dialect: form-encoded `Action=...&Version=...` over POST
//! (or GET), SigV4-signed with the `ec2` service scope, answered in EC2's
//! XML (docs/adr/0025-ec2-query-front-door.md).
//!
//! A thin translation onto the compute and network services: the request
//! is authenticated by the shared identity component, parsed whole into
//! one [`ops::Operation`] value (an unknown action is `InvalidAction`, a
//! parameter the operation does not read is `UnknownParameter`), `DryRun`
//! is answered, and only then does anything act. Errors come from the
//! core's typed errors through [`error`]; no rule about instances,
//! networks or quotas lives here.

mod compute;
pub mod error;
mod meta;
mod network;
mod ops;
pub mod params;
mod tags;
pub mod xml;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, Method, StatusCode};
use nuage_identity::policy::{authorize, Rule};
use nuage_identity::sigv4::SignedRequest;
use nuage_model::identity::Principal;
use sha2::{Digest, Sha256};

use crate::{context, Core, SharedCore};
use error::{Ec2Error, Result};
use params::Params;

pub use ops::served_actions;

/// The largest request body accepted: user data is 16 KiB once decoded,
/// and no EC2 call nuage serves needs more than a few of those.
pub const MAX_BODY: usize = 1024 * 1024;

/// Serves one EC2 Query request.
pub async fn handle(core: SharedCore, req: Request) -> Response {
    match serve(&core, req).await {
        Ok(body) => {
            let mut r = (StatusCode::OK, body).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/xml;charset=UTF-8"),
            );
            r
        }
        Err(e) => e.render(),
    }
}

/// Parses an EC2 request into its operation, for the fuzz target: the
/// operation's action name, or the error code of the refusal.
#[doc(hidden)]
pub fn parse_for_fuzzing(query: &str, body: &[u8]) -> std::result::Result<String, String> {
    let parse = || -> Result<String> {
        let p = Params::parse_form(query, body)?;
        let op = ops::Operation::parse(p.action()?, &p)?;
        p.finish()?;
        Ok(op.action().to_string())
    };
    parse().map_err(|e| e.code.into_owned())
}

async fn serve(core: &Core, req: Request) -> Result<String> {
    let (parts, body) = req.into_parts();
    if parts.method != Method::POST && parts.method != Method::GET {
        return Err(Ec2Error::new(
            400,
            "UnsupportedHttpVerb",
            format!(
                "The EC2 Query API is served over GET and POST, not {}",
                parts.method
            ),
        ));
    }
    let body = read_body(body).await?;
    let principal = authenticate(core, &parts, &body).await?;
    let p = Params::parse_form(parts.uri.query().unwrap_or(""), &body)?;
    let action = p.action()?;
    if p.opt("Version").is_none_or(str::is_empty) {
        return Err(Ec2Error::missing("Version"));
    }
    // Recognised whole before anything acts (habit 12).
    let op = ops::Operation::parse(action, &p)?;
    let dry_run = p.dry_run()?;
    p.finish()?;
    if dry_run {
        let rule = if op.reads_only() {
            Rule::ProjectRead(&principal.project_id)
        } else {
            Rule::ProjectWrite(&principal.project_id)
        };
        authorize(&principal, &format!("ec2:{}", op.action()), rule)?;
        return Err(Ec2Error::dry_run());
    }
    let ctx = ops::Ctx {
        core,
        principal: &principal,
        request_id: context::request_id(),
    };
    let xml = op.run(&ctx).await?;
    Ok(xml.finish())
}

async fn read_body(body: Body) -> Result<Vec<u8>> {
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        Ec2Error::new(
            413,
            "RequestEntityTooLarge",
            format!("the request body is larger than {MAX_BODY} bytes, or was cut short"),
        )
    })?;
    Ok(bytes.to_vec())
}

/// The caller, from a SigV4 signature scoped to this region and `ec2`.
async fn authenticate(core: &Core, parts: &http::request::Parts, body: &[u8]) -> Result<Principal> {
    let sha = hex::encode(Sha256::digest(body));
    let headers = crate::auth::signed_headers(parts);
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body_sha256: Some(&sha),
    };
    match core.identity.authenticate_sigv4(&signed).await? {
        Some((principal, auth)) => {
            auth.check_scope(&core.region, "ec2")?;
            Ok(principal)
        }
        None => Err(Ec2Error::new(
            401,
            "AuthFailure",
            "The request carries no AWS Signature Version 4 credentials",
        )),
    }
}
