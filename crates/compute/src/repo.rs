//! The compute service's SQL, written once for SQLite and PostgreSQL.

use std::collections::BTreeMap;

use nuage_store::sqlx::{self, AnyExecutor};
use nuage_store::{StoreError, StoreResult};

use crate::types::{
    rfc3339, Desired, Image, Instance, InstanceType, KeyPair, Launch, PlacementGroup, State,
    StateReason, Visibility,
};

// ------------------------------------------------------------------ images

type ImageRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
);

const IMAGE_COLS: &str = "id, name, project_id, status, visibility, format, architecture, size, \
                          sha256, properties, config, version, created_at, tags, md5, sha512";

fn image(r: ImageRow) -> Image {
    let launch: Launch = serde_json::from_str(&r.10).unwrap_or_default();
    Image {
        id: r.0,
        name: r.1,
        owner: r.2,
        status: r.3,
        visibility: Visibility::parse(&r.4).unwrap_or(Visibility::Private),
        format: r.5,
        architecture: r.6,
        size: r.7,
        sha256: r.8,
        md5: r.14,
        sha512: r.15,
        tags: serde_json::from_str(&r.13).unwrap_or_default(),
        properties: serde_json::from_str(&r.9).unwrap_or_default(),
        command: launch.command.clone(),
        launch,
        version: r.11,
        created_at: rfc3339(r.12),
        members: Vec::new(),
    }
}

pub async fn insert_image<'e>(e: impl AnyExecutor<'e>, i: &Image, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO images (id, name, project_id, status, visibility, format, architecture, size, \
         sha256, properties, config, version, created_at, updated_at, tags, md5, sha512) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $13, $14, $15)",
    )
    .bind(&i.id)
    .bind(&i.name)
    .bind(&i.owner)
    .bind(&i.status)
    .bind(i.visibility.as_str())
    .bind(&i.format)
    .bind(&i.architecture)
    .bind(i.size)
    .bind(&i.sha256)
    .bind(serde_json::to_string(&i.properties).unwrap_or_else(|_| "{}".into()))
    .bind(serde_json::to_string(&i.launch).unwrap_or_else(|_| "{}".into()))
    .bind(now)
    .bind(serde_json::to_string(&i.tags).unwrap_or_else(|_| "[]".into()))
    .bind(&i.md5)
    .bind(&i.sha512)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, format!("an image named {}", i.name)))?;
    Ok(())
}

/// Writes every mutable field if the version still matches (optimistic
/// concurrency); false when someone else changed the image first.
pub async fn update_image<'e>(e: impl AnyExecutor<'e>, i: &Image, now: i64) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE images SET name = $1, status = $2, visibility = $3, format = $4, \
         architecture = $5, size = $6, sha256 = $7, properties = $8, config = $9, \
         version = version + 1, updated_at = $10, tags = $13, md5 = $14, sha512 = $15 \
         WHERE id = $11 AND version = $12",
    )
    .bind(&i.name)
    .bind(&i.status)
    .bind(i.visibility.as_str())
    .bind(&i.format)
    .bind(&i.architecture)
    .bind(i.size)
    .bind(&i.sha256)
    .bind(serde_json::to_string(&i.properties).unwrap_or_else(|_| "{}".into()))
    .bind(serde_json::to_string(&i.launch).unwrap_or_else(|_| "{}".into()))
    .bind(now)
    .bind(&i.id)
    .bind(i.version)
    .bind(serde_json::to_string(&i.tags).unwrap_or_else(|_| "[]".into()))
    .bind(&i.md5)
    .bind(&i.sha512)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, format!("an image named {}", i.name)))?;
    Ok(r.rows_affected() == 1)
}

pub async fn get_image<'e>(e: impl AnyExecutor<'e>, id: &str) -> StoreResult<Option<Image>> {
    let row: Option<ImageRow> =
        sqlx::query_as(&format!("SELECT {IMAGE_COLS} FROM images WHERE id = $1"))
            .bind(id)
            .fetch_optional(e)
            .await?;
    Ok(row.map(image))
}

/// Images of `project` named `name`, then any visible image of that name.
pub async fn images_named<'e>(e: impl AnyExecutor<'e>, name: &str) -> StoreResult<Vec<Image>> {
    let rows: Vec<ImageRow> = sqlx::query_as(&format!(
        "SELECT {IMAGE_COLS} FROM images WHERE name = $1 ORDER BY created_at"
    ))
    .bind(name)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(image).collect())
}

pub async fn list_images<'e>(e: impl AnyExecutor<'e>) -> StoreResult<Vec<Image>> {
    let rows: Vec<ImageRow> = sqlx::query_as(&format!(
        "SELECT {IMAGE_COLS} FROM images ORDER BY name, created_at"
    ))
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(image).collect())
}

