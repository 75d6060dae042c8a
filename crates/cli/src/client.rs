//! The HTTP side: one token per invocation, JSON requests to `/nuage/v1`,
//! and the server's errors turned into [`ApiError`].

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};

use crate::config::{Auth, Settings};

/// An error answer from the server.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.request_id {
            Some(id) => write!(
                f,
                "{} (HTTP {}, request id {id})",
                self.message, self.status
            ),
            None => write!(f, "{} (HTTP {})", self.message, self.status),
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    fn from_body(status: StatusCode, body: &[u8]) -> ApiError {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let e = &v["error"];
        let text = |k: &str| e[k].as_str().map(str::to_string);
        let message = text("message").unwrap_or_else(|| {
            let raw = String::from_utf8_lossy(body).trim().to_string();
            if raw.is_empty() {
                status.canonical_reason().unwrap_or("error").to_lowercase()
            } else {
                raw.chars().take(300).collect()
            }
        });
        ApiError {
            status: status.as_u16(),
            code: text("code"),
            message,
            request_id: text("request_id"),
        }
    }
}

/// A logged-in connection to one nuage endpoint.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: String,
    /// The token's description: the login answer, or `GET /tokens/self`.
    principal: Option<Value>,
}

fn build_http(settings: &Settings, base: &Url) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("nuage-cli/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120));
    if base.scheme() == "https" {
        let Some(ca) = &settings.cacert else {
            bail!(
                "{} is https but no CA certificate is configured: pass --cacert FILE or set NUAGE_CACERT \
                 (a TLS server's admin.env sets it to the server's CA)",
                settings.url
            );
        };
        let pem = std::fs::read(ca)
            .with_context(|| format!("cannot read the CA file {}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| anyhow!("the CA file {} is not valid PEM: {e}", ca.display()))?;
        if certs.is_empty() {
            bail!("the CA file {} holds no certificate", ca.display());
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().context("cannot set up the HTTP client")
}

fn parse_base(url: &str) -> Result<Url> {
    let u =
        Url::parse(url.trim()).map_err(|e| anyhow!("the nuage URL {url:?} is not valid: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.cannot_be_a_base() {
        bail!("the nuage URL {url:?} must start with http:// or https://");
    }
    Ok(u)
}

/// Describes a transport failure with its causes.
fn transport_error(e: reqwest::Error, base: &Url) -> anyhow::Error {
    if e.is_timeout() {
        return anyhow!("{base} did not answer in time");
    }
    let mut causes = Vec::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        causes.push(s.to_string());
        src = s.source();
    }
    // The innermost causes say the most ("Connection refused", "UnknownIssuer").
    let skip = causes.len().saturating_sub(2);
    let detail = causes.split_off(skip).join(": ");
    let hint = if detail.contains("certificate") || detail.contains("UnknownIssuer") {
        " (check that --cacert or NUAGE_CACERT names this server's CA)"
    } else {
        ""
    };
    if detail.is_empty() {
        anyhow!("cannot reach nuage at {base}: {e}{hint}")
    } else {
        anyhow!("cannot reach nuage at {base}: {detail}{hint}")
    }
}

impl Client {
    /// Connects and authenticates (a password login issues a token).
    pub async fn connect(settings: &Settings) -> Result<Client> {
        let base = parse_base(&settings.url)?;
        let http = build_http(settings, &base)?;
        let mut c = Client {
            http,
            base,
            token: String::new(),
            principal: None,
        };
        match &settings.auth {
            Auth::Token(t) => c.token = t.clone(),
            Auth::Password {
                user,
                password,
                project,
                domain,
            } => {
                let mut body = json!({"user": user, "password": password});
                if let Some(p) = project {
                    body["project"] = json!(p);
                }
                if let Some(d) = domain {
                    body["domain"] = json!(d);
                }
                let v = c
                    .send(Method::POST, &["tokens"], &[], Some(&body), false)
                    .await
                    .with_context(|| format!("cannot log in as {user}"))?
                    .unwrap_or(Value::Null);
                let Some(token) = v["token"].as_str() else {
                    bail!("the server's login answer has no token");
                };
                c.token = token.to_string();
                c.principal = Some(v);
            }
        }
        Ok(c)
    }

    /// The current token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The caller: user, project, roles, expiry (as `GET /tokens/self`).
    pub async fn principal(&mut self) -> Result<&Value> {
        if self.principal.is_none() {
            let v = self.get(&["tokens", "self"], &[]).await?;
            self.principal = Some(v);
        }
        Ok(self.principal.get_or_insert(Value::Null))
    }

    /// The caller's user id.
    pub async fn my_user_id(&mut self) -> Result<String> {
        let p = self.principal().await?;
        p["user"]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the server did not say who the caller is"))
    }

    /// The caller's project id.
    pub async fn my_project_id(&mut self) -> Result<String> {
        let p = self.principal().await?;
        p["project"]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the server did not say which project the token is scoped to"))
    }

    fn url(&self, path: &[&str], query: &[(&str, String)]) -> Result<Url> {
        let mut u = self.base.clone();
        {
            let mut segs = u
                .path_segments_mut()
                .map_err(|_| anyhow!("the nuage URL {} cannot take a path", self.base))?;
            segs.pop_if_empty().extend(["nuage", "v1"]).extend(path);
        }
        if !query.is_empty() {
            let mut q = u.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(u)
    }

    /// Sends one request; `Ok(None)` for an empty answer (204).
    pub async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
        auth: bool,
    ) -> Result<Option<Value>> {
        let url = self.url(path, query)?;
        let mut rb = self
            .http
            .request(method, url)
            .header("accept", "application/json");
        if auth {
            rb = rb.header("x-auth-token", &self.token);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        self.answer(rb).await
    }

    /// Uploads `len` bytes streamed from `body` with PUT. Without the
    /// 120 s request timeout: gigabytes take long to send, and the server
    /// checks the archive before it answers.
    pub async fn put_stream(&self, path: &[&str], body: reqwest::Body, len: u64) -> Result<Value> {
        let rb = self
            .http
            .put(self.url(path, &[])?)
            .header("accept", "application/json")
            .header("x-auth-token", &self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .timeout(Duration::from_secs(24 * 3600))
            .body(body);
        Ok(self.answer(rb).await?.unwrap_or(Value::Null))
    }

    /// A request to `/nuage/v1/...` carrying the token, for object bodies:
    /// without the 120 s timeout, since gigabytes take as long as they take.
    pub fn object_request(&self, method: Method, path: &[&str]) -> Result<reqwest::RequestBuilder> {
        Ok(self
            .http
            .request(method, self.url(path, &[])?)
            .header("x-auth-token", &self.token)
            .timeout(Duration::from_secs(24 * 3600)))
    }

    /// Sends a request whose answer is read as a stream (a download): the
    /// response when it succeeded, the server's error otherwise.
    pub async fn send_streaming(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let resp = rb
            .send()
            .await
            .map_err(|e| transport_error(e, &self.base))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(e, &self.base))?;
        Err(ApiError::from_body(status, &bytes).into())
    }

    /// Describes a failure while a body streams, with its causes.
    pub fn transport_error(&self, e: reqwest::Error) -> anyhow::Error {
        transport_error(e, &self.base)
    }

    /// Sends a request and reads its answer: `Ok(None)` when empty (204).
    pub async fn answer(&self, rb: reqwest::RequestBuilder) -> Result<Option<Value>> {
        let resp = rb
            .send()
            .await
            .map_err(|e| transport_error(e, &self.base))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(e, &self.base))?;
        if !status.is_success() {
            return Err(ApiError::from_body(status, &bytes).into());
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let v = serde_json::from_slice(&bytes).with_context(|| {
            format!("the server's answer (HTTP {}) is not JSON", status.as_u16())
        })?;
        Ok(Some(v))
    }

    pub async fn get(&self, path: &[&str], query: &[(&str, String)]) -> Result<Value> {
        Ok(self
            .send(Method::GET, path, query, None, true)
            .await?
            .unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &[&str], body: &Value) -> Result<Value> {
        Ok(self
            .send(Method::POST, path, &[], Some(body), true)
            .await?
            .unwrap_or(Value::Null))
    }

    pub async fn patch(&self, path: &[&str], body: &Value) -> Result<Value> {
        Ok(self
            .send(Method::PATCH, path, &[], Some(body), true)
            .await?
            .unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &[&str], body: Option<&Value>) -> Result<Option<Value>> {
        self.send(Method::PUT, path, &[], body, true).await
    }

    pub async fn delete(&self, path: &[&str]) -> Result<()> {
        self.send(Method::DELETE, path, &[], None, true).await?;
        Ok(())
    }
}

/// The items of a `{"items": [...]}` answer.
pub fn items(v: &Value) -> &[Value] {
    v["items"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_messages() {
        let e = ApiError::from_body(
            StatusCode::NOT_FOUND,
            br#"{"error":{"code":"not_found","message":"project x not found","request_id":"req-1"}}"#,
        );
        assert_eq!(
            e.to_string(),
            "project x not found (HTTP 404, request id req-1)"
        );
        let e = ApiError::from_body(StatusCode::BAD_GATEWAY, b"");
        assert_eq!(e.to_string(), "bad gateway (HTTP 502)");
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_segments() {
        let c = Client {
            http: reqwest::Client::new(),
            base: parse_base("http://h:1/prefix/").expect("url"),
            token: String::new(),
            principal: None,
        };
        let u = c
            .url(&["projects", "a b/c"], &[("name", "x&y".into())])
            .expect("url");
        assert_eq!(
            u.as_str(),
            "http://h:1/prefix/nuage/v1/projects/a%20b%2Fc?name=x%26y"
        );
        assert!(parse_base("ftp://h").is_err());
        assert!(parse_base("h:1").is_err());
    }
}
