//! The network service's SQL, written once for SQLite and PostgreSQL.
//!
//! Every function takes a connection, so the same code runs on the reader
//! pool or inside a caller's transaction (`&mut *tx`), where it sees that
//! transaction's own uncommitted rows.

use std::collections::BTreeMap;

use nuage_store::sqlx::{self, AnyConnection};
use nuage_store::{StoreError, StoreResult};

use crate::types::{
    device_owner, DeviceAddress, Direction, FixedIp, FloatingIp, Network, Port, Protocol, Router,
    RouterInterface, SecurityGroup, SecurityGroupRule, Subnet,
};

type C = AnyConnection;

/// A foreign-key violation means a row this one names (or that names it)
/// changed in a concurrent transaction between the service's check and its
/// write: a conflict to retry, not an internal error.
fn fk(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::Conflict {
            what: what.to_string(),
        },
        _ => StoreError::Query(e),
    }
}

// ---------------------------------------------------------------- projects

/// Locks the project's row until the transaction ends: the section that
/// makes its default network, or counts its floating addresses against the
/// quota, runs once at a time per project (on SQLite the one writer
/// already serialises every write transaction).
pub async fn lock_project(c: &mut C, project: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO network_projects (project_id, locked_at) VALUES ($1, $2) \
         ON CONFLICT (project_id) DO NOTHING",
    )
    .bind(project)
    .bind(now)
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE network_projects SET locked_at = $2 WHERE project_id = $1")
        .bind(project)
        .bind(now)
        .execute(&mut *c)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- networks

type NetRow = (
    String,
    String,
    String,
    Option<i64>,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
);

const NET_COLS: &str = "id, project_id, name, vlan_id, external, shared, is_default, generation, \
                        observed_generation, created_at, cidr";

fn network(r: NetRow) -> Network {
    Network {
        id: r.0,
        project_id: r.1,
        name: r.2,
        vlan_id: r.3.and_then(|v| u16::try_from(v).ok()),
        external: r.4 != 0,
        shared: r.5 != 0,
        is_default: r.6 != 0,
        cidr: r.10,
        subnets: Vec::new(),
        generation: r.7,
        observed_generation: r.8,
        created_at: r.9,
    }
}

async fn with_subnet_ids(c: &mut C, mut n: Network) -> StoreResult<Network> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM subnets WHERE network_id = $1 ORDER BY first_address, id")
            .bind(&n.id)
            .fetch_all(&mut *c)
            .await?;
    n.subnets = rows.into_iter().map(|r| r.0).collect();
    Ok(n)
}

/// Inserts a network; `false` when the project already has a default one
/// (the partial unique index), so a racing first use loses cleanly.
pub async fn insert_network(c: &mut C, n: &Network, now: i64) -> StoreResult<bool> {
    let r = sqlx::query(&format!(
        "INSERT INTO networks ({NET_COLS}, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, 0, $8, $9, $8) ON CONFLICT DO NOTHING"
    ))
    .bind(&n.id)
    .bind(&n.project_id)
    .bind(&n.name)
    .bind(n.vlan_id.map(i64::from))
    .bind(n.external as i64)
    .bind(n.shared as i64)
    .bind(n.is_default as i64)
    .bind(now)
    .bind(n.cidr.as_deref())
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Whether a network already holds `vlan`.
pub async fn vlan_taken(c: &mut C, vlan: u16) -> StoreResult<bool> {
    let row: Option<(String,)> = sqlx::query_as("SELECT id FROM networks WHERE vlan_id = $1")
        .bind(i64::from(vlan))
        .fetch_optional(&mut *c)
        .await?;
    Ok(row.is_some())
}

pub async fn get_network(c: &mut C, id: &str) -> StoreResult<Option<Network>> {
    let row: Option<NetRow> =
        sqlx::query_as(&format!("SELECT {NET_COLS} FROM networks WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
    match row {
        Some(r) => Ok(Some(with_subnet_ids(c, network(r)).await?)),
        None => Ok(None),
    }
}

pub async fn default_network(c: &mut C, project: &str) -> StoreResult<Option<Network>> {
    let row: Option<NetRow> = sqlx::query_as(&format!(
        "SELECT {NET_COLS} FROM networks WHERE project_id = $1 AND is_default = 1"
    ))
    .bind(project)
    .fetch_optional(&mut *c)
    .await?;
    match row {
        Some(r) => Ok(Some(with_subnet_ids(c, network(r)).await?)),
        None => Ok(None),
    }
}

/// The networks `project` sees (its own, shared and external ones), or
/// every network when `project` is `None`.
pub async fn list_networks(c: &mut C, project: Option<&str>) -> StoreResult<Vec<Network>> {
    let rows: Vec<NetRow> = match project {
        Some(p) => {
            sqlx::query_as(&format!(
                "SELECT {NET_COLS} FROM networks \
                 WHERE project_id = $1 OR shared = 1 OR external = 1 ORDER BY created_at, id"
            ))
            .bind(p)
            .fetch_all(&mut *c)
            .await?
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT {NET_COLS} FROM networks ORDER BY created_at, id"
            ))
            .fetch_all(&mut *c)
            .await?
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(with_subnet_ids(c, network(r)).await?);
    }
    Ok(out)
}

/// Bumps a network's generation (its bridge must change) and locks its row
/// until the transaction ends, which serialises the subnet changes of one
/// network; `false` when it does not exist.
pub async fn bump_network(c: &mut C, id: &str, now: i64) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE networks SET generation = generation + 1, updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete_network(c: &mut C, id: &str) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM network_tags WHERE resource_id IN \
         (SELECT id FROM subnets WHERE network_id = $1)",
    )
    .bind(id)
    .execute(&mut *c)
    .await?;
    drop_tags(c, id).await?;
    sqlx::query("DELETE FROM subnets WHERE network_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(|e| fk(e, &format!("network {id}")))?;
    sqlx::query("DELETE FROM networks WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(|e| fk(e, &format!("network {id}")))?;
    Ok(())
}

pub async fn count_ports_on_network(c: &mut C, id: &str) -> StoreResult<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM ports WHERE network_id = $1")
        .bind(id)
        .fetch_one(&mut *c)
        .await?;
    Ok(n)
}

pub async fn routers_on_network(c: &mut C, id: &str) -> StoreResult<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM routers WHERE external_network_id = $1")
            .bind(id)
            .fetch_one(&mut *c)
            .await?;
    Ok(n)
}