pub async fn delete_image<'e>(e: impl AnyExecutor<'e>, id: &str) -> StoreResult<bool> {
    let r = sqlx::query("DELETE FROM images WHERE id = $1")
        .bind(id)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn reset_saving_images<'e>(e: impl AnyExecutor<'e>, now: i64) -> StoreResult<u64> {
    let r = sqlx::query(
        "UPDATE images SET status = 'queued', version = version + 1, updated_at = $1 \
         WHERE status = 'saving'",
    )
    .bind(now)
    .execute(e)
    .await?;
    Ok(r.rows_affected())
}

/// Images whose snapshot task died with the process: `killed`.
pub async fn fail_snapshotting_images<'e>(e: impl AnyExecutor<'e>, now: i64) -> StoreResult<u64> {
    let r = sqlx::query(
        "UPDATE images SET status = 'killed', version = version + 1, updated_at = $1 \
         WHERE status = 'snapshotting'",
    )
    .bind(now)
    .execute(e)
    .await?;
    Ok(r.rows_affected())
}

pub async fn image_members<'e>(
    e: impl AnyExecutor<'e>,
) -> StoreResult<BTreeMap<String, Vec<String>>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT image_id, project_id FROM image_members ORDER BY project_id")
            .fetch_all(e)
            .await?;
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, p) in rows {
        m.entry(i).or_default().push(p);
    }
    Ok(m)
}

pub async fn add_member<'e>(
    e: impl AnyExecutor<'e>,
    image: &str,
    project: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO image_members (image_id, project_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (image_id, project_id) DO NOTHING",
    )
    .bind(image)
    .bind(project)
    .bind(now)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn remove_member<'e>(
    e: impl AnyExecutor<'e>,
    image: &str,
    project: &str,
) -> StoreResult<bool> {
    let r = sqlx::query("DELETE FROM image_members WHERE image_id = $1 AND project_id = $2")
        .bind(image)
        .bind(project)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Instances not yet terminated that run `image`.
pub async fn instances_using_image<'e>(e: impl AnyExecutor<'e>, image: &str) -> StoreResult<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM instances WHERE image_id = $1 AND state <> 'terminated'",
    )
    .bind(image)
    .fetch_one(e)
    .await?;
    Ok(n)
}

/// The content digests some image still holds.
pub async fn live_digests<'e>(e: impl AnyExecutor<'e>) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT sha256 FROM images WHERE sha256 IS NOT NULL")
            .fetch_all(e)
            .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

// ---------------------------------------------------------- instance types

type TypeRow = (
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    String,
);

fn itype(r: TypeRow) -> InstanceType {
    InstanceType {
        name: r.0,
        vcpus: r.1 as u32,
        memory_mib: r.2 as u64,
        disk_gib: r.3 as u64,
        pids_limit: r.4 as u32,
        io_weight: r.5 as u16,
        builtin: r.6 != 0,
        is_public: r.7 != 0,
        description: r.8,
        extra_specs: serde_json::from_str(&r.9).unwrap_or_default(),
    }
}

const TYPE_COLS: &str = "name, vcpus, memory_mib, disk_gib, pids_limit, io_weight, builtin, \
                         is_public, description, extra_specs";

pub async fn insert_type<'e>(
    e: impl AnyExecutor<'e>,
    t: &InstanceType,
    now: i64,
    ignore_existing: bool,
) -> StoreResult<()> {
    let conflict = if ignore_existing {
        " ON CONFLICT (name) DO NOTHING"
    } else {
        ""
    };
    sqlx::query(&format!(
        "INSERT INTO instance_types ({TYPE_COLS}, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11){conflict}"
    ))
    .bind(&t.name)
    .bind(t.vcpus as i64)
    .bind(t.memory_mib as i64)
    .bind(t.disk_gib as i64)
    .bind(t.pids_limit as i64)
    .bind(t.io_weight as i64)
    .bind(t.builtin as i64)
    .bind(t.is_public as i64)
    .bind(&t.description)
    .bind(serde_json::to_string(&t.extra_specs).unwrap_or_else(|_| "{}".into()))
    .bind(now)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, format!("instance type {}", t.name)))?;
    Ok(())
}

pub async fn get_type<'e>(
    e: impl AnyExecutor<'e>,
    name: &str,
) -> StoreResult<Option<InstanceType>> {
    let row: Option<TypeRow> = sqlx::query_as(&format!(
        "SELECT {TYPE_COLS} FROM instance_types WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(e)
    .await?;
    Ok(row.map(itype))
}

pub async fn list_types<'e>(e: impl AnyExecutor<'e>) -> StoreResult<Vec<InstanceType>> {
    let rows: Vec<TypeRow> = sqlx::query_as(&format!(
        "SELECT {TYPE_COLS} FROM instance_types ORDER BY vcpus, memory_mib, name"
    ))
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(itype).collect())
}

