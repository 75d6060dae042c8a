//! Renaming a resource (Neutron's `PUT` of a `name`; EC2 has no such
//! call). A name is the API's label only: the data plane never reads it,
//! so a rename bumps no generation and wakes no reconciler.

use nuage_model::identity::Principal;

use crate::types::DEFAULT_NAME;
use crate::{check_name, must_write, repo, NetworkError, NetworkResult, NetworkService, Resource};

impl NetworkService {
    /// Gives the resource `id` (of `kind`) a new name, once the caller may
    /// see it (another project's answers "not found") and change it. A
    /// security group keeps the rules of EC2's names: unique in its
    /// project, and `default` is the project's own group, neither renamed
    /// nor taken.
    pub async fn rename(
        &self,
        caller: &Principal,
        kind: Resource,
        id: &str,
        name: &str,
    ) -> NetworkResult<()> {
        check_name(&format!("a {}'s name", kind.noun()), name)?;
        let mut tx = self.begin().await?;
        let project = match kind {
            Resource::Network => self.visible_network(&mut tx, caller, id).await?.project_id,
            Resource::Subnet => {
                let s = repo::get_subnet(&mut tx, id)
                    .await?
                    .ok_or_else(|| NetworkError::not_found(Resource::Subnet, id))?;
                self.visible_network(&mut tx, caller, &s.network_id)
                    .await
                    .map_err(|_| NetworkError::not_found(Resource::Subnet, id))?;
                s.project_id
            }
            Resource::Port => self.visible_port(&mut tx, caller, id).await?.project_id,
            Resource::Router => self.visible_router(&mut tx, caller, id).await?.project_id,
            Resource::SecurityGroup => {
                let g = self.visible_group(&mut tx, caller, id).await?;
                let name = name.trim();
                if g.name != name && (g.name == DEFAULT_NAME || name == DEFAULT_NAME) {
                    return Err(NetworkError::invalid(
                        "the name default belongs to the project's default security group: it is neither renamed nor taken",
                    ));
                }
                if name.is_empty() {
                    return Err(NetworkError::invalid("a security group needs a name"));
                }
                g.project_id
            }
            Resource::SecurityGroupRule | Resource::FloatingIp => {
                return Err(NetworkError::invalid(format!(
                    "a {} has no name",
                    kind.noun()
                )))
            }
        };
        must_write(caller, "network:rename", &project)?;
        let name = if kind == Resource::SecurityGroup {
            name.trim()
        } else {
            name
        };
        if !repo::set_name(&mut tx, kind, id, name, crate::now()).await? {
            return Err(NetworkError::AlreadyExists {
                kind,
                name: name.to_string(),
            });
        }
        self.commit(tx).await?;
        tracing::info!(resource = %id, "renamed");
        Ok(())
    }
}