// ----------------------------------------------------------------- subnets

type SubnetRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    i64,
    i64,
);

const SUBNET_COLS: &str = "id, network_id, project_id, name, cidr, gateway_ip, allocation_pools, \
                           dns_servers, generation, observed_generation, created_at";

fn subnet(r: SubnetRow) -> Subnet {
    Subnet {
        id: r.0,
        network_id: r.1,
        project_id: r.2,
        name: r.3,
        cidr: r.4,
        gateway_ip: r.5,
        allocation_pools: serde_json::from_str(&r.6).unwrap_or_default(),
        dns_servers: serde_json::from_str(&r.7).unwrap_or_default(),
        generation: r.8,
        observed_generation: r.9,
        created_at: r.10,
    }
}

pub async fn insert_subnet(
    c: &mut C,
    s: &Subnet,
    (first, last, hint): (u32, u32, u32),
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO subnets (id, network_id, project_id, name, cidr, first_address, \
         last_address, gateway_ip, allocation_pools, dns_servers, ipam_hint, generation, \
         observed_generation, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, 0, $12, $12)",
    )
    .bind(&s.id)
    .bind(&s.network_id)
    .bind(&s.project_id)
    .bind(&s.name)
    .bind(&s.cidr)
    .bind(i64::from(first))
    .bind(i64::from(last))
    .bind(&s.gateway_ip)
    .bind(serde_json::to_string(&s.allocation_pools).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&s.dns_servers).unwrap_or_else(|_| "[]".into()))
    .bind(i64::from(hint))
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(|e| fk(e, &format!("network {}", s.network_id)))?;
    Ok(())
}

pub async fn get_subnet(c: &mut C, id: &str) -> StoreResult<Option<Subnet>> {
    let row: Option<SubnetRow> =
        sqlx::query_as(&format!("SELECT {SUBNET_COLS} FROM subnets WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
    Ok(row.map(subnet))
}

pub async fn subnets_of(c: &mut C, network: &str) -> StoreResult<Vec<Subnet>> {
    let rows: Vec<SubnetRow> = sqlx::query_as(&format!(
        "SELECT {SUBNET_COLS} FROM subnets WHERE network_id = $1 ORDER BY first_address, id"
    ))
    .bind(network)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.into_iter().map(subnet).collect())
}

/// A subnet of `network` sharing an address with `[first, last]`.
pub async fn overlapping(
    c: &mut C,
    network: &str,
    first: u32,
    last: u32,
) -> StoreResult<Option<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT id, cidr FROM subnets WHERE network_id = $1 \
         AND first_address <= $3 AND last_address >= $2 ORDER BY first_address LIMIT 1",
    )
    .bind(network)
    .bind(i64::from(first))
    .bind(i64::from(last))
    .fetch_optional(&mut *c)
    .await?)
}

/// Bumps a subnet's generation and locks its row, which waits for the
/// allocations in flight on it and holds back new ones.
pub async fn bump_subnet(c: &mut C, id: &str, now: i64) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE subnets SET generation = generation + 1, updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn count_ips_in_subnet(c: &mut C, id: &str) -> StoreResult<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM port_ips WHERE subnet_id = $1")
        .bind(id)
        .fetch_one(&mut *c)
        .await?;
    Ok(n)
}

pub async fn delete_subnet(c: &mut C, id: &str) -> StoreResult<()> {
    drop_tags(c, id).await?;
    sqlx::query("DELETE FROM subnets WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(|e| fk(e, &format!("subnet {id}")))?;
    Ok(())
}

// ------------------------------------------------------------------- ports

type PortRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
);

const PORT_COLS: &str = "id, project_id, network_id, name, mac, device_owner, device_id, \
                         generation, observed_generation, created_at";

