//! Native API for compute: images, instance types, key pairs, placement
//! groups, instances, zones, regions and nodes. Each handler authenticates
//! (the `Caller` extractor), translates, and calls the compute service,
//! which authorises and holds every rule.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use futures_util::StreamExt;
use http::StatusCode;
use nuage_compute::types::{InstanceType, State as InstanceState};
use nuage_compute::{
    Action, ImagePatch, ImageQuery, InstancePatch, InstanceQuery, NewImage, NewKeyPair, RunRequest,
};
use serde::Deserialize;
use serde_json::json;

use super::{Caller, Json, NativeError};
use crate::SharedCore;

type Result<T> = std::result::Result<T, NativeError>;

fn items<T: serde::Serialize>(v: Vec<T>) -> Response {
    axum::Json(json!({ "items": v })).into_response()
}

fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

pub fn routes() -> Router<SharedCore> {
    Router::new()
        .route("/nuage/v1/images", get(list_images).post(create_image))
        .route(
            "/nuage/v1/images/{image}",
            get(get_image).patch(update_image).delete(delete_image),
        )
        .route(
            "/nuage/v1/images/{image}/file",
            put(upload_image).layer(DefaultBodyLimit::disable()),
        )
        .route("/nuage/v1/images/{image}/members", post(share_image))
        .route(
            "/nuage/v1/images/{image}/members/{project}",
            axum::routing::delete(unshare_image),
        )
        .route(
            "/nuage/v1/instance-types",
            get(list_types).post(create_type),
        )
        .route(
            "/nuage/v1/instance-types/{name}",
            get(get_type).delete(delete_type),
        )
        .route(
            "/nuage/v1/instance-types/{name}/extra-specs",
            axum::routing::patch(set_type_specs),
        )
        .route(
            "/nuage/v1/instance-types/{name}/extra-specs/{key}",
            axum::routing::delete(unset_type_spec),
        )
        .route("/nuage/v1/instance-types/{name}/access", get(type_access))
        .route(
            "/nuage/v1/instance-types/{name}/access/{project}",
            put(add_type_access).delete(remove_type_access),
        )
        .route("/nuage/v1/key-pairs", get(list_keys).post(create_key))
        .route(
            "/nuage/v1/key-pairs/{name}",
            get(get_key).delete(delete_key),
        )
        .route(
            "/nuage/v1/placement-groups",
            get(list_groups).post(create_group),
        )
        .route(
            "/nuage/v1/placement-groups/{name}",
            axum::routing::delete(delete_group),
        )
        .route("/nuage/v1/instances", get(describe).post(run))
        .route(
            "/nuage/v1/instances/{id}",
            get(get_instance).post(act).patch(modify),
        )
        .route("/nuage/v1/instances/{id}/console", get(console))
        .route("/nuage/v1/instances/{id}/image", post(create_image_from))
        .route("/nuage/v1/availability-zones", get(zones))
        .route("/nuage/v1/regions", get(regions))
        .route("/nuage/v1/nodes", get(nodes))
}

// ----------------------------------------------------------------- images

async fn list_images(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(q): Query<ImageQuery>,
) -> Result<Response> {
    Ok(items(core.compute.list_images(&p, &q).await?))
}

async fn create_image(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(new): Json<NewImage>,
) -> Result<Response> {
    Ok(created(core.compute.create_image(&p, new).await?))
}

async fn get_image(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(axum::Json(core.compute.get_image(&p, &id).await?).into_response())
}

async fn update_image(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(patch): Json<ImagePatch>,
) -> Result<Response> {
    Ok(axum::Json(core.compute.update_image(&p, &id, patch).await?).into_response())
}

