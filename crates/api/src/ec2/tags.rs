//! CreateTags, DeleteTags and DescribeTags: one EC2 surface over the tags
//! each service keeps on its own resources (instances in compute;
//! networks, subnets, groups, addresses, routers and ports in network).
//! The id's prefix says which service owns a resource.

use std::collections::BTreeMap;

use super::error::{Ec2Error, Result};
use super::ops::Ctx;
use super::params::{keep, Filter, Params};
use super::xml::Xml;

pub const ACTIONS: &[&str] = &["CreateTags", "DeleteTags", "DescribeTags"];

const FILTERS: &[&str] = &["key", "value", "resource-id", "resource-type"];

/// Variants are named after the EC2 actions they are.
#[allow(clippy::enum_variant_names)]
#[derive(Debug)]
pub enum Op {
    CreateTags {
        ids: Vec<String>,
        tags: BTreeMap<String, String>,
    },
    DeleteTags {
        ids: Vec<String>,
        remove: Vec<(String, Option<String>)>,
    },
    DescribeTags {
        filters: Vec<Filter>,
        max: Option<usize>,
        token: Option<String>,
    },
}

/// EC2's resource type for an id, by its prefix.
fn resource_type(id: &str) -> Option<&'static str> {
    let (p, rest) = id.split_once('-')?;
    if rest.is_empty() {
        return None;
    }
    Some(match p {
        "i" => "instance",
        "vpc" => "vpc",
        "subnet" => "subnet",
        "sg" => "security-group",
        "eipalloc" => "elastic-ip",
        "eni" => "network-interface",
        "rtr" | "rtb" => "route-table",
        "igw" => "internet-gateway",
        _ => return None,
    })
}

fn resource_ids(p: &Params) -> Result<Vec<String>> {
    let ids = p.list("ResourceId")?;
    if ids.is_empty() {
        return Err(Ec2Error::missing("ResourceId"));
    }
    for id in &ids {
        if resource_type(id).is_none() {
            return Err(Ec2Error::new(
                400,
                "InvalidID",
                format!("The ID '{id}' is not valid"),
            ));
        }
    }
    Ok(ids)
}

impl Op {
    pub fn parse(action: &str, p: &Params) -> Result<Option<Op>> {
        Ok(Some(match action {
            "CreateTags" => {
                let ids = resource_ids(p)?;
                let list = p.tags("Tag")?;
                if list.is_empty() {
                    return Err(Ec2Error::missing("Tag"));
                }
                Op::CreateTags {
                    ids,
                    tags: list.into_iter().map(|t| (t.key, t.value)).collect(),
                }
            }
            "DeleteTags" => {
                let ids = resource_ids(p)?;
                let mut remove = Vec::new();
                for i in p.indices("Tag")? {
                    let key = p.req(&format!("Tag.{i}.Key"))?.to_string();
                    let value = p.opt(&format!("Tag.{i}.Value")).map(str::to_string);
                    remove.push((key, value));
                }
                Op::DeleteTags { ids, remove }
            }
            "DescribeTags" => {
                let (max, token) = p.page(5, 1000)?;
                Op::DescribeTags {
                    filters: p.filters(FILTERS, false)?,
                    max,
                    token,
                }
            }
            _ => return Ok(None),
        }))
    }

    pub fn action(&self) -> &'static str {
        match self {
            Op::CreateTags { .. } => "CreateTags",
            Op::DeleteTags { .. } => "DeleteTags",
            Op::DescribeTags { .. } => "DescribeTags",
        }
    }

    pub async fn run(self, ctx: &Ctx<'_>) -> Result<Xml> {
        match self {
            Op::CreateTags { ids, tags } => {
                change(ctx, &ids, &tags, &[]).await?;
                let mut x = ctx.xml("CreateTags");
                x.bool("return", true);
                Ok(x)
            }
            Op::DeleteTags { ids, remove } => {
                // No tag named: every tag of the resources goes.
                let remove = if remove.is_empty() {
                    all_keys(ctx, &ids).await?
                } else {
                    remove
                };
                change(ctx, &ids, &BTreeMap::new(), &remove).await?;
                let mut x = ctx.xml("DeleteTags");
                x.bool("return", true);
                Ok(x)
            }
            Op::DescribeTags {
                filters,
                max,
                token,
            } => describe(ctx, filters, max, token).await,
        }
    }
}