pub async fn delete_type<'e>(e: impl AnyExecutor<'e>, name: &str) -> StoreResult<bool> {
    let r = sqlx::query("DELETE FROM instance_types WHERE name = $1")
        .bind(name)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Writes a type's description and extra specs if its extra specs are
/// still `before` (optimistic concurrency: two admins merging keys at once
/// must not lose each other's); false otherwise.
pub async fn update_type_extras<'e>(
    e: impl AnyExecutor<'e>,
    t: &InstanceType,
    before: &BTreeMap<String, String>,
) -> StoreResult<bool> {
    let json =
        |m: &BTreeMap<String, String>| serde_json::to_string(m).unwrap_or_else(|_| "{}".into());
    let r = sqlx::query(
        "UPDATE instance_types SET description = $1, extra_specs = $2 \
         WHERE name = $3 AND extra_specs = $4",
    )
    .bind(&t.description)
    .bind(json(&t.extra_specs))
    .bind(&t.name)
    .bind(json(before))
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Every type's access list: type name → project ids.
pub async fn type_access<'e>(
    e: impl AnyExecutor<'e>,
) -> StoreResult<BTreeMap<String, Vec<String>>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT type_name, project_id FROM instance_type_access ORDER BY type_name, project_id",
    )
    .fetch_all(e)
    .await?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (t, p) in rows {
        out.entry(t).or_default().push(p);
    }
    Ok(out)
}

/// One type's access list.
pub async fn type_access_of<'e>(e: impl AnyExecutor<'e>, name: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT project_id FROM instance_type_access WHERE type_name = $1 ORDER BY project_id",
    )
    .bind(name)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn add_type_access<'e>(
    e: impl AnyExecutor<'e>,
    name: &str,
    project: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO instance_type_access (type_name, project_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(name)
    .bind(project)
    .bind(now)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, format!("access to {name} for {project}")))?;
    Ok(())
}

pub async fn remove_type_access<'e>(
    e: impl AnyExecutor<'e>,
    name: &str,
    project: &str,
) -> StoreResult<bool> {
    let r =
        sqlx::query("DELETE FROM instance_type_access WHERE type_name = $1 AND project_id = $2")
            .bind(name)
            .bind(project)
            .execute(e)
            .await?;
    Ok(r.rows_affected() == 1)
}

// --------------------------------------------------------------- key pairs

type KeyRow = (String, String, String, String, String, i64);

fn keypair(r: KeyRow) -> KeyPair {
    KeyPair {
        id: r.0,
        name: r.1,
        key_type: r.2,
        fingerprint: r.3,
        public_key: r.4,
        created_at: rfc3339(r.5),
        private_key: None,
    }
}

pub async fn insert_key<'e>(
    e: impl AnyExecutor<'e>,
    project: &str,
    k: &KeyPair,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO key_pairs (id, project_id, name, key_type, fingerprint, public_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&k.id)
    .bind(project)
    .bind(&k.name)
    .bind(&k.key_type)
    .bind(&k.fingerprint)
    .bind(&k.public_key)
    .bind(now)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, format!("key pair {}", k.name)))?;
    Ok(())
}

pub async fn get_key<'e>(
    e: impl AnyExecutor<'e>,
    project: &str,
    name: &str,
) -> StoreResult<Option<KeyPair>> {
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT id, name, key_type, fingerprint, public_key, created_at FROM key_pairs \
         WHERE project_id = $1 AND name = $2",
    )
    .bind(project)
    .bind(name)
    .fetch_optional(e)
    .await?;
    Ok(row.map(keypair))
}

pub async fn list_keys<'e>(e: impl AnyExecutor<'e>, project: &str) -> StoreResult<Vec<KeyPair>> {
    let rows: Vec<KeyRow> = sqlx::query_as(
        "SELECT id, name, key_type, fingerprint, public_key, created_at FROM key_pairs \
         WHERE project_id = $1 ORDER BY name",
    )
    .bind(project)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(keypair).collect())
}

/// How many key pairs a project holds.
pub async fn count_keys<'e>(e: impl AnyExecutor<'e>, project: &str) -> StoreResult<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM key_pairs WHERE project_id = $1")
        .bind(project)
        .fetch_one(e)
        .await?;
    Ok(n)
}

pub async fn delete_key<'e>(
    e: impl AnyExecutor<'e>,
    project: &str,
    name: &str,
) -> StoreResult<bool> {
    let r = sqlx::query("DELETE FROM key_pairs WHERE project_id = $1 AND name = $2")
        .bind(project)
        .bind(name)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}

// -------------------------------------------------------- placement groups

type GroupRow = (String, String, String, i64, String, Option<String>);

const GROUP_COLS: &str = "id, name, strategy, created_at, project_id, user_id";

fn group(r: GroupRow) -> PlacementGroup {
    PlacementGroup {
        id: r.0,
        name: r.1,
        strategy: r.2,
        created_at: rfc3339(r.3),
        project_id: r.4,
        user_id: r.5,
    }
}

