//! Names and descriptions (Neutron's `PUT` of `name` or `description`;
//! EC2 has no such call). They are the API's labels only: the data plane
//! never reads them, so a change bumps no generation and wakes no
//! reconciler.

use std::collections::BTreeMap;

use nuage_identity::policy::{authorize, Rule};
use nuage_model::identity::Principal;
use nuage_store::sqlx::AnyConnection;

use crate::types::DEFAULT_NAME;
use crate::{check_name, must_write, repo, NetworkError, NetworkResult, NetworkService, Resource};

/// A description as the API takes it: at most 255 characters, no control
/// ones (Neutron's limit). Front doors check it before they create, so a
/// bad one makes nothing.
pub fn check_description(text: &str) -> NetworkResult<()> {
    if text.chars().count() > 255 || text.chars().any(char::is_control) {
        return Err(NetworkError::invalid(
            "a description is at most 255 characters, without control characters",
        ));
    }
    Ok(())
}

impl NetworkService {
    /// The project owning the labelled resource `id` of `kind`, once the
    /// caller may see it (another project's answers "not found").
    async fn label_owner(
        &self,
        c: &mut AnyConnection,
        caller: &Principal,
        kind: Resource,
        id: &str,
    ) -> NetworkResult<String> {
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
            Resource::Port => self.visible_port(c, caller, id).await?.project_id,
            Resource::Router => self.visible_router(c, caller, id).await?.project_id,
            Resource::SecurityGroup => self.visible_group(c, caller, id).await?.project_id,
            Resource::FloatingIp => self.visible_fip(c, caller, id).await?.project_id,
            Resource::SecurityGroupRule => {
                return Err(NetworkError::invalid(format!(
                    "a {} has no label to change",
                    kind.noun()
                )))
            }
        })
    }

    /// Gives the resource `id` (of `kind`) a new name, once the caller may
    /// see it and change it. A security group keeps the rules of EC2's
    /// names: unique in its project, and `default` is the project's own
    /// group, neither renamed nor taken. Floating IPs have no name.
    pub async fn rename(
        &self,
        caller: &Principal,
        kind: Resource,
        id: &str,
        name: &str,
    ) -> NetworkResult<()> {
        check_name(&format!("a {}'s name", kind.noun()), name)?;
        if kind == Resource::FloatingIp {
            return Err(NetworkError::invalid("a floating IP has no name"));
        }
        let mut tx = self.begin().await?;
        let project = self.label_owner(&mut tx, caller, kind, id).await?;
        let name = if kind == Resource::SecurityGroup {
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
            name
        } else {
            name
        };
        must_write(caller, "network:rename", &project)?;
        if !repo::set_label(&mut tx, kind, id, "name", name, crate::now()).await? {
            return Err(NetworkError::AlreadyExists {
                kind,
                name: name.to_string(),
            });
        }
        self.commit(tx).await?;
        tracing::info!(resource = %id, "renamed");
        Ok(())
    }

    /// Sets the description of the resource `id` (of `kind`).
    pub async fn set_description(
        &self,
        caller: &Principal,
        kind: Resource,
        id: &str,
        text: &str,
    ) -> NetworkResult<()> {
        check_description(text)?;
        let mut tx = self.begin().await?;
        let project = self.label_owner(&mut tx, caller, kind, id).await?;
        must_write(caller, "network:describe", &project)?;
        repo::set_label(&mut tx, kind, id, "description", text, crate::now()).await?;
        self.commit(tx).await?;
        Ok(())
    }

    /// The non-empty descriptions of the caller's project's networks,
    /// subnets, ports, routers and floating IPs (every project's for an
    /// admin asking for `all_projects`), by id: one query, for views to
    /// join. Security groups carry theirs in their rows.
    pub async fn descriptions(
        &self,
        caller: &Principal,
        all_projects: bool,
    ) -> NetworkResult<BTreeMap<String, String>> {
        authorize(
            caller,
            "network:list_descriptions",
            Rule::ProjectRead(&caller.project_id),
        )?;
        let scope = if all_projects {
            authorize(caller, "network:list_all_descriptions", Rule::Admin)?;
            None
        } else {
            Some(caller.project_id.as_str())
        };
        let mut c = self.reader().await?;
        Ok(repo::descriptions(&mut c, scope)
            .await?
            .into_iter()
            .collect())
    }
}
