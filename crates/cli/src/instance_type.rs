//! `nuage instance-type ...`: the sizes instances come in. Everybody
//! lists them; admins create and delete them.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::client::items;
use crate::output::{self, Col};
use crate::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List instance types
    List,
    /// Show an instance type
    Show {
        /// Type name, e.g. t2.nano
        name: String,
    },
    /// Create an instance type (admin)
    Create {
        /// Type name, e.g. c1.large
        name: String,
        /// Virtual CPUs
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        vcpus: u32,
        /// Memory, in MiB
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        memory_mib: u64,
        /// Root disk, in GiB
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        disk_gib: u64,
        /// Most processes an instance may run; default: the server's
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        pids_limit: Option<u64>,
        /// Relative share of disk bandwidth (cgroup io.weight, 1-10000); default: the server's
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10000))]
        io_weight: Option<u32>,
    },
    /// Delete instance types (admin; built-in ones cannot be deleted)
    Delete {
        /// Type names
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// The instance type table's columns.
pub fn columns() -> Vec<Col<'static>> {
    vec![
        Col::field("Name", "name"),
        Col::field("vCPUs", "vcpus"),
        Col::field("Memory (MiB)", "memory_mib"),
        Col::field("Disk (GiB)", "disk_gib"),
        Col::field("PIDs", "pids_limit"),
        Col::field("IO weight", "io_weight"),
        Col::field("Built-in", "builtin"),
    ]
}

fn create_body(
    name: &str,
    vcpus: u32,
    memory_mib: u64,
    disk_gib: u64,
    pids_limit: Option<u64>,
    io_weight: Option<u32>,
) -> Value {
    let mut b =
        json!({"name": name, "vcpus": vcpus, "memory_mib": memory_mib, "disk_gib": disk_gib});
    if let Some(p) = pids_limit {
        b["pids_limit"] = json!(p);
    }
    if let Some(w) = io_weight {
        b["io_weight"] = json!(w);
    }
    b
}

pub async fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<()> {
    match cmd {
        Cmd::List => {
            let v = ctx.client.get(&["instance-types"], &[]).await?;
            output::list(ctx.format, &v, items(&v), &columns());
        }
        Cmd::Show { name } => {
            let v = ctx.client.get(&["instance-types", &name], &[]).await?;
            output::show(ctx.format, &v);
        }
        Cmd::Create {
            name,
            vcpus,
            memory_mib,
            disk_gib,
            pids_limit,
            io_weight,
        } => {
            let body = create_body(&name, vcpus, memory_mib, disk_gib, pids_limit, io_weight);
            let v = ctx.client.post(&["instance-types"], &body).await?;
            output::show(ctx.format, &v);
        }
        Cmd::Delete { names } => {
            crate::delete_all(ctx, "instance-types", "instance type", &names).await?
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies() {
        assert_eq!(
            create_body("c1", 2, 2048, 20, None, Some(200)),
            json!({"name": "c1", "vcpus": 2, "memory_mib": 2048, "disk_gib": 20, "io_weight": 200})
        );
    }
}
