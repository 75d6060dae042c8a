//! IP address management: which address of a subnet a port gets.
//!
//! Contract: every function runs inside the caller's transaction, so a
//! launch commits its ports, their addresses, the quota check and the
//! instance rows together, or none of them (a crash before the commit
//! leaks nothing, one after it duplicates nothing).
//!
//! Concurrency: an allocation first locks its subnet's row (an update of
//! the row; on SQLite the single writer connection already serialises
//! write transactions), so two allocations on one subnet never pick the
//! same address; `port_ips`' primary key `(subnet_id, address)` is the
//! last line of defence, and an insert it refuses is answered with
//! another search, never with a duplicate.
//!
//! Cost: the lowest free pool address is found without loading the
//! allocations. Each subnet keeps `ipam_hint`, below which every pool
//! address is allocated; a search probes the hint (one index lookup) and,
//! if it is taken, walks the allocated run that starts there in index order
//! until the first gap (`ORDER BY address LIMIT 1` over the primary key,
//! with an anti-join probe per step). Allocating in a subnet filled from
//! the bottom costs O(1) index lookups whatever its size (a /16 holds 65,533
//! addresses); after a release lowers the hint, the next search costs the
//! length of the allocated run above the freed address, once.

use std::net::Ipv4Addr;

use nuage_store::sqlx::{self, AnyConnection};

use crate::cidr::{Cidr, Range};
use crate::error::{NetworkError, NetworkResult, Resource};
use crate::types::Pool;

/// Which address a port asks for on a subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The lowest free address of the allocation pools.
    Any,
    /// This address (inside the CIDR, neither its network nor broadcast
    /// address nor the gateway), pool or not.
    Exact(Ipv4Addr),
    /// The subnet's gateway address: only router interfaces hold it.
    Gateway,
}

/// How many times a search is repeated after its insert lost a race; with
/// the row lock held it never does, so hitting this means a bug.
const RETRIES: u32 = 4;

/// The subnet as the allocator needs it, read under its row lock.
struct Locked {
    cidr: Cidr,
    gateway: Option<u32>,
    pools: Vec<Range>,
    hint: u32,
}

/// Parses the stored pools; they were validated when the subnet was made.
pub(crate) fn ranges(pools: &[Pool]) -> NetworkResult<Vec<Range>> {
    let mut out = Vec::with_capacity(pools.len());
    for p in pools {
        let (Some(s), Some(e)) = (
            crate::cidr::parse_ip(&p.start),
            crate::cidr::parse_ip(&p.end),
        ) else {
            return Err(NetworkError::Internal(format!(
                "stored allocation pool {}-{} is not valid",
                p.start, p.end
            )));
        };
        out.push(Range {
            start: u32::from(s),
            end: u32::from(e),
        });
    }
    out.sort();
    Ok(out)
}

async fn lock(c: &mut AnyConnection, subnet: &str) -> NetworkResult<Locked> {
    let row: Option<(i64, String, Option<String>, String)> = sqlx::query_as(
        "UPDATE subnets SET ipam_hint = ipam_hint WHERE id = $1 \
         RETURNING ipam_hint, cidr, gateway_ip, allocation_pools",
    )
    .bind(subnet)
    .fetch_optional(&mut *c)
    .await?;
    let (hint, cidr, gateway, pools) =
        row.ok_or_else(|| NetworkError::not_found(Resource::Subnet, subnet))?;
    let cidr: Cidr = cidr.parse().map_err(|e| {
        NetworkError::Internal(format!("stored CIDR {cidr} of {subnet} is not valid: {e}"))
    })?;
    let gateway = gateway
        .as_deref()
        .and_then(crate::cidr::parse_ip)
        .map(u32::from);
    let pools: Vec<Pool> = serde_json::from_str(&pools).map_err(|e| {
        NetworkError::Internal(format!("stored pools of {subnet} are not valid: {e}"))
    })?;
    Ok(Locked {
        cidr,
        gateway,
        pools: ranges(&pools)?,
        hint: u32::try_from(hint).unwrap_or(0),
    })
}

async fn is_free(c: &mut AnyConnection, subnet: &str, a: u32) -> NetworkResult<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT address FROM port_ips WHERE subnet_id = $1 AND address = $2")
            .bind(subnet)
            .bind(i64::from(a))
            .fetch_optional(&mut *c)
            .await?;
    Ok(row.is_none())
}

