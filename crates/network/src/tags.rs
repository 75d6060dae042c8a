//! Tags (EC2's key/value pairs) on networks, subnets, security groups,
//! floating IPs, routers and ports: one table for all of them, keyed by
//! the resource's id, whose prefix says its kind. Writing tags is a write
//! on the resource (the same ownership check as changing it); a resource
//! holds at most [`MAX_TAGS`], as on EC2.

use std::collections::BTreeMap;

use nuage_identity::policy::{authorize, Rule};
use nuage_model::identity::Principal;
use nuage_store::sqlx::AnyConnection;

use crate::types::prefix;
use crate::{must_write, repo, NetworkError, NetworkResult, NetworkService, Resource};

/// Tags one resource holds at most (EC2's limit).
pub const MAX_TAGS: i64 = 50;

/// The resource kind an id names, by its prefix.
pub fn kind_of(id: &str) -> Option<Resource> {
    let (p, rest) = id.split_once('-')?;
    if rest.is_empty() {
        return None;
    }
    Some(match p {
        prefix::NETWORK => Resource::Network,
        prefix::SUBNET => Resource::Subnet,
        prefix::SECURITY_GROUP => Resource::SecurityGroup,
        prefix::FLOATING_IP => Resource::FloatingIp,
        prefix::ROUTER => Resource::Router,
        prefix::PORT => Resource::Port,
        _ => return None,
    })
}

impl NetworkService {
    /// The project owning the resource `id` names, once the caller may
    /// see it (another project's answers "not found", as its reads do).
    async fn tag_owner(
        &self,
        c: &mut AnyConnection,
        caller: &Principal,
        id: &str,
    ) -> NetworkResult<String> {
        let kind = kind_of(id).ok_or_else(|| {
            NetworkError::invalid(format!("{id:?} is not the id of a network resource"))
        })?;
        Ok(match kind {
            Resource::Network => self.visible_network(c, caller, id).await?.project_id,
            Resource::Subnet => {
                let s = repo::get_subnet(c, id)
                    .await?
                    .ok_or_else(|| NetworkError::not_found(Resource::Subnet, id))?;
                self.visible_network(c, caller, &s.network_id)
                    .await
                    .map_err(|_| NetworkError::not_found(Resource::Subnet, id))?;
                s.project_id
            }
            Resource::SecurityGroup => self.visible_group(c, caller, id).await?.project_id,
            Resource::FloatingIp => self.visible_fip(c, caller, id).await?.project_id,
            Resource::Router => self.visible_router(c, caller, id).await?.project_id,
            Resource::Port => self.visible_port(c, caller, id).await?.project_id,
            // Never given by `kind_of`: rules carry no tags of their own here.
            Resource::SecurityGroupRule => {
                return Err(NetworkError::invalid(format!(
                    "{id:?} is not the id of a taggable network resource"
                )))
            }
        })
    }

    /// Removes then sets tags on the resource `id` (EC2's DeleteTags and
    /// CreateTags): `remove` pairs with a value remove the tag only while
    /// it holds that value. At most [`MAX_TAGS`] remain, or nothing changes.
    /// With nothing to set or remove it only checks, writing nothing.
    pub async fn set_tags(
        &self,
        caller: &Principal,
        id: &str,
        set: &BTreeMap<String, String>,
        remove: &[(String, Option<String>)],
    ) -> NetworkResult<()> {
        for (k, v) in set {
            check_tag(k, v)?;
        }
        let mut tx = self.begin().await?;
        let project = self.tag_owner(&mut tx, caller, id).await?;
        must_write(caller, "network:tag_resource", &project)?;
        if set.is_empty() && remove.is_empty() {
            // Nothing to change: the resource exists and is the caller's;
            // the transaction is dropped unwritten.
            return Ok(());
        }
        for (k, v) in remove {
            repo::remove_tag(&mut tx, id, k, v.as_deref()).await?;
        }
        for (k, v) in set {
            repo::put_tag(&mut tx, id, &project, k, v).await?;
        }
        if repo::count_tags(&mut tx, id).await? > MAX_TAGS {
            return Err(NetworkError::LimitExceeded {
                what: "tags on a resource",
                limit: MAX_TAGS,
            });
        }
        self.commit(tx).await?;
        tracing::info!(resource = %id, set = set.len(), removed = remove.len(), "tags changed");
        Ok(())
    }

    /// Every tag of the caller's project's network resources, by resource
    /// id: one query, for describe output to join.
    pub async fn tags(
        &self,
        caller: &Principal,
    ) -> NetworkResult<BTreeMap<String, BTreeMap<String, String>>> {
        authorize(
            caller,
            "network:list_tags",
            Rule::ProjectRead(&caller.project_id),
        )?;
        let mut c = self.reader().await?;
        let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (r, k, v) in repo::project_tags(&mut c, &caller.project_id).await? {
            out.entry(r).or_default().insert(k, v);
        }
        Ok(out)
    }
}

/// A key of 1 to 128 characters and a value of at most 256, as EC2's.
fn check_tag(key: &str, value: &str) -> NetworkResult<()> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(NetworkError::invalid(format!(
            "a tag key is 1 to 128 characters: {key:?}"
        )));
    }
    if value.chars().count() > 256 {
        return Err(NetworkError::invalid(format!(
            "the value of tag {key:?} is longer than 256 characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_prefixes() {
        assert_eq!(kind_of("vpc-0abc"), Some(Resource::Network));
        assert_eq!(kind_of("subnet-1"), Some(Resource::Subnet));
        assert_eq!(kind_of("sg-1"), Some(Resource::SecurityGroup));
        assert_eq!(kind_of("eipalloc-1"), Some(Resource::FloatingIp));
        assert_eq!(kind_of("rtr-1"), Some(Resource::Router));
        assert_eq!(kind_of("eni-1"), Some(Resource::Port));
        assert_eq!(kind_of("i-1"), None);
        assert_eq!(kind_of("sg-"), None);
        assert_eq!(kind_of("vpc"), None);
    }
}