pub async fn insert_group<'e>(
    e: impl AnyExecutor<'e>,
    project: &str,
    g: &PlacementGroup,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO placement_groups (id, project_id, name, strategy, created_at, user_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&g.id)
    .bind(project)
    .bind(&g.name)
    .bind(&g.strategy)
    .bind(now)
    .bind(&g.user_id)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, format!("placement group {}", g.name)))?;
    Ok(())
}

pub async fn get_group<'e>(
    e: impl AnyExecutor<'e>,
    project: &str,
    name: &str,
) -> StoreResult<Option<PlacementGroup>> {
    let row: Option<GroupRow> = sqlx::query_as(&format!(
        "SELECT {GROUP_COLS} FROM placement_groups WHERE project_id = $1 AND name = $2"
    ))
    .bind(project)
    .bind(name)
    .fetch_optional(e)
    .await?;
    Ok(row.map(group))
}

/// A project's placement group by id (Nova's server group id).
pub async fn get_project_group_by_id<'e>(
    e: impl AnyExecutor<'e>,
    project: &str,
    id: &str,
) -> StoreResult<Option<PlacementGroup>> {
    let row: Option<GroupRow> = sqlx::query_as(&format!(
        "SELECT {GROUP_COLS} FROM placement_groups WHERE project_id = $1 AND id = $2"
    ))
    .bind(project)
    .bind(id)
    .fetch_optional(e)
    .await?;
    Ok(row.map(group))
}

/// A placement group by id, whatever its project.
pub async fn get_group_by_id<'e>(
    e: impl AnyExecutor<'e>,
    id: &str,
) -> StoreResult<Option<PlacementGroup>> {
    let row: Option<GroupRow> = sqlx::query_as(&format!(
        "SELECT {GROUP_COLS} FROM placement_groups WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(e)
    .await?;
    Ok(row.map(group))
}

/// Every project's placement groups (for admins).
pub async fn list_all_groups<'e>(e: impl AnyExecutor<'e>) -> StoreResult<Vec<PlacementGroup>> {
    let rows: Vec<GroupRow> = sqlx::query_as(&format!(
        "SELECT {GROUP_COLS} FROM placement_groups ORDER BY project_id, name"
    ))
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(group).collect())
}

/// The instances (not terminated) in a placement group, oldest first.
pub async fn group_members<'e>(
    e: impl AnyExecutor<'e>,
    group_id: &str,
) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM instances WHERE placement_group = $1 AND state <> 'terminated' \
         ORDER BY launch_time, id",
    )
    .bind(group_id)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn list_groups<'e>(
    e: impl AnyExecutor<'e>,
    project: &str,
) -> StoreResult<Vec<PlacementGroup>> {
    let rows: Vec<GroupRow> = sqlx::query_as(&format!(
        "SELECT {GROUP_COLS} FROM placement_groups WHERE project_id = $1 ORDER BY name"
    ))
    .bind(project)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(group).collect())
}

pub async fn delete_group<'e>(
    e: impl AnyExecutor<'e>,
    project: &str,
    name: &str,
) -> StoreResult<bool> {
    let r = sqlx::query("DELETE FROM placement_groups WHERE project_id = $1 AND name = $2")
        .bind(project)
        .bind(name)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn instances_in_group<'e>(e: impl AnyExecutor<'e>, group_id: &str) -> StoreResult<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM instances WHERE placement_group = $1 AND state <> 'terminated'",
    )
    .bind(group_id)
    .fetch_one(e)
    .await?;
    Ok(n)
}

// ------------------------------------------------------------------- nodes

pub type NodeRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    i64,
    i64,
);

pub const NODE_COLS: &str = "id, name, availability_zone, arch, hypervisor, vcpus, ram_mib, \
                             disk_gib, labels, enabled, heartbeat_at";

pub async fn list_nodes<'e>(e: impl AnyExecutor<'e>) -> StoreResult<Vec<NodeRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {NODE_COLS} FROM nodes ORDER BY name"))
            .fetch_all(e)
            .await?,
    )
}

#[allow(clippy::too_many_arguments)]
pub async fn upsert_node<'e>(e: impl AnyExecutor<'e>, r: &NodeRow, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO nodes (id, name, availability_zone, arch, hypervisor, vcpus, ram_mib, disk_gib, \
         labels, enabled, heartbeat_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, availability_zone = excluded.availability_zone, \
         arch = excluded.arch, hypervisor = excluded.hypervisor, vcpus = excluded.vcpus, \
         ram_mib = excluded.ram_mib, disk_gib = excluded.disk_gib, labels = excluded.labels, \
         heartbeat_at = excluded.heartbeat_at",
    )
    .bind(&r.0)
    .bind(&r.1)
    .bind(&r.2)
    .bind(&r.3)
    .bind(&r.4)
    .bind(r.5)
    .bind(r.6)
    .bind(r.7)
    .bind(&r.8)
    .bind(r.9)
    .bind(r.10)
    .bind(now)
    .execute(e)
    .await?;
    Ok(())
}