/// The lowest free address of `pool` at or above `from`.
async fn first_free(
    c: &mut AnyConnection,
    subnet: &str,
    pool: Range,
    from: u32,
) -> NetworkResult<Option<u32>> {
    let lo = pool.start.max(from);
    if lo > pool.end {
        return Ok(None);
    }
    if is_free(c, subnet, lo).await? {
        return Ok(Some(lo));
    }
    // `lo` is taken: the end of the allocated run that starts there is the
    // first allocated address whose successor is free.
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT a.address FROM port_ips a WHERE a.subnet_id = $1 \
         AND a.address >= $2 AND a.address < $3 AND NOT EXISTS \
         (SELECT 1 FROM port_ips b WHERE b.subnet_id = $1 AND b.address = a.address + 1) \
         ORDER BY a.address LIMIT 1",
    )
    .bind(subnet)
    .bind(i64::from(lo))
    .bind(i64::from(pool.end))
    .fetch_optional(&mut *c)
    .await?;
    Ok(row.and_then(|(a,)| u32::try_from(a + 1).ok()))
}

async fn insert(c: &mut AnyConnection, subnet: &str, port: &str, a: u32) -> NetworkResult<bool> {
    let r = sqlx::query(
        "INSERT INTO port_ips (subnet_id, address, port_id, ip) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(subnet)
    .bind(i64::from(a))
    .bind(port)
    .bind(Ipv4Addr::from(a).to_string())
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Gives `port` (already inserted in this transaction) an address of
/// `subnet`. Errors: `NotFound` (no such subnet), `PoolExhausted`,
/// `AddressInUse` (an exact address someone holds), `Invalid` (an exact
/// address the subnet cannot give).
pub async fn allocate(
    c: &mut AnyConnection,
    subnet: &str,
    port: &str,
    want: Want,
) -> NetworkResult<Ipv4Addr> {
    let s = lock(c, subnet).await?;
    let exact = match want {
        Want::Any => None,
        Want::Gateway => Some(s.gateway.ok_or_else(|| {
            NetworkError::invalid(format!("subnet {subnet} has no gateway address"))
        })?),
        Want::Exact(ip) => {
            let a = u32::from(ip);
            let usable = s.cidr.usable();
            if !usable.is_some_and(|u| u.contains(a)) {
                return Err(NetworkError::invalid(format!(
                    "{ip} is not a usable address of subnet {subnet} ({})",
                    s.cidr
                )));
            }
            if s.gateway == Some(a) {
                return Err(NetworkError::invalid(format!(
                    "{ip} is the gateway of subnet {subnet}"
                )));
            }
            Some(a)
        }
    };
    if let Some(a) = exact {
        if !insert(c, subnet, port, a).await? {
            return Err(NetworkError::AddressInUse {
                subnet: subnet.to_string(),
                ip: Ipv4Addr::from(a).to_string(),
            });
        }
        return Ok(Ipv4Addr::from(a));
    }
    for _ in 0..RETRIES {
        let mut found = None;
        for pool in &s.pools {
            if let Some(a) = first_free(c, subnet, *pool, s.hint).await? {
                found = Some(a);
                break;
            }
        }
        let Some(a) = found else {
            return Err(NetworkError::PoolExhausted {
                kind: Resource::Subnet,
                id: subnet.to_string(),
            });
        };
        if insert(c, subnet, port, a).await? {
            sqlx::query("UPDATE subnets SET ipam_hint = $2 WHERE id = $1")
                .bind(subnet)
                .bind(i64::from(a) + 1)
                .execute(&mut *c)
                .await?;
            return Ok(Ipv4Addr::from(a));
        }
        tracing::warn!(subnet, address = %Ipv4Addr::from(a), "an address the allocator chose was taken; searching again");
    }
    Err(NetworkError::Conflict(format!(
        "subnet {subnet} kept changing during allocation; try again"
    )))
}

/// Gives back every address of `port` (in this transaction), lowering each
/// subnet's hint so that the lowest free address is found again.
pub async fn release_port(c: &mut AnyConnection, port: &str) -> NetworkResult<()> {
    let held: Vec<(String, i64)> =
        sqlx::query_as("SELECT subnet_id, address FROM port_ips WHERE port_id = $1")
            .bind(port)
            .fetch_all(&mut *c)
            .await?;
    for (subnet, address) in held {
        sqlx::query(
            "UPDATE subnets SET ipam_hint = CASE WHEN ipam_hint > $2 THEN $2 ELSE ipam_hint END \
             WHERE id = $1",
        )
        .bind(&subnet)
        .bind(address)
        .execute(&mut *c)
        .await?;
        sqlx::query("DELETE FROM port_ips WHERE subnet_id = $1 AND address = $2")
            .bind(&subnet)
            .bind(address)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}
