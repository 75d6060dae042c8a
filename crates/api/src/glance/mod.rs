//! The OpenStack Image (Glance) v2 API under `/image` (ADR 30, 32):
//! version discovery, images (create, upload, download, show, list with
//! filters and paging, JSON-patch updates, delete), tags, deactivation,
//! community visibility and members, over the compute service's images that
//! EC2 and the native API see.
//!
//! As every door (habit 12): method, path and (for JSON calls) the body
//! become one [`Op`] before authentication; image data is streamed, never
//! buffered. Interoperable import is disabled (no import method is offered
//! and an import is refused with the reason); task, metadef and cache APIs
//! answer 501. Errors take the shape
//! Glance's WSGI layer gives JSON clients:
//! `{"code": "404 Not Found", "title": "Not Found", "message": "..."}`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http::{header, HeaderValue, Method, StatusCode};
use nuage_compute::types::{Image, Visibility};
use nuage_compute::{ImagePatch, ImageQuery, NewImage};
use nuage_model::identity::Principal;
use nuage_model::{ErrorKind, HasKind};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::{auth, context, Core, SharedCore};

/// Largest JSON body the door reads.
const MAX_BODY: usize = 1 << 20;

/// Image properties Glance defines itself; anything else is custom.
const CORE_PROPERTIES: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "owner",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "min_disk",
    "min_ram",
    "disk_format",
    "container_format",
    "created_at",
    "updated_at",
    "tags",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "os_hidden",
    "stores",
];

/// The formats nuage's drivers run: a root filesystem tarball or an OCI
/// archive, as raw data (qcow2 and the rest when VMs land).
const DISK_FORMATS: &[&str] = &["raw"];
const CONTAINER_FORMATS: &[&str] = &["bare", "compressed", "docker"];

/// A Glance error.
#[derive(Debug)]
pub struct Fault {
    status: StatusCode,
    message: String,
}

impl Fault {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Fault {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Fault::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Fault::new(StatusCode::NOT_FOUND, message)
    }

    fn not_yet(what: &str) -> Self {
        Fault::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("nuage does not serve {what} through the Image API yet"),
        )
    }

    fn from_core<E: HasKind + std::error::Error>(e: &E) -> Self {
        let (kind, message) = context::public_error(e);
        let status = match kind {
            ErrorKind::QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
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

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = json!({
            "code": format!("{} {title}", self.status.as_u16()),
            "title": title,
            "message": self.message,
        });
        (self.status, axum::Json(body)).into_response()
    }
}

type Result<T> = std::result::Result<T, Fault>;

/// One recognised Image API request.
#[derive(Debug)]
enum Op {
    Versions,
    List(ListQuery),
    Get(String),
    Create(Map<String, Value>),
    Patch(String, Vec<PatchOp>),
    Delete(String),
    Upload(String),
    Download(String),
    Members(String),
    AddMember(String, String),
    RemoveMember(String, String),
    Schema(String),
    AddTag(String, String),
    RemoveTag(String, String),
    Deactivate(String),
    Reactivate(String),
    /// `GET /v2/info/import`: the import methods offered (none).
    ImportInfo,
    /// `POST /v2/images/{id}/import`: refused once the image is found.
    Import(String),
}

#[derive(Debug, Default)]
struct ListQuery {
    limit: Option<usize>,
    marker: Option<String>,
    name: Option<String>,
    visibility: Option<String>,
    owner: Option<String>,
    status: Option<String>,
    /// Every one of these tags (`tag` may repeat).
    tags: Vec<String>,
    sort_key: String,
    descending: bool,
    /// Custom property filters (Glance filters on any property).
    properties: BTreeMap<String, String>,
}

/// One JSON-patch operation on an image.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchOp {
    op: String,
    path: String,
    #[serde(default)]
    value: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    member: String,
}

fn json_body<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw)
        .map_err(|e| Fault::bad_request(format!("The request body is not valid: {e}")))
}