/// Applies a change to every resource, once all of them are known to
/// exist and be the caller's to change: an unknown id changes nothing.
async fn change(
    ctx: &Ctx<'_>,
    ids: &[String],
    set: &BTreeMap<String, String>,
    remove: &[(String, Option<String>)],
) -> Result<()> {
    let (none_set, none_remove) = (BTreeMap::new(), Vec::new());
    // First a check of each (an empty change: existence and ownership,
    // nothing written), then the change.
    for (s, r) in [(&none_set, &none_remove[..]), (set, remove)] {
        for id in ids {
            if id.starts_with("i-") {
                ctx.core
                    .compute
                    .set_instance_tags(ctx.principal, id, s, r)
                    .await?;
            } else {
                ctx.core.network.set_tags(ctx.principal, id, s, r).await?;
            }
        }
    }
    Ok(())
}

/// Every key of the resources' tags, for a DeleteTags that names none.
async fn all_keys(ctx: &Ctx<'_>, ids: &[String]) -> Result<Vec<(String, Option<String>)>> {
    let all = every_tag(ctx).await?;
    let mut keys: Vec<(String, Option<String>)> = all
        .iter()
        .filter(|(id, _, _, _)| ids.contains(id))
        .map(|(_, _, k, _)| (k.clone(), None))
        .collect();
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// (resource id, resource type, key, value) of every tag of the project,
/// sorted by resource then key.
async fn every_tag(ctx: &Ctx<'_>) -> Result<Vec<(String, &'static str, String, String)>> {
    let mut out = Vec::new();
    for (id, tags) in ctx.core.compute.instance_tags(ctx.principal).await? {
        for (k, v) in tags {
            out.push((id.clone(), "instance", k, v));
        }
    }
    for (id, tags) in ctx.core.network.tags(ctx.principal).await? {
        let Some(t) = resource_type(&id) else {
            continue;
        };
        for (k, v) in tags {
            out.push((id.clone(), t, k, v));
        }
    }
    out.sort();
    Ok(out)
}

async fn describe(
    ctx: &Ctx<'_>,
    filters: Vec<Filter>,
    max: Option<usize>,
    token: Option<String>,
) -> Result<Xml> {
    let mut all: Vec<_> = every_tag(ctx)
        .await?
        .into_iter()
        .filter(|(id, t, k, v)| {
            keep(&filters, &BTreeMap::new(), |f| match f {
                "key" => vec![k.clone()],
                "value" => vec![v.clone()],
                "resource-id" => vec![id.clone()],
                "resource-type" => vec![t.to_string()],
                _ => vec![],
            })
        })
        .collect();
    let cursor = |id: &str, k: &str| hex::encode(format!("{id}\u{0}{k}"));
    if let Some(t) = &token {
        let after = hex::decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Ec2Error::invalid(format!("The token '{t}' is invalid")))?;
        all.retain(|(id, _, k, _)| format!("{id}\u{0}{k}") > after);
    }
    let mut next = None;
    if let Some(n) = max {
        if all.len() > n {
            all.truncate(n);
            next = all.last().map(|(id, _, k, _)| cursor(id, k));
        }
    }
    let mut x = ctx.xml("DescribeTags");
    x.items("tagSet", all, |x, (id, t, k, v)| {
        x.text("resourceId", &id)
            .text("resourceType", t)
            .text("key", &k)
            .text("value", &v);
    });
    x.opt("nextToken", next.as_deref());
    Ok(x)
}
