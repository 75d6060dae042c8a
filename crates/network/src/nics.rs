//! What a node needs to wire an instance's ports: the port, its address
//! with the subnet's prefix, the gateway and the network's VLAN, read in
//! one query for the compute reconciler that builds the instance's spec.

use std::net::Ipv4Addr;

use nuage_store::sqlx;

use crate::cidr::Cidr;
use crate::types::device_owner;
use crate::{NetworkError, NetworkResult, NetworkService};

/// One address of an instance's port, as the data plane configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortWiring {
    pub port_id: String,
    pub network_id: String,
    pub vlan: Option<u16>,
    pub mac: String,
    pub address: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
}

impl NetworkService {
    /// The instance's ports in creation order (its `eth0` first), one
    /// entry per port: the port's first fixed address.
    pub async fn instance_wiring(&self, instance_id: &str) -> NetworkResult<Vec<PortWiring>> {
        let mut c = self.reader().await?;
        let rows = sqlx::query_as::<
            _,
            (
                String,
                String,
                Option<i64>,
                String,
                String,
                String,
                Option<String>,
            ),
        >(
            "SELECT p.id, p.network_id, n.vlan_id, p.mac, i.ip, s.cidr, s.gateway_ip \
             FROM ports p JOIN port_ips i ON i.port_id = p.id \
             JOIN subnets s ON s.id = i.subnet_id JOIN networks n ON n.id = p.network_id \
             WHERE p.device_owner = $1 AND p.device_id = $2 \
             ORDER BY p.created_at, p.id, i.address",
        )
        .bind(device_owner::INSTANCE)
        .bind(instance_id)
        .fetch_all(&mut *c)
        .await
        .map_err(nuage_store::StoreError::from)?;
        let mut out: Vec<PortWiring> = Vec::with_capacity(rows.len());
        for (port_id, network_id, vlan, mac, ip, cidr, gateway) in rows {
            if out.last().is_some_and(|w| w.port_id == port_id) {
                continue;
            }
            let corrupt = |what: &str| {
                NetworkError::Internal(format!("port {port_id}: stored {what} does not parse"))
            };
            let net: Cidr = cidr.parse().map_err(|_| corrupt("subnet CIDR"))?;
            out.push(PortWiring {
                address: ip.parse().map_err(|_| corrupt("address"))?,
                prefix: net.prefix(),
                gateway: match gateway {
                    Some(g) => Some(g.parse().map_err(|_| corrupt("gateway"))?),
                    None => None,
                },
                vlan: match vlan {
                    Some(v) => Some(u16::try_from(v).map_err(|_| corrupt("VLAN id"))?),
                    None => None,
                },
                port_id,
                network_id,
                mac,
            });
        }
        Ok(out)
    }
}