/// Per node: (node id, instances, vcpus, ram, disk) held by instances not
/// yet terminated; a stopped instance keeps its place, as its disk does.
pub async fn node_usage<'e>(
    e: impl AnyExecutor<'e>,
) -> StoreResult<Vec<(String, i64, i64, i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT node_id, COUNT(*), CAST(SUM(vcpus) AS BIGINT), CAST(SUM(memory_mib) AS BIGINT), \
         CAST(SUM(disk_gib) AS BIGINT) FROM instances WHERE state <> 'terminated' GROUP BY node_id",
    )
    .fetch_all(e)
    .await?)
}

pub async fn node_groups<'e>(e: impl AnyExecutor<'e>) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT node_id, placement_group FROM instances \
         WHERE state <> 'terminated' AND placement_group IS NOT NULL",
    )
    .fetch_all(e)
    .await?)
}

// --------------------------------------------------------------- instances

const INSTANCE_COLS: &str = "id, reservation_id, project_id, user_id, image_id, instance_type, \
    vcpus, memory_mib, disk_gib, node_id, availability_zone, placement_group, key_name, tags, \
    hostname, launch_index, client_token, desired, reboot_requested, reboot_done, state, \
    state_reason, oom_kills, launch_time, terminated_at, force_stop, generation, \
    observed_generation";

/// The first twelve columns of [`INSTANCE_COLS`].
type RawA = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    String,
    Option<String>,
);

/// The other thirteen.
type RawB = (
    Option<String>,
    String,
    String,
    i64,
    Option<String>,
    String,
    i64,
    i64,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);

/// The last three: force_stop, generation, observed_generation.
type RawC = (i64, i64, i64);

/// A raw row split in tuples (sqlx decodes tuples of at most 16).
struct Raw {
    a: RawA,
    b: RawB,
    c: RawC,
}

/// A row; a state or desired state this version does not know is an error
/// (never read as "pending" or "running": ADR 14).
fn instance(raw: Raw) -> StoreResult<Instance> {
    let (a, b, c) = (raw.a, raw.b, raw.c);
    let unknown = |what: &str, v: &str| {
        StoreError::Query(sqlx::Error::Decode(
            format!("instance {}: unknown {what} {v:?}", a.0).into(),
        ))
    };
    let state = State::parse(&b.8).ok_or_else(|| unknown("state", &b.8))?;
    let desired = Desired::parse(&b.5).ok_or_else(|| unknown("desired state", &b.5))?;
    let state_reason: Option<StateReason> =
        b.9.as_deref().and_then(|s| serde_json::from_str(s).ok());
    let failed = state_reason
        .as_ref()
        .is_some_and(|r| r.code.starts_with("Server."));
    Ok(Instance {
        id: a.0,
        reservation_id: a.1,
        project_id: a.2,
        user_id: a.3,
        image_id: a.4,
        instance_type: a.5,
        vcpus: a.6 as u32,
        memory_mib: a.7 as u64,
        disk_gib: a.8 as u64,
        node: a.9,
        availability_zone: a.10,
        placement_group: a.11,
        key_name: b.0,
        tags: serde_json::from_str(&b.1).unwrap_or_default(),
        hostname: b.2,
        launch_index: b.3 as u32,
        client_token: b.4,
        desired,
        reboot_requested: b.6,
        reboot_done: b.7,
        state,
        state_code: state.code(),
        status: crate::types::NovaState::of(state, desired, b.6 > b.7, failed, c.2 > 0).status,
        state_reason,
        oom_kills: b.10 as u64,
        launch_ms: b.11,
        launch_time: rfc3339(b.11),
        terminated_ms: b.12,
        terminated_at: b.12.map(rfc3339),
        force_stop: c.0 != 0,
        generation: c.1,
        observed_generation: c.2,
        network_interfaces: Vec::new(),
        private_ip_address: None,
        public_ip_address: None,
    })
}

/// Decodes rows selected with [`INSTANCE_COLS`].
fn decode(rows: Vec<nuage_store::sqlx::any::AnyRow>) -> StoreResult<Vec<Instance>> {
    use sqlx::Row;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let raw = Raw {
            a: (
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
                r.try_get(7)?,
                r.try_get(8)?,
                r.try_get(9)?,
                r.try_get(10)?,
                r.try_get(11)?,
            ),
            b: (
                r.try_get(12)?,
                r.try_get(13)?,
                r.try_get(14)?,
                r.try_get(15)?,
                r.try_get(16)?,
                r.try_get(17)?,
                r.try_get(18)?,
                r.try_get(19)?,
                r.try_get(20)?,
                r.try_get(21)?,
                r.try_get(22)?,
                r.try_get(23)?,
                r.try_get(24)?,
            ),
            c: (r.try_get(25)?, r.try_get(26)?, r.try_get(27)?),
        };
        out.push(instance(raw)?);
    }
    Ok(out)
}

