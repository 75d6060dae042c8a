//! Reads for the instance services (metadata, DNS), which know a caller
//! only by the network its packet arrived on and its source address: no
//! principal, no policy check. The network is the socket's (bound to the
//! network's interface), the address is the packet's, and the data
//! plane's anti-spoofing lets a port send only its own address, so the
//! pair names one port.

use std::net::Ipv4Addr;

use nuage_store::{sqlx, StoreError};

use crate::types::{device_owner, Port};
use crate::{repo, NetworkResult, NetworkService};

impl NetworkService {
    /// The instance port that holds `address` on `network`, if any.
    pub async fn instance_port_at(
        &self,
        network: &str,
        address: Ipv4Addr,
    ) -> NetworkResult<Option<Port>> {
        let mut c = self.reader().await?;
        let id: Option<(String,)> = sqlx::query_as(
            "SELECT i.port_id FROM subnets s \
             JOIN port_ips i ON i.subnet_id = s.id AND i.address = $2 \
             JOIN ports p ON p.id = i.port_id \
             WHERE s.network_id = $1 AND p.device_owner = $3",
        )
        .bind(network)
        .bind(i64::from(u32::from(address)))
        .bind(device_owner::INSTANCE)
        .fetch_optional(&mut *c)
        .await
        .map_err(StoreError::from)?;
        match id {
            Some((id,)) => Ok(repo::get_port(&mut c, &id).await?),
            None => Ok(None),
        }
    }

    /// Every instance address on `network`: (instance id, address), for
    /// the network's resolver.
    pub async fn instance_addresses_on(
        &self,
        network: &str,
    ) -> NetworkResult<Vec<(String, Ipv4Addr)>> {
        let mut c = self.reader().await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT p.device_id, i.address FROM ports p \
             JOIN port_ips i ON i.port_id = p.id \
             WHERE p.network_id = $1 AND p.device_owner = $2 \
             ORDER BY i.address",
        )
        .bind(network)
        .bind(device_owner::INSTANCE)
        .fetch_all(&mut *c)
        .await
        .map_err(StoreError::from)?;
        Ok(rows
            .into_iter()
            .filter_map(|(d, a)| Some((d, Ipv4Addr::from(u32::try_from(a).ok()?))))
            .collect())
    }

    /// The names of security groups, in the order of `ids` (a group
    /// deleted meanwhile is left out).
    pub async fn security_group_names(&self, ids: &[String]) -> NetworkResult<Vec<String>> {
        let mut c = self.reader().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let name: Option<(String,)> =
                sqlx::query_as("SELECT name FROM security_groups WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(StoreError::from)?;
            out.extend(name.map(|n| n.0));
        }
        Ok(out)
    }
}