impl ListQuery {
    fn parse(query: &[(String, String)]) -> Result<ListQuery> {
        let mut q = ListQuery {
            sort_key: "created_at".into(),
            descending: true,
            ..ListQuery::default()
        };
        for (k, v) in query {
            match k.as_str() {
                "limit" => {
                    q.limit = Some(v.parse().map_err(|_| {
                        Fault::bad_request(format!("limit param must be an integer: {v}"))
                    })?)
                }
                "marker" => q.marker = Some(v.clone()),
                "name" => q.name = Some(v.clone()),
                "visibility" if v == "all" => {}
                "visibility" => {
                    if !["public", "private", "shared", "community"].contains(&v.as_str()) {
                        return Err(Fault::bad_request(format!("Invalid visibility value: {v}")));
                    }
                    q.visibility = Some(v.clone())
                }
                "owner" => q.owner = Some(v.clone()),
                "status" => q.status = Some(v.clone()),
                "sort_key" => {
                    if !["name", "created_at", "updated_at", "size", "id", "status"]
                        .contains(&v.as_str())
                    {
                        return Err(Fault::bad_request(format!("Invalid sort key: {v}")));
                    }
                    q.sort_key = v.clone()
                }
                "sort_dir" => {
                    q.descending = match v.as_str() {
                        "asc" => false,
                        "desc" => true,
                        _ => {
                            return Err(Fault::bad_request(format!("Invalid sort direction: {v}")))
                        }
                    }
                }
                "sort" => {
                    // `sort=name:asc,created_at` : the first key decides.
                    let first = v.split(',').next().unwrap_or_default();
                    let (key, dir) = first.split_once(':').unwrap_or((first, "desc"));
                    q.sort_key = key.to_string();
                    q.descending = dir != "asc";
                }
                "member_status" | "os_hidden" => {}
                "tag" => q.tags.push(v.clone()),
                "size_min" | "size_max" | "protected" | "created_at" | "updated_at" => {
                    return Err(Fault::not_yet(&format!("the {k} filter")))
                }
                _ => {
                    q.properties.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(q)
    }
}

impl Op {
    fn parse(method: &Method, path: &str, query: &[(String, String)]) -> Result<(Op, bool)> {
        let segs: Vec<&str> = path
            .trim_start_matches("/image")
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        // (op, whether it reads a JSON body)
        let op = match (method.clone(), segs.as_slice()) {
            (Method::GET, [] | ["versions"]) => Op::Versions,
            (
                _,
                ["v2" | "v2.0" | "v2.1" | "v2.2" | "v2.3" | "v2.4" | "v2.5" | "v2.6" | "v2.7"
                | "v2.8" | "v2.9", rest @ ..],
            ) => return Self::parse_v2(method, rest, query),
            (_, [] | ["versions"]) => return Err(bad_method()),
            _ => return Err(Fault::not_found("The resource could not be found.")),
        };
        Ok((op, false))
    }

    fn parse_v2(method: &Method, rest: &[&str], query: &[(String, String)]) -> Result<(Op, bool)> {
        let id = |s: &str| s.to_string();
        Ok(match (method.clone(), rest) {
            (Method::GET, ["images"]) => (Op::List(ListQuery::parse(query)?), false),
            (Method::POST, ["images"]) => (Op::Create(Map::new()), true),
            (Method::GET, ["images", i]) => (Op::Get(id(i)), false),
            (Method::PATCH, ["images", i]) => (Op::Patch(id(i), Vec::new()), true),
            (Method::DELETE, ["images", i]) => (Op::Delete(id(i)), false),
            (Method::PUT, ["images", i, "file"]) => (Op::Upload(id(i)), false),
            (Method::GET, ["images", i, "file"]) => (Op::Download(id(i)), false),
            (Method::GET, ["images", i, "members"]) => (Op::Members(id(i)), false),
            (Method::POST, ["images", i, "members"]) => (Op::AddMember(id(i), String::new()), true),
            (Method::DELETE, ["images", i, "members", m]) => {
                (Op::RemoveMember(id(i), id(m)), false)
            }
            (Method::GET, ["schemas", s]) => (Op::Schema(id(s)), false),
            (Method::PUT, ["images", i, "tags", t]) => (Op::AddTag(id(i), id(t)), false),
            (Method::DELETE, ["images", i, "tags", t]) => (Op::RemoveTag(id(i), id(t)), false),
            (Method::POST, ["images", i, "actions", "deactivate"]) => {
                (Op::Deactivate(id(i)), false)
            }
            (Method::POST, ["images", i, "actions", "reactivate"]) => {
                (Op::Reactivate(id(i)), false)
            }
            (Method::GET, ["info", "import"]) => (Op::ImportInfo, false),
            (Method::POST, ["images", i, "import"]) => (Op::Import(id(i)), false),
            (
                _,
                ["images", _, "tags", _]
                | ["images", _, "actions", "deactivate" | "reactivate"]
                | ["images", _, "import"]
                | ["info", "import"],
            ) => return Err(bad_method()),
            (_, ["info", ..]) => return Err(Fault::not_yet(&format!("/v2/{}", rest.join("/")))),
            (_, ["images", _, "members", _]) => {
                return Err(Fault::not_yet(
                    "member status changes (members are accepted when added)",
                ))
            }
            (
                _,
                ["images", _, "stage"]
                | ["tasks", ..]
                | ["metadefs", ..]
                | ["stores", ..]
                | ["discovery", ..]
                | ["cache", ..],
            ) => return Err(Fault::not_yet(&format!("/v2/{}", rest.join("/")))),
            (_, ["images"] | ["images", _] | ["images", _, "file" | "members"]) => {
                return Err(bad_method())
            }
            _ => return Err(Fault::not_found("The resource could not be found.")),
        })
    }
}

fn bad_method() -> Fault {
    Fault::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method is not allowed for this resource.",
    )
}

fn base(core: &Core) -> String {
    format!("{}/image", core.public_url.trim_end_matches('/'))
}

fn versions(core: &Core) -> Response {
    let list: Vec<Value> = [
        "2.9", "2.8", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0",
    ]
    .iter()
    .enumerate()
    .map(|(i, v)| {
        json!({
            "id": format!("v{v}"),
            "status": if i == 0 { "CURRENT" } else { "SUPPORTED" },
            "links": [{"rel": "self", "href": format!("{}/v2/", base(core))}],
        })
    })
    .collect();
    (StatusCode::OK, axum::Json(json!({ "versions": list }))).into_response()
}

/// Serves one Image API request.
pub async fn handle(core: SharedCore, req: axum::extract::Request) -> Response {
    let mut resp = match serve(&core, req).await {
        Ok(r) => r,
        Err(f) => f.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&context::request_id()) {
        resp.headers_mut().insert("x-openstack-request-id", v);
    }
    resp
}

async fn serve(core: &Core, req: axum::extract::Request) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let query = crate::wire::query_pairs(&parts.uri);
    let (mut op, reads_json) = Op::parse(&parts.method, parts.uri.path(), &query)?;
    let mut body = Some(body);
    if reads_json {
        let raw = axum::body::to_bytes(body.take().unwrap_or_default(), MAX_BODY)
            .await
            .map_err(|_| {
                Fault::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("The request body is larger than {MAX_BODY} bytes."),
                )
            })?;
        op = match op {
            Op::Create(_) => Op::Create(json_body(&raw)?),
            Op::Patch(id, _) => {
                let ct = parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !ct.starts_with("application/openstack-images-v2.1-json-patch") {
                    return Err(Fault::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "An image update takes Content-Type application/openstack-images-v2.1-json-patch",
                    ));
                }
                Op::Patch(id, json_body(&raw)?)
            }
            Op::AddMember(id, _) => Op::AddMember(id, json_body::<MemberBody>(&raw)?.member),
            other => other,
        };
    }
    if let Op::Versions = op {
        return Ok(versions(core));
    }
    let Some(token) = auth::token(&parts) else {
        return Err(Fault::new(
            StatusCode::UNAUTHORIZED,
            "This server could not verify that you are authorized to access the document you requested.",
        ));
    };
    let caller = core.identity.validate(token).await.map_err(|e| match e.kind() {
        ErrorKind::Internal | ErrorKind::Unavailable => Fault::from_core(&e),
        _ => Fault::new(
            StatusCode::UNAUTHORIZED,
            "This server could not verify that you are authorized to access the document you requested.",
        ),
    })?;
    run(core, &caller, op, body.take().unwrap_or_default()).await
}