/// Inserts a port row; `false` when its MAC is already on the network (the
/// caller draws another).
pub async fn insert_port(c: &mut C, p: &Port, now: i64) -> StoreResult<bool> {
    let r = sqlx::query(&format!(
        "INSERT INTO ports ({PORT_COLS}, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, 0, $8, $8) ON CONFLICT DO NOTHING"
    ))
    .bind(&p.id)
    .bind(&p.project_id)
    .bind(&p.network_id)
    .bind(&p.name)
    .bind(&p.mac_address)
    .bind(&p.device_owner)
    .bind(&p.device_id)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(|e| fk(e, &format!("network {}", p.network_id)))?;
    Ok(r.rows_affected() == 1)
}

async fn fill_port(c: &mut C, r: PortRow) -> StoreResult<Port> {
    let ips: Vec<(String, String)> = sqlx::query_as(
        "SELECT subnet_id, ip FROM port_ips WHERE port_id = $1 ORDER BY subnet_id, address",
    )
    .bind(&r.0)
    .fetch_all(&mut *c)
    .await?;
    let groups: Vec<(String,)> = sqlx::query_as(
        "SELECT group_id FROM port_security_groups WHERE port_id = $1 ORDER BY group_id",
    )
    .bind(&r.0)
    .fetch_all(&mut *c)
    .await?;
    Ok(Port {
        id: r.0,
        project_id: r.1,
        network_id: r.2,
        name: r.3,
        mac_address: r.4,
        device_owner: r.5,
        device_id: r.6,
        generation: r.7,
        observed_generation: r.8,
        created_at: r.9,
        fixed_ips: ips
            .into_iter()
            .map(|(subnet_id, ip_address)| FixedIp {
                subnet_id,
                ip_address,
            })
            .collect(),
        security_groups: groups.into_iter().map(|g| g.0).collect(),
    })
}

pub async fn get_port(c: &mut C, id: &str) -> StoreResult<Option<Port>> {
    let row: Option<PortRow> =
        sqlx::query_as(&format!("SELECT {PORT_COLS} FROM ports WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
    match row {
        Some(r) => Ok(Some(fill_port(c, r).await?)),
        None => Ok(None),
    }
}

/// Ports of `project` (all when `None`), optionally of one device only.
pub async fn list_ports(
    c: &mut C,
    project: Option<&str>,
    device: Option<&str>,
) -> StoreResult<Vec<Port>> {
    let rows: Vec<PortRow> = sqlx::query_as(&format!(
        "SELECT {PORT_COLS} FROM ports WHERE ($1 IS NULL OR project_id = $1) \
         AND ($2 IS NULL OR device_id = $2) ORDER BY created_at, id"
    ))
    .bind(project)
    .bind(device)
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(fill_port(c, r).await?);
    }
    Ok(out)
}

/// Ports of `device` with `owner`.
pub async fn ports_of_device(c: &mut C, device: &str, owner: &str) -> StoreResult<Vec<Port>> {
    let rows: Vec<PortRow> = sqlx::query_as(&format!(
        "SELECT {PORT_COLS} FROM ports WHERE device_id = $1 AND device_owner = $2 \
         ORDER BY created_at, id"
    ))
    .bind(device)
    .bind(owner)
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(fill_port(c, r).await?);
    }
    Ok(out)
}

