//! Every Swift request becomes one [`Operation`] before anything acts
//! (CONVENTIONS habit 12): the method, the account/container/object path,
//! the query parameters and the headers that select an operation. A query
//! parameter or an operation header of the Object Storage API that nuage
//! does not implement is refused here with 501, so it can never reach a
//! handler that would do something else with the request (store a DLO
//! manifest as a 0-byte object, ignore an expiry the client relies on).

use http::{HeaderMap, Method, StatusCode};

use super::Fail;

/// Containers and objects listed per request at most (Swift's default
/// `container_listing_limit`, shown in `/info`).
pub const LISTING_LIMIT: usize = 10_000;

/// One Swift request, recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `GET /info`: the capabilities document.
    Info,
    HeadAccount(Account),
    ListContainers(Account, Listing),
    /// `POST` on the account: its metadata.
    PostAccount(Account),
    /// `PUT` on a container: create it, or update it if it is the account's.
    PutContainer(Container),
    PostContainer(Container),
    DeleteContainer(Container),
    HeadContainer(Container),
    ListObjects(Container, Listing),
    GetObject(Object),
    HeadObject(Object),
    /// `PUT` of an object's bytes; with `If-None-Match: *`, only if the
    /// key is new.
    PutObject {
        object: Object,
        if_none_match: bool,
    },
    /// `PUT` with `X-Copy-From: <container>/<object>` (same account).
    CopyObject {
        to: Object,
        from_container: String,
        from_object: String,
    },
    PostObject(Object),
    DeleteObject(Object),
}

/// `/v1/AUTH_<account>`: the account is a project id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub project: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub account: Account,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub container: Container,
    pub key: String,
}

/// A listing's parameters, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    pub json: bool,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub marker: Option<String>,
    pub end_marker: Option<String>,
    pub limit: usize,
}

/// Query parameters of the Object Storage API reference (and of the
/// middlewares Swift ships enabled) that nuage does not implement, with
/// what they would do.
pub const UNIMPLEMENTED_PARAMS: &[(&str, &str)] = &[
    ("bulk-delete", "bulk delete"),
    ("extract-archive", "archive extraction"),
    ("temp_url_sig", "temporary URLs"),
    ("temp_url_expires", "temporary URLs"),
    ("temp_url_prefix", "temporary URLs"),
    ("temp_url_ip_range", "temporary URLs"),
    ("filename", "temporary URL file names"),
    ("inline", "temporary URL inline disposition"),
    ("signature", "form POST signatures"),
    ("expires", "form POST signatures"),
    ("version-id", "object versioning"),
    ("versions", "object versioning"),
    ("reverse", "reversed listings"),
    ("path", "pseudo-hierarchical path listings"),
    ("heartbeat", "upload heartbeats"),
    ("multipart-manifest", "static large objects"),
    ("symlink", "symlinks"),
];

/// Headers that select an operation nuage does not implement. Their
/// presence (with any value) refuses the request.
pub const UNIMPLEMENTED_HEADERS: &[(&str, &str)] = &[
    ("x-object-manifest", "dynamic large objects"),
    ("x-static-large-object", "static large objects"),
    ("x-delete-at", "object expiry"),
    ("x-delete-after", "object expiry"),
    ("x-versions-location", "object versioning"),
    ("x-remove-versions-location", "object versioning"),
    ("x-history-location", "object versioning"),
    ("x-remove-history-location", "object versioning"),
    ("x-versions-enabled", "object versioning"),
    ("x-container-sync-to", "container sync"),
    ("x-container-sync-key", "container sync"),
    ("x-symlink-target", "symlinks"),
    ("x-symlink-target-account", "symlinks"),
    ("x-symlink-target-etag", "symlinks"),
    ("x-copy-from-account", "copies across accounts"),
    ("x-fresh-metadata", "copies with fresh metadata"),
    ("x-detect-content-type", "content type detection"),
    ("x-storage-policy", "storage policies"),
    ("x-account-access-control", "account ACLs"),
];