/// Glance answers an action the image's status does not allow 403.
fn action_error(e: nuage_compute::ComputeError, id: &str) -> Fault {
    match e.kind() {
        ErrorKind::Conflict => Fault::new(StatusCode::FORBIDDEN, e.to_string()),
        _ => image_error(e, id),
    }
}

/// Glance's words for an image the caller cannot see.
fn image_error(e: nuage_compute::ComputeError, id: &str) -> Fault {
    match e.kind() {
        ErrorKind::NotFound => Fault::not_found(format!("No image found with ID {id}")),
        _ => e.into(),
    }
}

async fn image(core: &Core, caller: &Principal, id: &str) -> Result<Image> {
    core.compute
        .get_image(caller, id)
        .await
        .map_err(|e| image_error(e, id))
}

fn ok(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn run(core: &Core, caller: &Principal, op: Op, body: Body) -> Result<Response> {
    match op {
        Op::Versions => Ok(versions(core)),
        Op::Schema(name) => match name.as_str() {
            "image" | "images" | "member" | "members" => Ok(ok(
                StatusCode::OK,
                json!({"name": name, "properties": {}, "additionalProperties": {"type": "string"}}),
            )),
            _ => Err(Fault::not_found(format!("No schema named {name}"))),
        },
        Op::List(q) => list(core, caller, q).await,
        Op::Get(id) => Ok(ok(StatusCode::OK, view(&image(core, caller, &id).await?))),
        Op::Create(body) => create(core, caller, body).await,
        Op::Patch(id, ops) => patch(core, caller, &id, ops).await,
        Op::Delete(id) => {
            let i = image(core, caller, &id).await?;
            core.compute.delete_image(caller, &i.id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::Upload(id) => {
            let i = image(core, caller, &id).await?;
            let mut upload = core.compute.begin_upload(caller, &i.id).await?;
            let mut stream = body.into_data_stream();
            while let Some(chunk) = stream.next().await {
                let written = match chunk {
                    Ok(chunk) => upload.write(chunk).await.map_err(Fault::from),
                    Err(e) => Err(Fault::bad_request(format!("the upload was cut short: {e}"))),
                };
                if let Err(e) = written {
                    upload.abort().await;
                    return Err(e);
                }
            }
            upload.finish().await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::Download(id) => {
            let i = image(core, caller, &id).await?;
            // Glance answers an image without data 204, with no body.
            let (img, file) = match core.compute.open_image_data(caller, &i.id).await {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::Conflict => {
                    return Ok(StatusCode::NO_CONTENT.into_response())
                }
                Err(e) => return Err(image_error(e, &id)),
            };
            let mut resp =
                Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Some(v) = img
                .md5
                .as_deref()
                .and_then(|m| HeaderValue::from_str(m).ok())
            {
                h.insert("content-md5", v);
            }
            if let Some(size) = img.size {
                if let Ok(v) = HeaderValue::from_str(&size.to_string()) {
                    h.insert(header::CONTENT_LENGTH, v);
                }
            }
            Ok(resp)
        }
        Op::Members(id) => {
            let i = image(core, caller, &id).await?;
            let members: Vec<Value> = i.members.iter().map(|m| member_view(&i, m)).collect();
            Ok(ok(
                StatusCode::OK,
                json!({"members": members, "schema": "/v2/schemas/members"}),
            ))
        }
        Op::AddMember(id, member) => {
            let i = image(core, caller, &id).await?;
            if matches!(i.visibility, Visibility::Public | Visibility::Community) {
                return Err(Fault::new(
                    StatusCode::FORBIDDEN,
                    "Only shared images have members.",
                ));
            }
            let shared = core.compute.share_image(caller, &i.id, &member).await?;
            let pid = shared
                .members
                .iter()
                .find(|m| **m == member)
                .cloned()
                .unwrap_or(member);
            Ok(ok(StatusCode::OK, member_view(&shared, &pid)))
        }
        Op::AddTag(id, tag) => {
            let i = image(core, caller, &id).await?;
            core.compute
                .add_image_tag(caller, &i.id, &tag)
                .await
                .map_err(|e| image_error(e, &id))?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::RemoveTag(id, tag) => {
            let i = image(core, caller, &id).await?;
            core.compute
                .remove_image_tag(caller, &i.id, &tag)
                .await
                .map_err(|e| match e.kind() {
                    ErrorKind::NotFound => Fault::not_found(format!("Tag {tag} not found")),
                    _ => e.into(),
                })?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::Deactivate(id) => {
            let i = image(core, caller, &id).await?;
            let r = core.compute.deactivate_image(caller, &i.id).await;
            r.map_err(|e| action_error(e, &id))?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::Reactivate(id) => {
            let i = image(core, caller, &id).await?;
            let r = core.compute.reactivate_image(caller, &i.id).await;
            r.map_err(|e| action_error(e, &id))?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::ImportInfo => Ok(ok(
            StatusCode::OK,
            json!({"import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": [],
            }}),
        )),
        Op::Import(id) => {
            image(core, caller, &id).await?;
            Err(Fault::bad_request(
                "Image import is disabled in nuage: neither glance-direct nor web-download is offered (GET /v2/info/import lists none). Upload the data with PUT /v2/images/{id}/file (openstack image create --file).",
            ))
        }
        Op::RemoveMember(id, member) => {
            let i = image(core, caller, &id).await?;
            core.compute.unshare_image(caller, &i.id, &member).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

fn member_view(i: &Image, member: &str) -> Value {
    json!({
        "image_id": i.id,
        "member_id": member,
        "status": "accepted",
        "created_at": i.created_at,
        "updated_at": i.created_at,
        "schema": "/v2/schemas/member",
    })
}

async fn list(core: &Core, caller: &Principal, q: ListQuery) -> Result<Response> {
    let mut all = core
        .compute
        .list_images(
            caller,
            &ImageQuery {
                name: q.name.clone(),
                visibility: q.visibility.clone(),
                owner: q.owner.clone(),
            },
        )
        .await?;
    all.retain(|i| {
        q.status.as_deref().is_none_or(|s| glance_status(i) == s)
            && q.tags.iter().all(|t| i.tags.contains(t))
            && q.properties.iter().all(|(k, v)| match k.as_str() {
                "disk_format" | "container_format" => i.properties.get(k).is_some_and(|x| x == v),
                _ => i.properties.get(k) == Some(v),
            })
    });
    match q.sort_key.as_str() {
        "name" => all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
        "size" => all.sort_by(|a, b| a.size.cmp(&b.size).then(a.id.cmp(&b.id))),
        "id" => all.sort_by(|a, b| a.id.cmp(&b.id)),
        "status" => all.sort_by(|a, b| a.status.cmp(&b.status).then(a.id.cmp(&b.id))),
        _ => all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id))),
    }
    if q.descending {
        all.reverse();
    }
    let (shown, more) =
        crate::wire::after_marker(&all, |i| i.id.as_str(), q.marker.as_deref(), q.limit)
            .ok_or_else(|| {
                Fault::bad_request(format!(
                    "Invalid marker. Image {} could not be found.",
                    q.marker.as_deref().unwrap_or_default()
                ))
            })?;
    let mut out = json!({
        "images": shown.iter().map(view).collect::<Vec<_>>(),
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    });
    if let (Some(limit), Some(last)) = (q.limit, shown.last()) {
        if more {
            out["next"] = json!(format!("/v2/images?limit={limit}&marker={}", last.id));
        }
    }
    Ok(ok(StatusCode::OK, out))
}

/// Glance's status names for nuage's image states.
fn glance_status(i: &Image) -> &str {
    match i.status.as_str() {
        // A snapshot being taken of an instance (CreateImage).
        "snapshotting" => "saving",
        other => other,
    }
}

fn view(i: &Image) -> Value {
    // SHA-512 as Glance's default; data uploaded before nuage kept it
    // shows the SHA-256 it is stored by.
    let (hash_algo, hash_value) = match (&i.sha512, &i.sha256) {
        (Some(h), _) => (Some("sha512"), Some(h)),
        (None, Some(h)) => (Some("sha256"), Some(h)),
        (None, None) => (None, None),
    };
    let mut out = json!({
        "id": i.id,
        "name": i.name,
        "status": glance_status(i),
        "visibility": i.visibility.as_str(),
        "protected": false,
        "os_hidden": false,
        "owner": i.owner,
        "checksum": i.md5,
        "os_hash_algo": hash_algo,
        "os_hash_value": hash_value,
        "size": i.size,
        "virtual_size": null,
        "min_disk": 0,
        "min_ram": 0,
        "disk_format": i.properties.get("disk_format").cloned().unwrap_or_else(|| "raw".into()),
        "container_format": i.properties.get("container_format").cloned().unwrap_or_else(|| "bare".into()),
        "created_at": i.created_at,
        "updated_at": i.created_at,
        "tags": i.tags,
        "self": format!("/v2/images/{}", i.id),
        "file": format!("/v2/images/{}/file", i.id),
        "schema": "/v2/schemas/image",
    });
    if let (Some(arch), Some(m)) = (&i.architecture, out.as_object_mut()) {
        m.insert("architecture".into(), json!(arch));
    }
    if let Some(m) = out.as_object_mut() {
        for (k, v) in &i.properties {
            if !CORE_PROPERTIES.contains(&k.as_str()) {
                m.insert(k.clone(), json!(v));
            }
        }
    }
    out
}

/// A JSON list of tag strings.
fn tag_list(v: &Value) -> Result<Vec<String>> {
    let bad = || Fault::bad_request("Invalid value for tags: a list of strings is expected");
    v.as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|t| t.as_str().map(str::to_string).ok_or_else(bad))
        .collect()
}

fn check_formats(disk: Option<&str>, container: Option<&str>) -> Result<()> {
    if let Some(d) = disk {
        if !DISK_FORMATS.contains(&d) {
            return Err(Fault::bad_request(format!(
                "Invalid disk format '{d}' for image: nuage runs {} images (root filesystem tarballs and OCI archives) until VMs land",
                DISK_FORMATS.join(", ")
            )));
        }
    }
    if let Some(c) = container {
        if !CONTAINER_FORMATS.contains(&c) {
            return Err(Fault::bad_request(format!(
                "Invalid container format '{c}' for image: nuage takes {}",
                CONTAINER_FORMATS.join(", ")
            )));
        }
    }
    Ok(())
}

fn string(v: &Value, key: &str) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(Fault::bad_request(format!(
            "Invalid value for {key}: a string is expected"
        ))),
    }
}

async fn create(core: &Core, caller: &Principal, body: Map<String, Value>) -> Result<Response> {
    let mut name = None;
    let mut visibility = None;
    let mut architecture = None;
    let mut properties = BTreeMap::new();
    let mut disk = None;
    let mut container = None;
    let mut tags = Vec::new();
    for (k, v) in &body {
        match k.as_str() {
            "name" => name = Some(string(v, k)?),
            "visibility" => {
                let vis = string(v, k)?;
                match vis.as_str() {
                    "private" | "shared" | "public" | "community" => visibility = Some(vis),
                    _ => {
                        return Err(Fault::bad_request(format!(
                            "Invalid visibility value: {vis}"
                        )))
                    }
                }
            }
            "disk_format" => disk = Some(string(v, k)?),
            "container_format" => container = Some(string(v, k)?),
            "architecture" => architecture = Some(string(v, k)?),
            "tags" => tags = tag_list(v)?,
            "protected" if v == &json!(false) => {}
            "min_disk" | "min_ram" if v == &json!(0) => {}
            "id" => return Err(Fault::bad_request("nuage chooses image ids; give no id")),
            "protected" | "min_disk" | "min_ram" | "os_hidden" | "locations" => {
                return Err(Fault::not_yet(&format!("the {k} property")))
            }
            other if CORE_PROPERTIES.contains(&other) => {
                return Err(Fault::new(
                    StatusCode::FORBIDDEN,
                    format!("Attribute '{other}' is read-only."),
                ))
            }
            other => {
                properties.insert(other.to_string(), string(v, other)?);
            }
        }
    }
    check_formats(disk.as_deref(), container.as_deref())?;
    properties.insert("disk_format".into(), disk.unwrap_or_else(|| "raw".into()));
    properties.insert(
        "container_format".into(),
        container.unwrap_or_else(|| "bare".into()),
    );
    let name = name.ok_or_else(|| Fault::bad_request("An image needs a name in nuage"))?;
    let mut i = core
        .compute
        .create_image(
            caller,
            NewImage {
                name,
                visibility,
                architecture,
                properties,
            },
        )
        .await?;
    if !tags.is_empty() {
        let set = ImagePatch {
            tags: Some(tags),
            ..ImagePatch::default()
        };
        i = match core.compute.update_image(caller, &i.id, set).await {
            Ok(i) => i,
            Err(e) => {
                // All or nothing: the image made a moment ago goes again.
                if let Err(d) = core.compute.delete_image(caller, &i.id).await {
                    tracing::warn!(image = %i.id, error = %d, "image with refused tags not removed");
                }
                return Err(e.into());
            }
        };
    }
    let mut resp = ok(StatusCode::CREATED, view(&i));
    if let Ok(v) = HeaderValue::from_str(&format!("{}/v2/images/{}", base(core), i.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn patch(core: &Core, caller: &Principal, id: &str, ops: Vec<PatchOp>) -> Result<Response> {
    let i = image(core, caller, id).await?;
    let mut p = ImagePatch::default();
    for op in &ops {
        if !matches!(op.op.as_str(), "add" | "replace" | "remove") {
            return Err(Fault::bad_request(format!("Invalid operation: {}", op.op)));
        }
        let key = op
            .path
            .strip_prefix('/')
            .filter(|k| !k.is_empty() && !k.contains('/'))
            .ok_or_else(|| {
                Fault::bad_request(format!(
                    "Invalid JSON pointer for this resource: '{}'",
                    op.path
                ))
            })?;
        if op.op == "remove" {
            match key {
                "tags" => p.tags = Some(Vec::new()),
                other if CORE_PROPERTIES.contains(&other) => {
                    return Err(Fault::new(
                        StatusCode::FORBIDDEN,
                        format!("Attribute '{other}' is read-only or required."),
                    ))
                }
                other => p.remove_properties.push(other.to_string()),
            }
            continue;
        }
        let value = op
            .value
            .as_ref()
            .ok_or_else(|| Fault::bad_request(format!("Operation {} needs a value", op.op)))?;
        match key {
            "name" => p.name = Some(string(value, key)?),
            "visibility" => p.visibility = Some(string(value, key)?),
            "disk_format" | "container_format" => {
                if i.status != "queued" {
                    return Err(Fault::new(
                        StatusCode::FORBIDDEN,
                        format!("Attribute {key} can be only replaced for a queued image."),
                    ));
                }
                let v = string(value, key)?;
                if key == "disk_format" {
                    check_formats(Some(&v), None)?;
                } else {
                    check_formats(None, Some(&v))?;
                }
                p.properties.insert(key.to_string(), v);
            }
            "tags" => p.tags = Some(tag_list(value)?),
            other if CORE_PROPERTIES.contains(&other) => {
                return Err(Fault::new(
                    StatusCode::FORBIDDEN,
                    format!("Attribute '{other}' is read-only."),
                ))
            }
            other => {
                p.properties
                    .insert(other.to_string(), string(value, other)?);
            }
        }
    }
    let i = core
        .compute
        .update_image(caller, &i.id, p)
        .await
        .map_err(|e| image_error(e, id))?;
    Ok(ok(StatusCode::OK, view(&i)))
}