pub async fn bump_port(c: &mut C, id: &str, now: i64) -> StoreResult<bool> {
    let r =
        sqlx::query("UPDATE ports SET generation = generation + 1, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut *c)
            .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_port_groups(c: &mut C, port: &str, groups: &[String]) -> StoreResult<()> {
    sqlx::query("DELETE FROM port_security_groups WHERE port_id = $1")
        .bind(port)
        .execute(&mut *c)
        .await?;
    for g in groups {
        sqlx::query(
            "INSERT INTO port_security_groups (port_id, group_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(port)
        .bind(g)
        .execute(&mut *c)
        .await
        .map_err(|e| fk(e, &format!("security group {g}")))?;
    }
    Ok(())
}

/// Deletes a port row (its addresses and memberships go with it).
pub async fn delete_port_row(c: &mut C, id: &str) -> StoreResult<()> {
    drop_tags(c, id).await?;
    sqlx::query("DELETE FROM ports WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(|e| fk(e, &format!("port {id}")))?;
    Ok(())
}

// --------------------------------------------------------- security groups

type SgRow = (String, String, String, String, i64, i64, i64);

const SG_COLS: &str =
    "id, project_id, name, description, generation, observed_generation, created_at";

type RuleRow = (
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    String,
);

const RULE_COLS: &str = "id, group_id, direction, protocol, port_min, port_max, remote_cidr, \
                         remote_group_id, description";

fn rule(r: RuleRow) -> SecurityGroupRule {
    SecurityGroupRule {
        id: r.0,
        group_id: r.1,
        direction: Direction::parse(&r.2).unwrap_or(Direction::Ingress),
        protocol: Protocol::parse(&r.3).unwrap_or(Protocol::All),
        port_range_min: r.4.and_then(|v| u16::try_from(v).ok()),
        port_range_max: r.5.and_then(|v| u16::try_from(v).ok()),
        remote_cidr: r.6,
        remote_group_id: r.7,
        description: r.8,
    }
}

async fn fill_sg(c: &mut C, r: SgRow) -> StoreResult<SecurityGroup> {
    let rules: Vec<RuleRow> = sqlx::query_as(&format!(
        "SELECT {RULE_COLS} FROM security_group_rules WHERE group_id = $1 \
         ORDER BY created_at, id"
    ))
    .bind(&r.0)
    .fetch_all(&mut *c)
    .await?;
    Ok(SecurityGroup {
        id: r.0,
        project_id: r.1,
        name: r.2,
        description: r.3,
        generation: r.4,
        observed_generation: r.5,
        created_at: r.6,
        rules: rules.into_iter().map(rule).collect(),
    })
}

/// Inserts a group; `false` when the project already has one of that name.
pub async fn insert_sg(c: &mut C, g: &SecurityGroup, now: i64) -> StoreResult<bool> {
    let r = sqlx::query(&format!(
        "INSERT INTO security_groups ({SG_COLS}, updated_at) \
         VALUES ($1, $2, $3, $4, 1, 0, $5, $5) ON CONFLICT DO NOTHING"
    ))
    .bind(&g.id)
    .bind(&g.project_id)
    .bind(&g.name)
    .bind(&g.description)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn get_sg(c: &mut C, id: &str) -> StoreResult<Option<SecurityGroup>> {
    let row: Option<SgRow> = sqlx::query_as(&format!(
        "SELECT {SG_COLS} FROM security_groups WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    match row {
        Some(r) => Ok(Some(fill_sg(c, r).await?)),
        None => Ok(None),
    }
}

pub async fn sg_by_name(c: &mut C, project: &str, name: &str) -> StoreResult<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT id FROM security_groups WHERE project_id = $1 AND name = $2")
            .bind(project)
            .bind(name)
            .fetch_optional(&mut *c)
            .await?;
    Ok(row.map(|r| r.0))
}

pub async fn list_sgs(c: &mut C, project: Option<&str>) -> StoreResult<Vec<SecurityGroup>> {
    let rows: Vec<SgRow> = sqlx::query_as(&format!(
        "SELECT {SG_COLS} FROM security_groups WHERE ($1 IS NULL OR project_id = $1) \
         ORDER BY created_at, id"
    ))
    .bind(project)
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(fill_sg(c, r).await?);
    }
    Ok(out)
}

/// Inserts a rule; `AlreadyExists` when the group has the same rule.
pub async fn insert_rule(
    c: &mut C,
    r: &SecurityGroupRule,
    fingerprint: &str,
    now: i64,
) -> StoreResult<bool> {
    let res = sqlx::query(&format!(
        "INSERT INTO security_group_rules ({RULE_COLS}, fingerprint, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"
    ))
    .bind(&r.id)
    .bind(&r.group_id)
    .bind(r.direction.as_str())
    .bind(r.protocol.as_str())
    .bind(r.port_range_min.map(i64::from))
    .bind(r.port_range_max.map(i64::from))
    .bind(&r.remote_cidr)
    .bind(&r.remote_group_id)
    .bind(&r.description)
    .bind(fingerprint)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(|e| fk(e, &format!("security group {}", r.group_id)))?;
    Ok(res.rows_affected() == 1)
}

pub async fn count_rules(c: &mut C, group: &str) -> StoreResult<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM security_group_rules WHERE group_id = $1")
            .bind(group)
            .fetch_one(&mut *c)
            .await?;
    Ok(n)
}

pub async fn get_rule(c: &mut C, id: &str) -> StoreResult<Option<SecurityGroupRule>> {
    let row: Option<RuleRow> = sqlx::query_as(&format!(
        "SELECT {RULE_COLS} FROM security_group_rules WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.map(rule))
}

pub async fn delete_rule(c: &mut C, id: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM security_group_rules WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn bump_sg(c: &mut C, id: &str, now: i64) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE security_groups SET generation = generation + 1, updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A port that is a member of the group, if any.
pub async fn sg_member(c: &mut C, id: &str) -> StoreResult<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT port_id FROM port_security_groups WHERE group_id = $1 ORDER BY port_id LIMIT 1",
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.map(|r| r.0))
}

/// Another group whose rules name this one as their peer, if any.
pub async fn sg_referrer(c: &mut C, id: &str) -> StoreResult<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT group_id FROM security_group_rules WHERE remote_group_id = $1 \
         AND group_id <> $1 ORDER BY group_id LIMIT 1",
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.map(|r| r.0))
}

pub async fn delete_sg(c: &mut C, id: &str) -> StoreResult<()> {
    drop_tags(c, id).await?;
    // Its own rules may name it; they go first so the reference does not
    // hold the group.
    sqlx::query("DELETE FROM security_group_rules WHERE group_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM security_groups WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(|e| fk(e, &format!("security group {id}")))?;
    Ok(())
}

// ----------------------------------------------------------------- routers

type RouterRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
);

const ROUTER_COLS: &str = "id, project_id, name, external_network_id, gateway_port_id, \
                           generation, observed_generation, created_at";

async fn fill_router(c: &mut C, r: RouterRow) -> StoreResult<Router> {
    let interfaces: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT i.subnet_id, p.id, i.ip FROM ports p JOIN port_ips i ON i.port_id = p.id \
         WHERE p.device_id = $1 AND p.device_owner = $2 ORDER BY i.subnet_id",
    )
    .bind(&r.0)
    .bind(device_owner::ROUTER_INTERFACE)
    .fetch_all(&mut *c)
    .await?;
    let external_ip = match &r.4 {
        Some(port) => {
            let ip: Option<(String,)> = sqlx::query_as(
                "SELECT ip FROM port_ips WHERE port_id = $1 ORDER BY address LIMIT 1",
            )
            .bind(port)
            .fetch_optional(&mut *c)
            .await?;
            ip.map(|r| r.0)
        }
        None => None,
    };
    Ok(Router {
        id: r.0,
        project_id: r.1,
        name: r.2,
        external_network_id: r.3,
        gateway_port_id: r.4,
        external_ip,
        generation: r.5,
        observed_generation: r.6,
        created_at: r.7,
        interfaces: interfaces
            .into_iter()
            .map(|(subnet_id, port_id, ip_address)| RouterInterface {
                subnet_id,
                port_id,
                ip_address,
            })
            .collect(),
    })
}

pub async fn insert_router(c: &mut C, r: &Router, now: i64) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO routers ({ROUTER_COLS}, updated_at) \
         VALUES ($1, $2, $3, NULL, NULL, 1, 0, $4, $4)"
    ))
    .bind(&r.id)
    .bind(&r.project_id)
    .bind(&r.name)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn get_router(c: &mut C, id: &str) -> StoreResult<Option<Router>> {
    let row: Option<RouterRow> =
        sqlx::query_as(&format!("SELECT {ROUTER_COLS} FROM routers WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
    match row {
        Some(r) => Ok(Some(fill_router(c, r).await?)),
        None => Ok(None),
    }
}

pub async fn list_routers(c: &mut C, project: Option<&str>) -> StoreResult<Vec<Router>> {
    let rows: Vec<RouterRow> = sqlx::query_as(&format!(
        "SELECT {ROUTER_COLS} FROM routers WHERE ($1 IS NULL OR project_id = $1) \
         ORDER BY created_at, id"
    ))
    .bind(project)
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(fill_router(c, r).await?);
    }
    Ok(out)
}

/// Bumps the router's generation and locks its row; `false` if it is gone.
pub async fn bump_router(c: &mut C, id: &str, now: i64) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE routers SET generation = generation + 1, updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_router_gateway(
    c: &mut C,
    id: &str,
    network: Option<&str>,
    port: Option<&str>,
) -> StoreResult<()> {
    sqlx::query("UPDATE routers SET external_network_id = $2, gateway_port_id = $3 WHERE id = $1")
        .bind(id)
        .bind(network)
        .bind(port)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn delete_router(c: &mut C, id: &str) -> StoreResult<()> {
    drop_tags(c, id).await?;
    sqlx::query("DELETE FROM routers WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(|e| fk(e, &format!("router {id}")))?;
    Ok(())
}

/// A router of `project` whose gateway is on `external` and which has an
/// interface on `subnet`: the one that translates for a floating address.
pub async fn router_between(
    c: &mut C,
    project: &str,
    external: &str,
    subnet: &str,
) -> StoreResult<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT r.id FROM routers r JOIN ports p ON p.device_id = r.id \
         JOIN port_ips i ON i.port_id = p.id \
         WHERE r.project_id = $1 AND r.external_network_id = $2 AND p.device_owner = $3 \
         AND i.subnet_id = $4 ORDER BY r.id LIMIT 1",
    )
    .bind(project)
    .bind(external)
    .bind(device_owner::ROUTER_INTERFACE)
    .bind(subnet)
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.map(|r| r.0))
}

