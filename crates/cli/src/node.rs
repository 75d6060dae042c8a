//! `nuage node list`: the hosts instances run on (admin).

use anyhow::Result;
use clap::Subcommand;
use serde_json::Value;

use crate::client::items;
use crate::output::{self, Col};
use crate::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List compute nodes with their capacity and use
    List,
}

/// `used/total` for a capacity column.
fn used_of(r: &Value, used: &str, total: &str) -> String {
    format!("{}/{}", output::cell(&r[used]), output::cell(&r[total]))
}

fn columns() -> Vec<Col<'static>> {
    vec![
        Col::field("ID", "id"),
        Col::field("Name", "name"),
        Col::field("Zone", "availability_zone"),
        Col::field("Arch", "arch"),
        Col::field("Hypervisor", "hypervisor"),
        Col::with("vCPUs used", |r| used_of(r, "used_vcpus", "vcpus")),
        Col::with("RAM used (MiB)", |r| used_of(r, "used_ram_mib", "ram_mib")),
        Col::with("Disk used (GiB)", |r| {
            used_of(r, "used_disk_gib", "disk_gib")
        }),
        Col::field("Instances", "instances"),
        Col::field("Enabled", "enabled"),
        Col::with("Heartbeat", |r| output::time_cell(&r["heartbeat_at"])),
    ]
}

pub async fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<()> {
    match cmd {
        Cmd::List => {
            let v = ctx.client.get(&["nodes"], &[]).await?;
            output::list(ctx.format, &v, items(&v), &columns());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capacity_cells() {
        let r = json!({"vcpus": 8, "used_vcpus": 3});
        assert_eq!(used_of(&r, "used_vcpus", "vcpus"), "3/8");
    }
}
