//! Where the cloud is: regions, availability zones and the account's
//! attributes (DescribeRegions, DescribeAvailabilityZones,
//! DescribeAccountAttributes).
//!
//! This module is also the pattern every area of the EC2 door follows:
//! an `Op` enum holding each action's parsed parameters, `Op::parse`
//! reading them from [`Params`] (and nothing else), `Op::run` calling the
//! core and writing the answer.

use super::error::{Ec2Error, Result};
use super::ops::Ctx;
use super::params::{keep, Filter, Params};
use super::xml::Xml;
use std::collections::BTreeMap;

pub const ACTIONS: &[&str] = &[
    "DescribeAccountAttributes",
    "DescribeAvailabilityZones",
    "DescribeRegions",
];

const REGION_FILTERS: &[&str] = &["endpoint", "region-name", "opt-in-status"];
const ZONE_FILTERS: &[&str] = &[
    "group-name",
    "message",
    "opt-in-status",
    "region-name",
    "state",
    "zone-id",
    "zone-name",
    "zone-type",
];
const ATTRIBUTES: &[&str] = &[
    "supported-platforms",
    "default-vpc",
    "max-instances",
    "vpc-max-security-groups-per-interface",
    "max-elastic-ips",
    "vpc-max-elastic-ips",
];

/// Variants are named after the EC2 actions they are.
#[allow(clippy::enum_variant_names)]
#[derive(Debug)]
pub enum Op {
    DescribeRegions {
        names: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeAvailabilityZones {
        names: Vec<String>,
        ids: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeAccountAttributes {
        names: Vec<String>,
    },
}

impl Op {
    pub fn parse(action: &str, p: &Params) -> Result<Option<Op>> {
        Ok(Some(match action {
            "DescribeRegions" => {
                p.bool("AllRegions")?;
                Op::DescribeRegions {
                    names: p.list("RegionName")?,
                    filters: p.filters(REGION_FILTERS, false)?,
                }
            }
            "DescribeAvailabilityZones" => {
                p.bool("AllAvailabilityZones")?;
                Op::DescribeAvailabilityZones {
                    names: p.list("ZoneName")?,
                    ids: p.list("ZoneId")?,
                    filters: p.filters(ZONE_FILTERS, false)?,
                }
            }
            "DescribeAccountAttributes" => {
                let names = p.list("AttributeName")?;
                if let Some(bad) = names.iter().find(|n| !ATTRIBUTES.contains(&n.as_str())) {
                    return Err(Ec2Error::invalid(format!(
                        "Value ({bad}) for parameter attributeName is invalid. Unknown attribute."
                    )));
                }
                Op::DescribeAccountAttributes { names }
            }
            _ => return Ok(None),
        }))
    }

    pub fn action(&self) -> &'static str {
        match self {
            Op::DescribeRegions { .. } => "DescribeRegions",
            Op::DescribeAvailabilityZones { .. } => "DescribeAvailabilityZones",
            Op::DescribeAccountAttributes { .. } => "DescribeAccountAttributes",
        }
    }

    pub async fn run(self, ctx: &Ctx<'_>) -> Result<Xml> {
        match self {
            Op::DescribeRegions { names, filters } => regions(ctx, names, filters),
            Op::DescribeAvailabilityZones {
                names,
                ids,
                filters,
            } => zones(ctx, names, ids, filters).await,
            Op::DescribeAccountAttributes { names } => attributes(ctx, names).await,
        }
    }
}

/// The endpoint's host, as EC2 names regions' endpoints.
fn endpoint(ctx: &Ctx<'_>) -> String {
    let url = &ctx.core.public_url;
    let host = url.split("://").nth(1).unwrap_or(url);
    host.split('/').next().unwrap_or(host).to_string()
}

fn regions(ctx: &Ctx<'_>, names: Vec<String>, filters: Vec<Filter>) -> Result<Xml> {
    let region = &ctx.core.region;
    if let Some(bad) = names.iter().find(|n| *n != region) {
        return Err(Ec2Error::invalid(format!(
            "Invalid region: {bad} (this cloud's region is {region})"
        )));
    }
    let endpoint = endpoint(ctx);
    let show = keep(&filters, &BTreeMap::new(), |f| match f {
        "endpoint" => vec![endpoint.clone()],
        "region-name" => vec![region.clone()],
        "opt-in-status" => vec!["opt-in-not-required".into()],
        _ => vec![],
    });
    let mut x = ctx.xml("DescribeRegions");
    x.items("regionInfo", show.then_some(()), |x, ()| {
        x.text("regionName", region)
            .text("regionEndpoint", &endpoint)
            .text("optInStatus", "opt-in-not-required");
    });
    Ok(x)
}

/// A zone's id, stable and derived from its name like EC2's `use1-az1`.
fn zone_id(region: &str, name: &str) -> String {
    let short: String = region.split('-').filter_map(|w| w.chars().next()).collect();
    let suffix = name.strip_prefix(region).unwrap_or(name);
    format!("{short}-az{}", suffix.trim_start_matches('-'))
}

async fn zones(
    ctx: &Ctx<'_>,
    names: Vec<String>,
    ids: Vec<String>,
    filters: Vec<Filter>,
) -> Result<Xml> {
    let zones = ctx.core.compute.availability_zones(ctx.principal).await?;
    let region = &ctx.core.region;
    for n in &names {
        if !zones.iter().any(|z| &z.name == n) {
            return Err(Ec2Error::invalid(format!(
                "The zone '{n}' does not exist in region {region}"
            )));
        }
    }
    for i in &ids {
        if !zones.iter().any(|z| &zone_id(region, &z.name) == i) {
            return Err(Ec2Error::invalid(format!(
                "The zone id '{i}' does not exist in region {region}"
            )));
        }
    }
    let mut x = ctx.xml("DescribeAvailabilityZones");
    let shown = zones.iter().filter(|z| {
        let id = zone_id(region, &z.name);
        (names.is_empty() || names.contains(&z.name))
            && (ids.is_empty() || ids.contains(&id))
            && keep(&filters, &BTreeMap::new(), |f| match f {
                "group-name" | "region-name" => vec![region.clone()],
                "opt-in-status" => vec!["opt-in-not-required".into()],
                "state" => vec![z.state.to_string()],
                "zone-id" => vec![id.clone()],
                "zone-name" => vec![z.name.clone()],
                "zone-type" => vec!["availability-zone".into()],
                _ => vec![],
            })
    });
    x.items("availabilityZoneInfo", shown, |x, z| {
        x.text("zoneName", &z.name)
            .text("zoneState", z.state)
            .text("regionName", region)
            .text("zoneId", &zone_id(region, &z.name))
            .text("groupName", region)
            .text("networkBorderGroup", region)
            .text("zoneType", "availability-zone")
            .text("optInStatus", "opt-in-not-required");
        x.items("messageSet", Vec::<()>::new(), |_, ()| {});
    });
    Ok(x)
}

async fn attributes(ctx: &Ctx<'_>, names: Vec<String>) -> Result<Xml> {
    let p = ctx.principal;
    let wanted = |n: &str| names.is_empty() || names.iter().any(|w| w == n);
    let mut values: Vec<(&str, Vec<String>)> = Vec::new();
    if wanted("supported-platforms") {
        values.push(("supported-platforms", vec!["VPC".into()]));
    }
    if wanted("default-vpc") {
        let vpc = ctx
            .core
            .network
            .list_networks(p, false)
            .await?
            .into_iter()
            .find(|n| n.is_default && n.project_id == p.project_id)
            .map_or_else(|| "none".to_string(), |n| n.id);
        values.push(("default-vpc", vec![vpc]));
    }
    let quota = |r: &'static str| ctx.core.identity.quota_limit(&p.project_id, r);
    if wanted("max-instances") {
        values.push(("max-instances", vec![quota("instances").await?.to_string()]));
    }
    if wanted("vpc-max-security-groups-per-interface") {
        values.push(("vpc-max-security-groups-per-interface", vec!["5".into()]));
    }
    for n in ["max-elastic-ips", "vpc-max-elastic-ips"] {
        if wanted(n) {
            values.push((n, vec![quota("floating_ips").await?.to_string()]));
        }
    }
    let mut x = ctx.xml("DescribeAccountAttributes");
    x.items("accountAttributeSet", values, |x, (name, vals)| {
        x.text("attributeName", name);
        x.items("attributeValueSet", vals, |x, v| {
            x.text("attributeValue", &v);
        });
    });
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_look_like_ec2s() {
        assert_eq!(zone_id("nuage-1", "nuage-1a"), "n1-aza");
        assert_eq!(zone_id("eu-west-1", "eu-west-1b"), "ew1-azb");
        assert_eq!(zone_id("r", "other"), "r-azother");
    }
}