pub struct NewInstance<'a> {
    pub inst: &'a Instance,
    pub user_data: Option<&'a [u8]>,
    pub http_tokens: crate::instances::HttpTokens,
}

pub async fn insert_instance<'e>(
    e: impl AnyExecutor<'e>,
    n: NewInstance<'_>,
    now: i64,
) -> StoreResult<()> {
    let i = n.inst;
    sqlx::query(
        "INSERT INTO instances (id, reservation_id, project_id, user_id, image_id, instance_type, \
         vcpus, memory_mib, disk_gib, node_id, availability_zone, placement_group, key_name, \
         user_data, tags, hostname, launch_index, client_token, desired, state, launch_time, updated_at, \
         http_tokens) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $21, $22)",
    )
    .bind(&i.id)
    .bind(&i.reservation_id)
    .bind(&i.project_id)
    .bind(&i.user_id)
    .bind(&i.image_id)
    .bind(&i.instance_type)
    .bind(i.vcpus as i64)
    .bind(i.memory_mib as i64)
    .bind(i.disk_gib as i64)
    .bind(&i.node)
    .bind(&i.availability_zone)
    .bind(&i.placement_group)
    .bind(&i.key_name)
    .bind(n.user_data.map(|d| d.to_vec()))
    .bind(serde_json::to_string(&i.tags).unwrap_or_else(|_| "{}".into()))
    .bind(&i.hostname)
    .bind(i.launch_index as i64)
    .bind(&i.client_token)
    .bind(i.desired.as_str())
    .bind(i.state.as_str())
    .bind(now)
    .bind(n.http_tokens.as_str())
    .execute(e)
    .await
    .map_err(|e| StoreError::unique(e, format!("instance {} or its launch's client token", i.id)))?;
    Ok(())
}

pub async fn get_instance<'e>(e: impl AnyExecutor<'e>, id: &str) -> StoreResult<Option<Instance>> {
    let rows = sqlx::query(&format!(
        "SELECT {INSTANCE_COLS} FROM instances WHERE id = $1"
    ))
    .bind(id)
    .fetch_all(e)
    .await?;
    Ok(decode(rows)?.into_iter().next())
}

/// What the store narrows before a row is decoded. It may only ever let
/// through more rows than the exact filters keep, never fewer: the caller
/// filters what comes back again (so a tag pattern that SQLite's LIKE
/// compares without case is still right).
#[derive(Debug, Default, Clone)]
pub struct InstanceScan {
    /// One project's instances, or every project's.
    pub project: Option<String>,
    /// Only these ids (empty: any).
    pub ids: Vec<String>,
    /// (column, values): the column equals one of the values.
    pub equal: Vec<(&'static str, Vec<String>)>,
    /// For each entry, the tags' JSON text is LIKE (escape `\`) one of the
    /// patterns.
    pub tags_like: Vec<Vec<String>>,
}

impl InstanceScan {
    /// The `WHERE` clause and its values, numbered from `$1`.
    fn clause(&self) -> (String, Vec<&str>) {
        /// `column IN ($n, ...)`, or for patterns `(column LIKE $n ESCAPE
        /// '\' OR ...)`, the values pushed onto `binds`.
        fn any_of<'a>(
            column: &str,
            like: bool,
            values: &'a [String],
            binds: &mut Vec<&'a str>,
        ) -> String {
            if values.is_empty() {
                return "1 = 0".into();
            }
            let mut each = Vec::with_capacity(values.len());
            for v in values {
                binds.push(v);
                each.push(if like {
                    format!("{column} LIKE ${} ESCAPE '\\'", binds.len())
                } else {
                    format!("${}", binds.len())
                });
            }
            if like {
                format!("({})", each.join(" OR "))
            } else {
                format!("{column} IN ({})", each.join(", "))
            }
        }
        let mut terms: Vec<String> = Vec::new();
        let mut binds: Vec<&str> = Vec::new();
        // With ids, the project is checked on the rows read (see
        // `scan_instances`): given both, SQLite walks the project's index
        // rather than the primary key.
        if self.ids.is_empty() {
            if let Some(p) = &self.project {
                binds.push(p);
                terms.push(format!("project_id = ${}", binds.len()));
            }
        } else {
            terms.push(any_of("id", false, &self.ids, &mut binds));
        }
        for (column, values) in &self.equal {
            terms.push(any_of(column, false, values, &mut binds));
        }
        for patterns in &self.tags_like {
            terms.push(any_of("tags", true, patterns, &mut binds));
        }
        if terms.is_empty() {
            return (String::new(), binds);
        }
        (format!("WHERE {}", terms.join(" AND ")), binds)
    }
}