async fn delete_image(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    core.compute.delete_image(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Streams the archive to disk as it arrives: images can be gigabytes.
async fn upload_image(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let mut upload = core.compute.begin_upload(&p, &id).await?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let written = match chunk {
            Ok(chunk) => upload.write(chunk).await.map_err(NativeError::from),
            Err(e) => Err(NativeError::invalid(format!(
                "the upload was cut short: {e}"
            ))),
        };
        if let Err(e) = written {
            upload.abort().await;
            return Err(e);
        }
    }
    Ok(axum::Json(upload.finish().await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Member {
    project: String,
}

async fn share_image(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(m): Json<Member>,
) -> Result<Response> {
    Ok(created(
        core.compute.share_image(&p, &id, &m.project).await?,
    ))
}

async fn unshare_image(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((id, project)): Path<(String, String)>,
) -> Result<StatusCode> {
    core.compute.unshare_image(&p, &id, &project).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --------------------------------------------------------- instance types

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewType {
    name: String,
    vcpus: u32,
    memory_mib: u64,
    disk_gib: u64,
    pids_limit: Option<u32>,
    io_weight: Option<u16>,
    /// False: seen and launched only by the projects given access.
    #[serde(default = "yes")]
    is_public: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    extra_specs: std::collections::BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

async fn list_types(State(core): State<SharedCore>, Caller(p): Caller) -> Result<Response> {
    Ok(items(core.compute.list_instance_types(&p).await?))
}

async fn get_type(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> Result<Response> {
    Ok(axum::Json(core.compute.get_instance_type(&p, &name).await?).into_response())
}

async fn create_type(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(t): Json<NewType>,
) -> Result<Response> {
    let t = InstanceType {
        name: t.name,
        vcpus: t.vcpus,
        memory_mib: t.memory_mib,
        disk_gib: t.disk_gib,
        pids_limit: t
            .pids_limit
            .unwrap_or_else(|| nuage_compute::catalog::default_pids_limit(t.vcpus)),
        io_weight: t
            .io_weight
            .unwrap_or(nuage_compute::catalog::DEFAULT_IO_WEIGHT),
        builtin: false,
        is_public: t.is_public,
        description: t.description,
        extra_specs: t.extra_specs,
    };
    Ok(created(core.compute.create_instance_type(&p, t).await?))
}

async fn delete_type(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    core.compute.delete_instance_type(&p, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Merges extra specs into a type's (admins).
async fn set_type_specs(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(name): Path<String>,
    Json(specs): Json<std::collections::BTreeMap<String, String>>,
) -> Result<Response> {
    Ok(axum::Json(core.compute.set_extra_specs(&p, &name, specs).await?).into_response())
}

async fn unset_type_spec(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((name, key)): Path<(String, String)>,
) -> Result<StatusCode> {
    core.compute.unset_extra_spec(&p, &name, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The projects that may use a private type (admins).
async fn type_access(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> Result<Response> {
    Ok(items(core.compute.instance_type_access(&p, &name).await?))
}

async fn add_type_access(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((name, project)): Path<(String, String)>,
) -> Result<Response> {
    let list = core
        .compute
        .add_instance_type_access(&p, &name, &project)
        .await?;
    Ok(items(list))
}

async fn remove_type_access(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((name, project)): Path<(String, String)>,
) -> Result<StatusCode> {
    core.compute
        .remove_instance_type_access(&p, &name, &project)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// -------------------------------------------------------------- key pairs

async fn list_keys(State(core): State<SharedCore>, Caller(p): Caller) -> Result<Response> {
    Ok(items(core.compute.list_key_pairs(&p).await?))
}

async fn create_key(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(new): Json<NewKeyPair>,
) -> Result<Response> {
    Ok(created(core.compute.create_key_pair(&p, new).await?))
}

async fn get_key(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> Result<Response> {
    Ok(axum::Json(core.compute.get_key_pair(&p, &name).await?).into_response())
}

async fn delete_key(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    core.compute.delete_key_pair(&p, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------- placement groups

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    name: String,
    strategy: String,
}

async fn list_groups(State(core): State<SharedCore>, Caller(p): Caller) -> Result<Response> {
    Ok(items(core.compute.list_placement_groups(&p).await?))
}

async fn create_group(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(g): Json<NewGroup>,
) -> Result<Response> {
    Ok(created(
        core.compute
            .create_placement_group(&p, &g.name, &g.strategy)
            .await?,
    ))
}

async fn delete_group(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    core.compute.delete_placement_group(&p, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

// -------------------------------------------------------------- instances

async fn run(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(req): Json<RunRequest>,
) -> Result<Response> {
    let launched = core.compute.run_instances(&p, req).await?;
    let reservation = launched
        .first()
        .map(|i| i.reservation_id.clone())
        .unwrap_or_default();
    Ok(created(
        json!({"reservation_id": reservation, "items": launched}),
    ))
}

async fn describe(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let q = InstanceQuery::from_pairs(&pairs)?;
    let page = core.compute.describe_instances(&p, &q).await?;
    let mut body = json!({ "items": page.items });
    if let Some(t) = page.next_token {
        body["next_token"] = json!(t);
    }
    Ok(axum::Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    wait_for: Option<String>,
    timeout: Option<u64>,
}

async fn get_instance(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(w): Query<WaitQuery>,
) -> Result<Response> {
    let inst = match w.wait_for {
        None => {
            let inst = core.compute.get_instance(&p, &id).await?;
            core.compute.refresh(&inst.id);
            inst
        }
        Some(s) => {
            let target = InstanceState::parse(&s).ok_or_else(|| {
                NativeError::invalid(format!("wait_for={s}: not an instance state"))
            })?;
            let timeout = Duration::from_secs(w.timeout.unwrap_or(60).min(300));
            core.compute.wait_for(&p, &id, target, timeout).await?
        }
    };
    Ok(axum::Json(inst).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    instance_ids: Vec<String>,
    #[serde(default)]
    force: bool,
}

/// `POST /instances/{stop|start|reboot|terminate}`.
async fn act(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(action): Path<String>,
    Json(body): Json<ActionBody>,
) -> Result<Response> {
    let action = Action::parse(&action).ok_or_else(|| {
        NativeError::not_found(format!(
            "POST /nuage/v1/instances/{action}: the actions are stop, start, reboot and terminate"
        ))
    })?;
    Ok(items(
        core.compute
            .act(&p, action, &body.instance_ids, body.force)
            .await?,
    ))
}

/// `PATCH /instances/{id}`: a resize (`instance_type`).
async fn modify(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(patch): Json<InstancePatch>,
) -> Result<Response> {
    Ok(axum::Json(core.compute.modify_instance(&p, &id, patch).await?).into_response())
}

/// A new image of the instance's root disk: answered at once (202) with
/// the image `snapshotting`; it turns `active` or `killed`.
async fn create_image_from(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(new): Json<nuage_compute::NewSnapshot>,
) -> Result<Response> {
    let image = core
        .compute
        .create_image_from_instance(&p, &id, new)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(image)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsoleQuery {
    max_bytes: Option<usize>,
}

async fn console(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<ConsoleQuery>,
) -> Result<Response> {
    let output = core
        .compute
        .console_output(&p, &id, q.max_bytes.unwrap_or(64 * 1024))
        .await?;
    Ok(axum::Json(json!({
        "instance_id": id,
        "output": output,
        "timestamp": nuage_compute::types::rfc3339(nuage_store::now_ms()),
    }))
    .into_response())
}

// -------------------------------------------------------------- placement

async fn zones(State(core): State<SharedCore>, Caller(p): Caller) -> Result<Response> {
    Ok(items(core.compute.availability_zones(&p).await?))
}

async fn regions(State(core): State<SharedCore>, Caller(_p): Caller) -> Result<Response> {
    Ok(items(vec![json!({
        "name": core.region,
        "endpoint": core.public_url,
    })]))
}

async fn nodes(State(core): State<SharedCore>, Caller(p): Caller) -> Result<Response> {
    Ok(items(core.compute.list_nodes(&p).await?))
}
