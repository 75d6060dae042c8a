//! `nuage quota ...`: a project's limits.

use anyhow::{anyhow, Result};
use clap::{ArgGroup, Subcommand};
use serde_json::{Map, Value};

use crate::output::{self, Col, Format};
use crate::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Show a project's quotas (-1 is unlimited)
    Show {
        /// Project name or id; default: the token's project
        project: Option<String>,
    },
    /// Set some of a project's quotas (-1 for unlimited)
    #[command(group(ArgGroup::new("limits").required(true).multiple(true)))]
    Set {
        /// Project name or id
        project: String,
        /// Instances
        #[arg(long, group = "limits", allow_negative_numbers = true)]
        instances: Option<i64>,
        /// Virtual CPUs over all instances
        #[arg(long, group = "limits", allow_negative_numbers = true)]
        cores: Option<i64>,
        /// Memory over all instances, in MiB
        #[arg(long, group = "limits", allow_negative_numbers = true)]
        ram: Option<i64>,
        /// Volumes
        #[arg(long, group = "limits", allow_negative_numbers = true)]
        volumes: Option<i64>,
        /// Volume storage, in GiB
        #[arg(long, group = "limits", allow_negative_numbers = true)]
        gigabytes: Option<i64>,
        /// Floating IPs
        #[arg(long, group = "limits", allow_negative_numbers = true)]
        floating_ips: Option<i64>,
        /// Object storage buckets
        #[arg(long, group = "limits", allow_negative_numbers = true)]
        buckets: Option<i64>,
        /// Object storage bytes; K, M, G, T suffixes (powers of 1024) allowed
        #[arg(long, group = "limits", allow_negative_numbers = true, value_parser = parse_size)]
        bytes: Option<i64>,
    },
}

/// `123`, `-1`, or a number with a K/M/G/T (×1024ⁿ) suffix: `10G`, `10GiB`.
fn parse_size(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    let end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(t.len(), |(i, _)| i);
    let (num, suffix) = t.split_at(end);
    let shift = match suffix.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        "P" | "PB" | "PIB" => 50,
        _ => {
            return Err(format!(
                "{s:?} is not a size: use a number, optionally with K, M, G or T"
            ))
        }
    };
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size: use a number, optionally with K, M, G or T"))?;
    if n < 0 {
        return if n == -1 && shift == 0 {
            Ok(-1)
        } else {
            Err(format!("{s:?}: only -1 (unlimited) may be negative"))
        };
    }
    n.checked_mul(1i64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn limit_cell(v: &Value) -> String {
    match v.as_i64() {
        Some(-1) => "unlimited".into(),
        _ => output::cell(v),
    }
}

fn print(ctx: &Ctx, v: &Value) {
    if ctx.format == Format::Json {
        return output::json(v);
    }
    let rows: Vec<Value> = v["quotas"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, l)| serde_json::json!({"resource": k, "limit": l}))
                .collect()
        })
        .unwrap_or_default();
    let cols = [
        Col::field("Resource", "resource"),
        Col::with("Limit", |r| limit_cell(&r["limit"])),
    ];
    output::list(ctx.format, v, &rows, &cols);
}

pub async fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<()> {
    match cmd {
        Cmd::Show { project } => {
            let project = match project {
                Some(p) => p,
                None => ctx.client.my_project_id().await?,
            };
            let v = ctx
                .client
                .get(&["projects", &project, "quotas"], &[])
                .await?;
            print(ctx, &v);
        }
        Cmd::Set {
            project,
            instances,
            cores,
            ram,
            volumes,
            gigabytes,
            floating_ips,
            buckets,
            bytes,
        } => {
            let mut body = Map::new();
            for (k, v) in [
                ("instances", instances),
                ("cores", cores),
                ("ram", ram),
                ("volumes", volumes),
                ("gigabytes", gigabytes),
                ("floating_ips", floating_ips),
                ("buckets", buckets),
                ("bytes", bytes),
            ] {
                if let Some(v) = v {
                    body.insert(k.into(), v.into());
                }
            }
            let v = ctx
                .client
                .put(
                    &["projects", &project, "quotas"],
                    Some(&Value::Object(body)),
                )
                .await?
                .ok_or_else(|| anyhow!("the server did not return the new quotas"))?;
            print(ctx, &v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("-1"), Ok(-1));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("3 G"), Ok(3 << 30));
        assert_eq!(parse_size("2TB"), Ok(2 << 40));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert!(parse_size("-2").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("9999999999T").is_err());
    }
}