// ------------------------------------------------------------ floating IPs

type FipRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
);

const FIP_COLS: &str = "id, project_id, network_id, ip, port_id, fixed_ip, router_id, \
                        generation, observed_generation, created_at";

fn fip(r: FipRow) -> FloatingIp {
    FloatingIp {
        id: r.0,
        project_id: r.1,
        network_id: r.2,
        floating_ip_address: r.3,
        port_id: r.4,
        fixed_ip_address: r.5,
        router_id: r.6,
        generation: r.7,
        observed_generation: r.8,
        created_at: r.9,
    }
}

pub async fn insert_fip(
    c: &mut C,
    f: &FloatingIp,
    address: u32,
    address_port: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO floating_ips (id, project_id, network_id, address, ip, address_port_id, \
         port_id, fixed_ip, router_id, generation, observed_generation, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL, 1, 0, $7, $7)",
    )
    .bind(&f.id)
    .bind(&f.project_id)
    .bind(&f.network_id)
    .bind(i64::from(address))
    .bind(&f.floating_ip_address)
    .bind(address_port)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(|e| StoreError::unique(e, format!("floating IP {}", f.floating_ip_address)))?;
    Ok(())
}

pub async fn get_fip(c: &mut C, id: &str) -> StoreResult<Option<FloatingIp>> {
    let row: Option<FipRow> = sqlx::query_as(&format!(
        "SELECT {FIP_COLS} FROM floating_ips WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.map(fip))
}

/// The port that holds a floating address on its external network.
pub async fn fip_address_port(c: &mut C, id: &str) -> StoreResult<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT address_port_id FROM floating_ips WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
    Ok(row.map(|r| r.0))
}

pub async fn list_fips(c: &mut C, project: Option<&str>) -> StoreResult<Vec<FloatingIp>> {
    let rows: Vec<FipRow> = sqlx::query_as(&format!(
        "SELECT {FIP_COLS} FROM floating_ips WHERE ($1 IS NULL OR project_id = $1) \
         ORDER BY created_at, id"
    ))
    .bind(project)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.into_iter().map(fip).collect())
}