/// Instances that may pass `scan` (see [`InstanceScan`]), oldest first.
pub async fn scan_instances<'e>(
    e: impl AnyExecutor<'e>,
    scan: &InstanceScan,
) -> StoreResult<Vec<Instance>> {
    let (clause, binds) = scan.clause();
    let sql = format!(
        "SELECT {INSTANCE_COLS} FROM instances {clause} ORDER BY launch_time, launch_index, id"
    );
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = q.bind(b);
    }
    let mut rows = decode(q.fetch_all(e).await?)?;
    if let (false, Some(p)) = (scan.ids.is_empty(), &scan.project) {
        rows.retain(|i| i.project_id == *p);
    }
    Ok(rows)
}

/// (id, tags) of a project's instances, oldest first: what DescribeTags
/// reads, without decoding whole rows.
pub async fn instance_tags<'e>(
    e: impl AnyExecutor<'e>,
    project: &str,
) -> StoreResult<Vec<(String, BTreeMap<String, String>)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, tags FROM instances WHERE project_id = $1 \
         ORDER BY launch_time, launch_index, id",
    )
    .bind(project)
    .fetch_all(e)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, tags)| (id, serde_json::from_str(&tags).unwrap_or_default()))
        .collect())
}

pub async fn instances_by_token<'e>(
    e: impl AnyExecutor<'e>,
    project: &str,
    token: &str,
) -> StoreResult<Vec<Instance>> {
    let rows = sqlx::query(&format!(
        "SELECT {INSTANCE_COLS} FROM instances WHERE project_id = $1 AND client_token = $2 \
         ORDER BY launch_index"
    ))
    .bind(project)
    .bind(token)
    .fetch_all(e)
    .await?;
    decode(rows)
}

/// Ids of the instances on `node` that the reconciler must look at: all
/// but those terminated (nothing of them is left on the node).
pub async fn node_instance_ids<'e>(
    e: impl AnyExecutor<'e>,
    node: &str,
) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM instances WHERE node_id = $1 AND state <> 'terminated'")
            .bind(node)
            .fetch_all(e)
            .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// What only the instance metadata service reads: the user data and the
/// `http_tokens` option.
pub async fn metadata_extras<'e>(
    e: impl AnyExecutor<'e>,
    id: &str,
) -> StoreResult<Option<(Option<Vec<u8>>, String)>> {
    Ok(
        sqlx::query_as("SELECT user_data, http_tokens FROM instances WHERE id = $1")
            .bind(id)
            .fetch_optional(e)
            .await?,
    )
}

pub async fn user_data<'e>(e: impl AnyExecutor<'e>, id: &str) -> StoreResult<Option<Vec<u8>>> {
    let row: Option<(Option<Vec<u8>>,)> =
        sqlx::query_as("SELECT user_data FROM instances WHERE id = $1")
            .bind(id)
            .fetch_optional(e)
            .await?;
    Ok(row.and_then(|r| r.0))
}

/// Replaces a stopped instance's user data; false when it is not stopped
/// (and not being started), so a start never reads half a change.
pub async fn set_user_data<'e>(
    e: impl AnyExecutor<'e>,
    id: &str,
    data: &[u8],
    now: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE instances SET user_data = $1, updated_at = $2 \
         WHERE id = $3 AND state = 'stopped' AND desired = 'stopped'",
    )
    .bind(data.to_vec())
    .bind(now)
    .bind(id)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Project usage for quotas: (instances, vcpus, ram MiB) not terminated.
pub async fn project_usage<'e>(
    e: impl AnyExecutor<'e>,
    project: &str,
) -> StoreResult<(i64, i64, i64)> {
    let (n, c, r): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), CAST(SUM(vcpus) AS BIGINT), CAST(SUM(memory_mib) AS BIGINT) FROM instances \
         WHERE project_id = $1 AND desired <> 'terminated'",
    )
    .bind(project)
    .fetch_one(e)
    .await?;
    Ok((n, c.unwrap_or(0), r.unwrap_or(0)))
}

/// The API's write: the desired state (and the state EC2 shows at once),
/// and whether a stop is forced (no grace period), if the instance is
/// still in one of the states `from`.
#[allow(clippy::too_many_arguments)]
pub async fn set_desired<'e>(
    e: impl AnyExecutor<'e>,
    id: &str,
    from: &[State],
    desired: Desired,
    state: State,
    reboot: bool,
    force_stop: bool,
    now: i64,
) -> StoreResult<bool> {
    if from.is_empty() {
        return Ok(false);
    }
    let places: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 7)).collect();
    let sql = format!(
        "UPDATE instances SET desired = $1, state = $2, \
         reboot_requested = reboot_requested + $3, force_stop = $4, version = version + 1, \
         updated_at = $5 WHERE id = $6 AND state IN ({})",
        places.join(", ")
    );
    let mut q = sqlx::query(&sql)
        .bind(desired.as_str())
        .bind(state.as_str())
        .bind(reboot as i64)
        .bind(force_stop as i64)
        .bind(now)
        .bind(id);
    for s in from {
        q = q.bind(s.as_str());
    }
    let r = q.execute(e).await?;
    Ok(r.rows_affected() == 1)
}