/// Metadata names Swift's middlewares interpret (the name after
/// `X-Account-Meta-` or `X-Container-Meta-`, lowercase): stored as plain
/// metadata they would pretend a feature works.
pub const UNIMPLEMENTED_META: &[(&str, &str)] = &[
    ("temp-url-key", "temporary URLs"),
    ("temp-url-key-2", "temporary URLs"),
    ("quota-bytes", "quotas set as metadata (use nuage quotas)"),
    ("quota-count", "quotas set as metadata (use nuage quotas)"),
    ("web-", "static websites"),
    ("access-control-", "CORS"),
];

/// A 501 whose first words say what: the `swift` client shows only the
/// first 60 characters of an error's body.
fn not_implemented(what: String) -> Fail {
    Fail(
        StatusCode::NOT_IMPLEMENTED,
        format!("not implemented by nuage: {what}; nothing was changed"),
    )
}

impl Operation {
    /// Recognises a request, or refuses it: 501 for what nuage does not
    /// implement, 405 for a method Swift does not have on the resource,
    /// 400/412 for malformed parameters.
    pub fn parse(
        method: &Method,
        path: &str,
        query: &[(String, String)],
        headers: &HeaderMap,
    ) -> Result<Operation, Fail> {
        if path == "/info" {
            refuse_params(query, &[])?;
            return match *method {
                Method::GET | Method::HEAD => Ok(Operation::Info),
                _ => Err(not_allowed(method, "/info")),
            };
        }
        let rest = path
            .strip_prefix("/v1/AUTH_")
            .ok_or_else(|| Fail(StatusCode::NOT_FOUND, "not a Swift path".into()))?;
        let mut it = rest.splitn(3, '/');
        let project = decode(it.next().unwrap_or(""))?;
        let container = it
            .next()
            .filter(|c| !c.is_empty())
            .map(decode)
            .transpose()?;
        let object = it
            .next()
            .filter(|o| !o.is_empty())
            .map(decode)
            .transpose()?;
        refuse_headers(headers)?;
        if method.as_str() == "COPY" {
            return Err(not_implemented(
                "the COPY method (use PUT with X-Copy-From)".into(),
            ));
        }
        let account = Account { project };
        let Some(name) = container else {
            refuse_params(query, LISTING_PARAMS)?;
            return match *method {
                Method::GET => Ok(Operation::ListContainers(
                    account,
                    listing(query, headers, false)?,
                )),
                Method::HEAD => Ok(Operation::HeadAccount(account)),
                Method::POST => Ok(Operation::PostAccount(account)),
                _ => Err(not_allowed(method, "an account")),
            };
        };
        let container = Container { account, name };
        let Some(key) = object else {
            refuse_params(query, LISTING_PARAMS)?;
            refuse_container_write(headers)?;
            return match *method {
                Method::GET => Ok(Operation::ListObjects(
                    container,
                    listing(query, headers, true)?,
                )),
                Method::HEAD => Ok(Operation::HeadContainer(container)),
                Method::PUT => Ok(Operation::PutContainer(container)),
                Method::POST => Ok(Operation::PostContainer(container)),
                Method::DELETE => Ok(Operation::DeleteContainer(container)),
                _ => Err(not_allowed(method, "a container")),
            };
        };
        let object = Object { container, key };
        match *method {
            // There are no manifests and no symlinks: asking for "the
            // manifest itself" or "the link itself" of a plain object is
            // the object (swift download --skip-identical and swift delete
            // ask so).
            Method::GET | Method::HEAD => {
                for (k, v) in query {
                    match (k.as_str(), v.as_str()) {
                        ("multipart-manifest" | "symlink", "get") => {}
                        _ => refuse_params(std::slice::from_ref(&(k.clone(), v.clone())), &[])?,
                    }
                }
                Ok(if *method == Method::GET {
                    Operation::GetObject(object)
                } else {
                    Operation::HeadObject(object)
                })
            }
            Method::PUT => {
                refuse_params(query, &[])?;
                let if_none_match = match headers.get(http::header::IF_NONE_MATCH) {
                    None => false,
                    Some(v) if v.as_bytes().trim_ascii() == b"*" => true,
                    // Swift's own answer to any other value.
                    Some(_) => return Err(bad("If-None-Match only supports *")),
                };
                match headers.get("x-copy-from") {
                    None => Ok(Operation::PutObject {
                        object,
                        if_none_match,
                    }),
                    Some(_) if if_none_match => Err(not_implemented(
                        "the header if-none-match on a copy (X-Copy-From)".into(),
                    )),
                    Some(v) => {
                        let v = v
                            .to_str()
                            .map_err(|_| bad("X-Copy-From is not valid UTF-8"))?;
                        let src = decode(v.trim_start_matches('/'))?;
                        let (c, o) = src
                            .split_once('/')
                            .filter(|(c, o)| !c.is_empty() && !o.is_empty())
                            .ok_or_else(|| {
                                Fail(
                                    StatusCode::PRECONDITION_FAILED,
                                    "X-Copy-From must be <container>/<object>".into(),
                                )
                            })?;
                        Ok(Operation::CopyObject {
                            from_container: c.to_string(),
                            from_object: o.to_string(),
                            to: object,
                        })
                    }
                }
            }
            Method::POST => {
                refuse_params(query, &[])?;
                Ok(Operation::PostObject(object))
            }
            Method::DELETE => {
                refuse_params(query, &[])?;
                Ok(Operation::DeleteObject(object))
            }
            _ => Err(not_allowed(method, "an object")),
        }
    }
}