pub async fn count_fips(c: &mut C, project: &str) -> StoreResult<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM floating_ips WHERE project_id = $1")
        .bind(project)
        .fetch_one(&mut *c)
        .await?;
    Ok(n)
}

/// The floating address associated with `port`'s `fixed_ip`, if any.
pub async fn fip_on_fixed(c: &mut C, port: &str, fixed_ip: &str) -> StoreResult<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT id FROM floating_ips WHERE port_id = $1 AND fixed_ip = $2")
            .bind(port)
            .bind(fixed_ip)
            .fetch_optional(&mut *c)
            .await?;
    Ok(row.map(|r| r.0))
}

/// Floating addresses associated with `port`.
pub async fn fips_on_port(c: &mut C, port: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM floating_ips WHERE port_id = $1 ORDER BY id")
            .bind(port)
            .fetch_all(&mut *c)
            .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// A floating address that `router` translates for, if any, optionally
/// only those whose fixed address is on `subnet`.
pub async fn fip_via_router(
    c: &mut C,
    router: &str,
    subnet: Option<&str>,
) -> StoreResult<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT f.id FROM floating_ips f WHERE f.router_id = $1 AND ($2 IS NULL OR EXISTS \
         (SELECT 1 FROM port_ips i WHERE i.port_id = f.port_id AND i.ip = f.fixed_ip \
          AND i.subnet_id = $2)) ORDER BY f.id LIMIT 1",
    )
    .bind(router)
    .bind(subnet)
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.map(|r| r.0))
}

/// Associates (or with `None`s, disassociates) a floating address and
/// bumps its generation; `false` when it is gone.
pub async fn set_fip_association(
    c: &mut C,
    id: &str,
    port: Option<&str>,
    fixed_ip: Option<&str>,
    router: Option<&str>,
    now: i64,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "UPDATE floating_ips SET port_id = $2, fixed_ip = $3, router_id = $4, \
         generation = generation + 1, updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(port)
    .bind(fixed_ip)
    .bind(router)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(|e| StoreError::unique(e, "an association of that fixed address"))?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete_fip(c: &mut C, id: &str) -> StoreResult<()> {
    drop_tags(c, id).await?;
    sqlx::query("DELETE FROM floating_ips WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The addresses of the instance ports of `devices` (at most a few
/// hundred ids per call: one placeholder each), ordered by device, port
/// creation and address.
pub async fn device_addresses(
    c: &mut C,
    devices: &[String],
) -> StoreResult<Vec<(String, DeviceAddress)>> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..devices.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT p.device_id, p.id, p.network_id, i.subnet_id, p.mac, i.ip, f.ip, f.id \
         FROM ports p JOIN port_ips i ON i.port_id = p.id \
         LEFT JOIN floating_ips f ON f.port_id = p.id AND f.fixed_ip = i.ip \
         WHERE p.device_owner = $1 AND p.device_id IN ({}) \
         ORDER BY p.device_id, p.created_at, p.id, i.address",
        placeholders.join(", ")
    );
    let mut q = sqlx::query_as::<
        _,
        (
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
        ),
    >(&sql)
    .bind(device_owner::INSTANCE);
    for d in devices {
        q = q.bind(d);
    }
    let rows = q.fetch_all(&mut *c).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.0,
                DeviceAddress {
                    port_id: r.1,
                    network_id: r.2,
                    subnet_id: r.3,
                    mac_address: r.4,
                    private_ip: r.5,
                    public_ip: r.6,
                    floating_ip_id: r.7,
                    security_groups: Vec::new(),
                },
            )
        })
        .collect())
}

/// The security groups (id, name) of ports, by port, for describe output.
pub async fn ports_groups(
    c: &mut C,
    ports: &[String],
) -> StoreResult<BTreeMap<String, Vec<(String, String)>>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    if ports.is_empty() {
        return Ok(out);
    }
    let placeholders: Vec<String> = (0..ports.len()).map(|i| format!("${}", i + 1)).collect();
    let sql = format!(
        "SELECT g.port_id, g.group_id, s.name FROM port_security_groups g \
         JOIN security_groups s ON s.id = g.group_id \
         WHERE g.port_id IN ({}) ORDER BY g.port_id, g.group_id",
        placeholders.join(", ")
    );
    let mut q = sqlx::query_as::<_, (String, String, String)>(&sql);
    for p in ports {
        q = q.bind(p);
    }
    for (port, id, name) in q.fetch_all(&mut *c).await? {
        out.entry(port).or_default().push((id, name));
    }
    Ok(out)
}

