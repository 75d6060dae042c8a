//! What admins change on an instance type after creating it: its
//! description, its extra specs (Nova's free key/value pairs) and, for a
//! private type, the projects that may see and launch it. Who may see a
//! type is decided in [`Compute::get_instance_type`] and
//! [`Compute::list_instance_types`], which every launch goes through.

use std::collections::BTreeMap;

use nuage_identity::policy::{authorize, Rule};
use nuage_model::identity::Principal;

use crate::error::Resource;
use crate::types::InstanceType;
use crate::{now, repo, Compute, ComputeError, ComputeResult};

/// Most extra specs on one type (Nova's metadata_items default).
pub const MAX_EXTRA_SPECS: usize = 128;

/// A description is at most 65,535 characters, printable, as Nova's.
pub(crate) fn check_description(d: Option<&str>) -> ComputeResult<()> {
    if let Some(d) = d {
        if d.chars().count() > 65535 || d.chars().any(|c| c.is_control() && c != '\n') {
            return Err(ComputeError::invalid(
                "a flavor description is at most 65535 printable characters",
            ));
        }
    }
    Ok(())
}

/// Keys are 1 to 255 of `A-Za-z0-9 _-:.`, values at most 255 characters,
/// as Nova's schema checks them.
pub(crate) fn check_specs(specs: &BTreeMap<String, String>) -> ComputeResult<()> {
    if specs.len() > MAX_EXTRA_SPECS {
        return Err(ComputeError::invalid(format!(
            "a flavor has at most {MAX_EXTRA_SPECS} extra specs"
        )));
    }
    for (k, v) in specs {
        let key_ok = !k.is_empty()
            && k.len() <= 255
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || " _-:.".contains(c));
        if !key_ok {
            return Err(ComputeError::invalid(format!(
                "extra spec key {k:?} must be 1 to 255 of letters, digits, space, '_', '-', ':' and '.'"
            )));
        }
        if v.chars().count() > 255 {
            return Err(ComputeError::invalid(format!(
                "extra spec {k} is longer than 255 characters"
            )));
        }
    }
    Ok(())
}

impl Compute {
    /// The type, for an admin's change: admins see every type.
    async fn type_for_change(
        &self,
        caller: &Principal,
        name: &str,
        action: &str,
    ) -> ComputeResult<InstanceType> {
        authorize(caller, action, Rule::Admin)?;
        repo::get_type(self.db().reader(), name)
            .await?
            .ok_or_else(|| ComputeError::not_found(Resource::InstanceType, name))
    }

    /// Sets a type's description (None clears it).
    pub async fn set_instance_type_description(
        &self,
        caller: &Principal,
        name: &str,
        description: Option<String>,
    ) -> ComputeResult<InstanceType> {
        let mut t = self
            .type_for_change(caller, name, "compute:update_flavor")
            .await?;
        check_description(description.as_deref())?;
        t.description = description;
        let specs = t.extra_specs.clone();
        self.write_extras(&t, &specs).await?;
        Ok(t)
    }

    /// Adds or replaces extra specs (merged into the type's); all or none.
    pub async fn set_extra_specs(
        &self,
        caller: &Principal,
        name: &str,
        specs: BTreeMap<String, String>,
    ) -> ComputeResult<InstanceType> {
        self.type_for_change(caller, name, "compute:update_flavor_extra_specs")
            .await?;
        check_specs(&specs)?;
        let mut t = repo::get_type(self.db().reader(), name)
            .await?
            .ok_or_else(|| ComputeError::not_found(Resource::InstanceType, name))?;
        let before = t.extra_specs.clone();
        t.extra_specs.extend(specs);
        check_specs(&t.extra_specs)?;
        self.write_extras(&t, &before).await?;
        Ok(t)
    }

    /// Removes one extra spec; not found if the type has no such key.
    pub async fn unset_extra_spec(
        &self,
        caller: &Principal,
        name: &str,
        key: &str,
    ) -> ComputeResult<()> {
        self.type_for_change(caller, name, "compute:update_flavor_extra_specs")
            .await?;
        let mut t = repo::get_type(self.db().reader(), name)
            .await?
            .ok_or_else(|| ComputeError::not_found(Resource::InstanceType, name))?;
        let before = t.extra_specs.clone();
        if t.extra_specs.remove(key).is_none() {
            return Err(ComputeError::not_found(
                Resource::ExtraSpec,
                format!("{name}/{key}"),
            ));
        }
        self.write_extras(&t, &before).await
    }

    /// Writes a type's description and extra specs unless its extra specs
    /// changed since they were read as `before`, or it was deleted: the
    /// caller reads again and retries (409).
    async fn write_extras(
        &self,
        t: &InstanceType,
        before: &BTreeMap<String, String>,
    ) -> ComputeResult<()> {
        if !repo::update_type_extras(self.db().writer(), t, before).await? {
            return Err(ComputeError::conflict(format!(
                "instance type {} changed meanwhile; read it again and retry",
                t.name
            )));
        }
        Ok(())
    }

    /// The projects that may use a private type (admins only; a public
    /// type has no list).
    pub async fn instance_type_access(
        &self,
        caller: &Principal,
        name: &str,
    ) -> ComputeResult<Vec<String>> {
        let t = self
            .type_for_change(caller, name, "compute:list_flavor_access")
            .await?;
        if t.is_public {
            return Err(ComputeError::invalid(format!(
                "instance type {name} is public: it has no access list"
            )));
        }
        Ok(repo::type_access_of(self.db().reader(), name).await?)
    }

    /// Lets a project see and launch a private type.
    pub async fn add_instance_type_access(
        &self,
        caller: &Principal,
        name: &str,
        project: &str,
    ) -> ComputeResult<Vec<String>> {
        let t = self
            .type_for_change(caller, name, "compute:add_flavor_access")
            .await?;
        if t.is_public {
            return Err(ComputeError::conflict(format!(
                "instance type {name} is public: access lists are for private types"
            )));
        }
        let p = self
            .inner
            .identity
            .find_project(project, None)
            .await?
            .ok_or_else(|| ComputeError::not_found(Resource::Project, project))?;
        repo::add_type_access(self.db().writer(), name, &p.id, now())
            .await
            .map_err(|e| match e {
                nuage_store::StoreError::AlreadyExists { .. } => ComputeError::conflict(format!(
                    "project {} already has access to instance type {name}",
                    p.id
                )),
                other => other.into(),
            })?;
        Ok(repo::type_access_of(self.db().reader(), name).await?)
    }

    /// Takes a project off a private type's access list.
    pub async fn remove_instance_type_access(
        &self,
        caller: &Principal,
        name: &str,
        project: &str,
    ) -> ComputeResult<Vec<String>> {
        self.type_for_change(caller, name, "compute:remove_flavor_access")
            .await?;
        let pid = match self.inner.identity.find_project(project, None).await? {
            Some(p) => p.id,
            None => project.to_string(),
        };
        if !repo::remove_type_access(self.db().writer(), name, &pid).await? {
            return Err(ComputeError::not_found(
                Resource::FlavorAccess,
                format!("{name}/{project}"),
            ));
        }
        Ok(repo::type_access_of(self.db().reader(), name).await?)
    }
}