const LISTING_PARAMS: &[&str] = &[
    "format",
    "limit",
    "marker",
    "end_marker",
    "prefix",
    "delimiter",
];

fn decode(s: &str) -> Result<String, Fail> {
    crate::wire::decode_path(s).ok_or_else(|| bad("the path is not valid UTF-8"))
}

fn bad(msg: &str) -> Fail {
    Fail(StatusCode::BAD_REQUEST, msg.to_string())
}

fn not_allowed(method: &Method, what: &str) -> Fail {
    Fail(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {what}"),
    )
}

/// Refuses every parameter but `allowed`: a known Swift one nuage does not
/// implement by name, and any other as not recognised.
fn refuse_params(query: &[(String, String)], allowed: &[&str]) -> Result<(), Fail> {
    for (k, _) in query {
        if allowed.contains(&k.as_str()) {
            continue;
        }
        return Err(match UNIMPLEMENTED_PARAMS.iter().find(|(p, _)| p == k) {
            Some((p, what)) => not_implemented(format!("{what} (the query parameter {p})")),
            None => not_implemented(format!(
                "the query parameter {k:?} (not a Swift parameter nuage knows)"
            )),
        });
    }
    Ok(())
}

fn refuse_headers(headers: &HeaderMap) -> Result<(), Fail> {
    if let Some((h, what)) = UNIMPLEMENTED_HEADERS
        .iter()
        .find(|(h, _)| headers.contains_key(*h))
    {
        return Err(not_implemented(format!("{what} (the header {h})")));
    }
    for (name, v) in headers {
        let n = name.as_str();
        let Some(meta) = n
            .strip_prefix("x-account-meta-")
            .or_else(|| n.strip_prefix("x-container-meta-"))
        else {
            continue;
        };
        // An empty value removes the key, which is never set: harmless.
        if v.is_empty() {
            continue;
        }
        if let Some((_, what)) = UNIMPLEMENTED_META.iter().find(|(m, _)| {
            if m.ends_with('-') {
                meta.starts_with(m)
            } else {
                meta == *m
            }
        }) {
            return Err(not_implemented(format!("{what} (the header {n})")));
        }
    }
    Ok(())
}

/// Write ACLs (`X-Container-Write`) are not kept: setting one is refused,
/// removing one (an empty value, `X-Remove-Container-Write`) is a no-op.
fn refuse_container_write(headers: &HeaderMap) -> Result<(), Fail> {
    match headers.get("x-container-write") {
        Some(v) if !v.is_empty() => Err(not_implemented(
            "the header x-container-write (write ACLs)".into(),
        )),
        _ => Ok(()),
    }
}