// ------------------------------------------------------------------- agent

/// An instance's port as the node agent needs it (`agent`).
pub type AgentPortRow = (String, String, String, i64, i64);

/// Every port of an instance (`device_owner` `compute:instance`): id,
/// network, MAC, generation, observed generation. One node today, so
/// every such port is this node's.
pub async fn instance_ports(c: &mut C) -> StoreResult<Vec<AgentPortRow>> {
    Ok(sqlx::query_as(
        "SELECT id, network_id, mac, generation, observed_generation FROM ports \
         WHERE device_owner = $1 ORDER BY id",
    )
    .bind(device_owner::INSTANCE)
    .fetch_all(&mut *c)
    .await?)
}

/// The fixed addresses of every instance port, with their subnet's CIDR:
/// (port, address, CIDR), in address order per port.
pub async fn instance_port_ips(c: &mut C) -> StoreResult<Vec<(String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT i.port_id, i.ip, s.cidr FROM port_ips i \
         JOIN ports p ON p.id = i.port_id JOIN subnets s ON s.id = i.subnet_id \
         WHERE p.device_owner = $1 ORDER BY i.port_id, i.address",
    )
    .bind(device_owner::INSTANCE)
    .fetch_all(&mut *c)
    .await?)
}

/// The security groups of every instance port: (port, group).
pub async fn instance_port_groups(c: &mut C) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT g.port_id, g.group_id FROM port_security_groups g \
         JOIN ports p ON p.id = g.port_id WHERE p.device_owner = $1 \
         ORDER BY g.port_id, g.group_id",
    )
    .bind(device_owner::INSTANCE)
    .fetch_all(&mut *c)
    .await?)
}

/// Networks that hold at least one instance port: the ones whose bridge
/// a node must have.
pub async fn networks_with_instance_ports(c: &mut C) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT n.id FROM networks n WHERE EXISTS \
         (SELECT 1 FROM ports p WHERE p.network_id = n.id AND p.device_owner = $1) \
         ORDER BY n.id",
    )
    .bind(device_owner::INSTANCE)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The VLAN ids of the networks that hold an instance port (what a
/// bridge needs besides its id).
pub async fn vlans_of_instance_networks(c: &mut C) -> StoreResult<Vec<(String, Option<i64>)>> {
    Ok(sqlx::query_as(
        "SELECT n.id, n.vlan_id FROM networks n WHERE EXISTS \
         (SELECT 1 FROM ports p WHERE p.network_id = n.id AND p.device_owner = $1) \
         ORDER BY n.id",
    )
    .bind(device_owner::INSTANCE)
    .fetch_all(&mut *c)
    .await?)
}

/// Whether the network holds an instance port.
pub async fn has_instance_ports(c: &mut C, network: &str) -> StoreResult<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM ports WHERE network_id = $1 AND device_owner = $2 LIMIT 1")
            .bind(network)
            .bind(device_owner::INSTANCE)
            .fetch_optional(&mut *c)
            .await?;
    Ok(row.is_some())
}

/// Whether the project has a router of this name.
pub async fn router_named(c: &mut C, project: &str, name: &str) -> StoreResult<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM routers WHERE project_id = $1 AND name = $2 LIMIT 1")
            .bind(project)
            .bind(name)
            .fetch_optional(&mut *c)
            .await?;
    Ok(row.is_some())
}

/// Whether a router has an interface on the network.
pub async fn network_has_router(c: &mut C, network: &str) -> StoreResult<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM ports WHERE network_id = $1 AND device_owner = $2 LIMIT 1")
            .bind(network)
            .bind(device_owner::ROUTER_INTERFACE)
            .fetch_optional(&mut *c)
            .await?;
    Ok(row.is_some())
}

/// Every subnet in brief: (id, network, CIDR, gateway address).
pub async fn all_subnets_brief(
    c: &mut C,
) -> StoreResult<Vec<(String, String, String, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT id, network_id, cidr, gateway_ip FROM subnets ORDER BY network_id, first_address",
    )
    .fetch_all(&mut *c)
    .await?)
}

/// Every security group's id and generation, for the agent to tell which
/// groups it must read again.
pub async fn sg_generations(c: &mut C) -> StoreResult<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("SELECT id, generation FROM security_groups ORDER BY id")
            .fetch_all(&mut *c)
            .await?,
    )
}

/// Every security group with its rules; the agent keeps those its ports
/// need.
pub async fn all_sgs_with_rules(c: &mut C) -> StoreResult<Vec<SecurityGroup>> {
    let rows: Vec<SgRow> = sqlx::query_as(&format!(
        "SELECT {SG_COLS} FROM security_groups ORDER BY id"
    ))
    .fetch_all(&mut *c)
    .await?;
    let rules: Vec<RuleRow> = sqlx::query_as(&format!(
        "SELECT {RULE_COLS} FROM security_group_rules ORDER BY group_id, created_at, id"
    ))
    .fetch_all(&mut *c)
    .await?;
    let mut by_group: std::collections::HashMap<String, Vec<SecurityGroupRule>> =
        std::collections::HashMap::new();
    for r in rules {
        let r = rule(r);
        by_group.entry(r.group_id.clone()).or_default().push(r);
    }
    Ok(rows
        .into_iter()
        .map(|r| SecurityGroup {
            rules: by_group.remove(&r.0).unwrap_or_default(),
            id: r.0,
            project_id: r.1,
            name: r.2,
            description: r.3,
            generation: r.4,
            observed_generation: r.5,
            created_at: r.6,
        })
        .collect())
}