/// Forces the stop of an instance already being stopped (EC2's
/// `--force` on a stopping instance): its next stop takes no grace.
pub async fn force_stop<'e>(e: impl AnyExecutor<'e>, id: &str, now: i64) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE instances SET force_stop = 1, version = version + 1, updated_at = $1 \
         WHERE id = $2 AND desired = 'stopped'",
    )
    .bind(now)
    .bind(id)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The API's resize: the new type and limits and the next spec
/// generation, if the instance is still running or stopped.
pub async fn resize_instance<'e>(
    e: impl AnyExecutor<'e>,
    id: &str,
    t: &InstanceType,
    now: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE instances SET instance_type = $1, vcpus = $2, memory_mib = $3, disk_gib = $4, \
         generation = generation + 1, version = version + 1, updated_at = $5 \
         WHERE id = $6 AND state IN ('running', 'stopped')",
    )
    .bind(&t.name)
    .bind(t.vcpus as i64)
    .bind(t.memory_mib as i64)
    .bind(t.disk_gib as i64)
    .bind(now)
    .bind(id)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Replaces an instance's tags if they are still `old` (compare and swap,
/// so two concurrent tag changes never lose one another's keys).
pub async fn swap_instance_tags<'e>(
    e: impl AnyExecutor<'e>,
    id: &str,
    old: &str,
    new: &str,
    now: i64,
) -> StoreResult<bool> {
    let r =
        sqlx::query("UPDATE instances SET tags = $1, updated_at = $2 WHERE id = $3 AND tags = $4")
            .bind(new)
            .bind(now)
            .bind(id)
            .bind(old)
            .execute(e)
            .await?;
    Ok(r.rows_affected() == 1)
}

/// An instance's tags as stored (JSON text), for [`swap_instance_tags`].
pub async fn instance_tags_text<'e>(
    e: impl AnyExecutor<'e>,
    id: &str,
) -> StoreResult<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT tags FROM instances WHERE id = $1")
        .bind(id)
        .fetch_optional(e)
        .await?;
    Ok(row.map(|r| r.0))
}

/// The reconciler's record that the node runs the spec of `generation`.
pub async fn set_observed_generation<'e>(
    e: impl AnyExecutor<'e>,
    id: &str,
    generation: i64,
    now: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE instances SET observed_generation = $1, updated_at = $2 \
         WHERE id = $3 AND observed_generation < $1",
    )
    .bind(generation)
    .bind(now)
    .bind(id)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The reconciler's write: what it observed, applied only if the desired
/// state is still the one it acted on (else the next pass acts again). A
/// stop observed done clears a forced stop.
#[allow(clippy::too_many_arguments)]
pub async fn set_observed<'e>(
    e: impl AnyExecutor<'e>,
    id: &str,
    acted_on: Desired,
    state: State,
    reason: Option<&StateReason>,
    oom_kills: u64,
    reboot_done: i64,
    now: i64,
) -> StoreResult<bool> {
    let terminated_at = (state == State::Terminated).then_some(now);
    let r = sqlx::query(
        "UPDATE instances SET state = $1, state_reason = $2, oom_kills = $3, \
         reboot_done = $4, terminated_at = COALESCE(terminated_at, $5), updated_at = $6, \
         force_stop = CASE WHEN $1 IN ('stopped', 'terminated') THEN 0 ELSE force_stop END \
         WHERE id = $7 AND desired = $8",
    )
    .bind(state.as_str())
    .bind(reason.map(|r| serde_json::to_string(r).unwrap_or_default()))
    .bind(oom_kills as i64)
    .bind(reboot_done)
    .bind(terminated_at)
    .bind(now)
    .bind(id)
    .bind(acted_on.as_str())
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The reconciler's decision to change what is desired (a failed launch
/// is terminated; an init that exits stops its instance, as EC2's
/// instance-initiated shutdown).
pub async fn reconciler_set_desired<'e>(
    e: impl AnyExecutor<'e>,
    id: &str,
    from: Desired,
    to: Desired,
    reason: &StateReason,
    now: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE instances SET desired = $1, state_reason = $2, version = version + 1, updated_at = $3 \
         WHERE id = $4 AND desired = $5",
    )
    .bind(to.as_str())
    .bind(serde_json::to_string(reason).unwrap_or_default())
    .bind(now)
    .bind(id)
    .bind(from.as_str())
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Forgets instances terminated before `before` (EC2 shows them for about
/// an hour).
pub async fn purge_terminated<'e>(e: impl AnyExecutor<'e>, before: i64) -> StoreResult<u64> {
    let r = sqlx::query("DELETE FROM instances WHERE state = 'terminated' AND terminated_at < $1")
        .bind(before)
        .execute(e)
        .await?;
    Ok(r.rows_affected())
}