fn listing(
    query: &[(String, String)],
    headers: &HeaderMap,
    delimiter_allowed: bool,
) -> Result<Listing, Fail> {
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.clone());
    let json = match get("format").as_deref() {
        None | Some("") => headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json")),
        Some("json") => true,
        Some("plain") => false,
        Some(f) => {
            return Err(not_implemented(format!(
                "the listing format {f:?} (nuage lists as json or plain)"
            )))
        }
    };
    let limit = match get("limit") {
        None => LISTING_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= LISTING_LIMIT)
            .ok_or_else(|| {
                Fail(
                    StatusCode::PRECONDITION_FAILED,
                    format!("limit must be a number up to {LISTING_LIMIT}"),
                )
            })?,
    };
    let delimiter = get("delimiter").filter(|d| !d.is_empty());
    if delimiter.is_some() && !delimiter_allowed {
        return Err(not_implemented(
            "the query parameter delimiter on an account listing".into(),
        ));
    }
    Ok(Listing {
        json,
        prefix: get("prefix").unwrap_or_default(),
        delimiter,
        marker: get("marker").filter(|m| !m.is_empty()),
        end_marker: get("end_marker").filter(|m| !m.is_empty()),
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: &str, uri: &str, headers: &[(&str, &str)]) -> Result<Operation, Fail> {
        let uri: http::Uri = uri.parse().expect("uri");
        let query = crate::wire::query_pairs(&uri);
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        Operation::parse(&m, uri.path(), &query, &h)
    }

    #[test]
    fn recognises_what_nuage_implements() {
        let c = Container {
            account: Account {
                project: "p".into(),
            },
            name: "c".into(),
        };
        assert_eq!(
            parse("PUT", "/v1/AUTH_p/c", &[]).ok(),
            Some(Operation::PutContainer(c.clone()))
        );
        assert!(matches!(
            parse("GET", "/v1/AUTH_p/c?format=json&limit=5&prefix=a", &[]),
            Ok(Operation::ListObjects(
                _,
                Listing {
                    json: true,
                    limit: 5,
                    ..
                }
            ))
        ));
        assert!(matches!(
            parse("HEAD", "/v1/AUTH_p/c/o?symlink=get", &[]),
            Ok(Operation::HeadObject(_))
        ));
        assert!(matches!(
            parse("PUT", "/v1/AUTH_p/c/o", &[("if-none-match", " * ")]),
            Ok(Operation::PutObject {
                if_none_match: true,
                ..
            })
        ));
        assert!(matches!(
            parse("PUT", "/v1/AUTH_p/c/o", &[]),
            Ok(Operation::PutObject {
                if_none_match: false,
                ..
            })
        ));
        assert!(matches!(
            parse("PUT", "/v1/AUTH_p/c/o", &[("if-none-match", "abc")]),
            Err(Fail(StatusCode::BAD_REQUEST, _))
        ));
        assert!(matches!(
            parse("PUT", "/v1/AUTH_p/c/o", &[("x-copy-from", "/a/b/c")]),
            Ok(Operation::CopyObject { ref from_container, ref from_object, .. })
                if from_container == "a" && from_object == "b/c"
        ));
        assert_eq!(parse("GET", "/info", &[]).ok(), Some(Operation::Info));
    }

    #[test]
    fn refuses_what_it_does_not() {
        for (m, uri, h) in [
            ("PUT", "/v1/AUTH_p/c/o?multipart-manifest=put", vec![]),
            ("DELETE", "/v1/AUTH_p/c/o?multipart-manifest=delete", vec![]),
            (
                "PUT",
                "/v1/AUTH_p/c/o",
                vec![("x-object-manifest", "c/seg")],
            ),
            ("POST", "/v1/AUTH_p?bulk-delete", vec![]),
            ("GET", "/v1/AUTH_p/c?format=xml", vec![]),
            ("GET", "/v1/AUTH_p?delimiter=/", vec![]),
            ("COPY", "/v1/AUTH_p/c/o", vec![("destination", "c/o2")]),
            (
                "POST",
                "/v1/AUTH_p/c",
                vec![("x-container-meta-web-index", "i")],
            ),
            ("PUT", "/v1/AUTH_p/c", vec![("x-container-write", "*:*")]),
            (
                "PUT",
                "/v1/AUTH_p/c/o",
                vec![("x-copy-from", "c/p"), ("if-none-match", "*")],
            ),
            ("GET", "/v1/AUTH_p/c/o?cachebuster=1", vec![]),
        ] {
            let r = parse(m, uri, &h);
            assert!(
                matches!(r, Err(Fail(StatusCode::NOT_IMPLEMENTED, _))),
                "{m} {uri} {h:?}: {r:?}"
            );
        }
        assert!(matches!(
            parse("PATCH", "/v1/AUTH_p/c/o", &[]),
            Err(Fail(StatusCode::METHOD_NOT_ALLOWED, _))
        ));
    }
}