/// The tables whose rows carry `observed_generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Observable {
    Network,
    Subnet,
    Port,
    SecurityGroup,
    Router,
    FloatingIp,
}

/// Records that a node applied the row at `generation`. Never lowers it,
/// and does not bump the revision: what a node observed is not a change
/// anyone must act on.
pub async fn set_observed(
    c: &mut C,
    table: Observable,
    id: &str,
    generation: i64,
) -> StoreResult<()> {
    let table = match table {
        Observable::Network => "networks",
        Observable::Subnet => "subnets",
        Observable::Port => "ports",
        Observable::SecurityGroup => "security_groups",
        Observable::Router => "routers",
        Observable::FloatingIp => "floating_ips",
    };
    sqlx::query(&format!(
        "UPDATE {table} SET observed_generation = $2 WHERE id = $1 AND observed_generation < $2"
    ))
    .bind(id)
    .bind(generation)
    .execute(&mut *c)
    .await?;
    Ok(())
}

// -------------------------------------------------------------------- tags

/// A resource's tags go with it.
async fn drop_tags(c: &mut C, id: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM network_tags WHERE resource_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Sets (adds or overwrites) one tag.
pub async fn put_tag(
    c: &mut C,
    resource: &str,
    project: &str,
    key: &str,
    value: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO network_tags (resource_id, project_id, tag_key, tag_value) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (resource_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
    )
    .bind(resource)
    .bind(project)
    .bind(key)
    .bind(value)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Removes one tag, only when it holds `value` if one is given.
pub async fn remove_tag(
    c: &mut C,
    resource: &str,
    key: &str,
    value: Option<&str>,
) -> StoreResult<()> {
    match value {
        Some(v) => {
            sqlx::query(
                "DELETE FROM network_tags WHERE resource_id = $1 AND tag_key = $2 \
                 AND tag_value = $3",
            )
            .bind(resource)
            .bind(key)
            .bind(v)
            .execute(&mut *c)
            .await?
        }
        None => {
            sqlx::query("DELETE FROM network_tags WHERE resource_id = $1 AND tag_key = $2")
                .bind(resource)
                .bind(key)
                .execute(&mut *c)
                .await?
        }
    };
    Ok(())
}

pub async fn count_tags(c: &mut C, resource: &str) -> StoreResult<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM network_tags WHERE resource_id = $1")
        .bind(resource)
        .fetch_one(&mut *c)
        .await?;
    Ok(n)
}

/// Every tag of `project`'s network resources: (resource, key, value).
pub async fn project_tags(c: &mut C, project: &str) -> StoreResult<Vec<(String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT resource_id, tag_key, tag_value FROM network_tags WHERE project_id = $1 \
         ORDER BY resource_id, tag_key",
    )
    .bind(project)
    .fetch_all(&mut *c)
    .await?)
}

// ------------------------------------------------------------------ labels

/// Sets the `column` (`name` or `description`) of the resource `id` of
/// `kind`; `false` when another of the project's security groups holds
/// the name already.
pub async fn set_label(
    c: &mut C,
    kind: crate::Resource,
    id: &str,
    column: &'static str,
    value: &str,
    now: i64,
) -> StoreResult<bool> {
    use crate::Resource as R;
    let table = match kind {
        R::Network => "networks",
        R::Subnet => "subnets",
        R::Port => "ports",
        R::Router => "routers",
        R::SecurityGroup => "security_groups",
        R::FloatingIp => "floating_ips",
        R::SecurityGroupRule => {
            return Err(StoreError::Conflict {
                what: format!("a {} has no label", kind.noun()),
            })
        }
    };
    let column = match column {
        "name" => "name",
        _ => "description",
    };
    let r = sqlx::query(&format!(
        "UPDATE {table} SET {column} = $2, updated_at = $3 WHERE id = $1"
    ))
    .bind(id)
    .bind(value)
    .bind(now)
    .execute(&mut *c)
    .await;
    match r {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(false),
        Err(e) => Err(StoreError::Query(e)),
    }
}

/// The non-empty descriptions of networks, subnets, ports, routers and
/// floating IPs of `project` (of all with `None`): (id, description).
pub async fn descriptions(c: &mut C, project: Option<&str>) -> StoreResult<Vec<(String, String)>> {
    let select = |table: &str| {
        format!(
            "SELECT id, description FROM {table} WHERE description <> '' \
             AND ($1 = '' OR project_id = $1)"
        )
    };
    let sql = ["networks", "subnets", "ports", "routers", "floating_ips"]
        .map(select)
        .join(" UNION ALL ");
    Ok(sqlx::query_as(&sql)
        .bind(project.unwrap_or(""))
        .fetch_all(&mut *c)
        .await?)
}
