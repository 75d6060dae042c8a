//! Key pairs (EC2 key pairs, Nova keypairs), placement groups (Nova's server
//! groups) and instance types (Nova's flavors).
//!
//! A generated key's private half is returned once and never stored; only
//! the public key and its fingerprint are kept. Instances receive the
//! public key through their config drive.

use nuage_identity::policy::{authorize, Rule};
use nuage_model::identity::Principal;
use serde::Deserialize;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey};

use crate::error::Resource;
use crate::types::{KeyPair, PlacementGroup};
use crate::{now, repo, Compute, ComputeError, ComputeResult};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyPair {
    pub name: String,
    /// `rsa` (EC2's default) or `ed25519`, for generated keys.
    #[serde(default)]
    pub key_type: Option<String>,
    /// An OpenSSH public key to import instead of generating one.
    #[serde(default)]
    pub public_key: Option<String>,
}

fn check_name(what: &str, name: &str) -> ComputeResult<()> {
    if name.is_empty() || name.len() > 255 || name.chars().any(|c| c.is_control() || c == '/') {
        return Err(ComputeError::invalid(format!(
            "a {what} name is 1 to 255 characters, without '/' or control characters"
        )));
    }
    Ok(())
}

fn key_type_of(k: &PublicKey) -> String {
    match k.algorithm() {
        Algorithm::Ed25519 => "ed25519".into(),
        Algorithm::Rsa { .. } => "rsa".into(),
        other => other.as_str().to_string(),
    }
}

impl Compute {
    pub async fn create_key_pair(
        &self,
        caller: &Principal,
        new: NewKeyPair,
    ) -> ComputeResult<KeyPair> {
        authorize(
            caller,
            "compute:create_keypair",
            Rule::ProjectWrite(&caller.project_id),
        )?;
        check_name("key pair", &new.name)?;
        let (public, private) = match &new.public_key {
            Some(text) => {
                if new.key_type.is_some() {
                    return Err(ComputeError::invalid(
                        "key_type applies to generated keys; an imported key has its own",
                    ));
                }
                let k = PublicKey::from_openssh(text.trim()).map_err(|e| {
                    ComputeError::invalid(format!(
                        "the public key is not an OpenSSH public key: {e}"
                    ))
                })?;
                if !matches!(k.algorithm(), Algorithm::Ed25519 | Algorithm::Rsa { .. }) {
                    return Err(ComputeError::invalid(
                        "only ssh-ed25519 and ssh-rsa public keys can be imported",
                    ));
                }
                (k, None)
            }
            None => {
                let alg = match new.key_type.as_deref().unwrap_or("rsa") {
                    "rsa" => Algorithm::Rsa { hash: None },
                    "ed25519" => Algorithm::Ed25519,
                    other => {
                        return Err(ComputeError::invalid(format!(
                            "key type {other:?} is not rsa or ed25519"
                        )))
                    }
                };
                let private = tokio::task::spawn_blocking(move || {
                    let mut rng = rand::rngs::OsRng;
                    match alg {
                        Algorithm::Rsa { .. } => {
                            ssh_key::private::RsaKeypair::random(&mut rng, 2048)
                                .map(PrivateKey::from)
                        }
                        _ => PrivateKey::random(&mut rng, alg),
                    }
                })
                .await
                .map_err(|e| ComputeError::internal("generating the key", e))?
                .map_err(|e| ComputeError::internal("generating the key", e))?;
                let pem = private
                    .to_openssh(LineEnding::LF)
                    .map_err(|e| ComputeError::internal("encoding the key", e))?;
                (private.public_key().clone(), Some(pem.to_string()))
            }
        };
        let mut public = public;
        public.set_comment(&new.name);
        let kp = KeyPair {
            id: nuage_model::id::ec2("key"),
            name: new.name.clone(),
            key_type: key_type_of(&public),
            fingerprint: public.fingerprint(HashAlg::Sha256).to_string(),
            public_key: public
                .to_openssh()
                .map_err(|e| ComputeError::internal("encoding the key", e))?,
            created_at: crate::types::rfc3339(now()),
            private_key: None,
        };
        repo::insert_key(self.db().writer(), &caller.project_id, &kp, now())
            .await
            .map_err(|e| match e {
                nuage_store::StoreError::AlreadyExists { .. } => {
                    ComputeError::already_exists(Resource::KeyPair, &new.name)
                }
                other => other.into(),
            })?;
        Ok(KeyPair {
            private_key: private,
            ..kp
        })
    }

    pub async fn list_key_pairs(&self, caller: &Principal) -> ComputeResult<Vec<KeyPair>> {
        authorize(
            caller,
            "compute:list_keypairs",
            Rule::ProjectRead(&caller.project_id),
        )?;
        Ok(repo::list_keys(self.db().reader(), &caller.project_id).await?)
    }

    pub async fn get_key_pair(&self, caller: &Principal, name: &str) -> ComputeResult<KeyPair> {
        authorize(
            caller,
            "compute:get_keypair",
            Rule::ProjectRead(&caller.project_id),
        )?;
        repo::get_key(self.db().reader(), &caller.project_id, name)
            .await?
            .ok_or_else(|| ComputeError::not_found(Resource::KeyPair, name))
    }

    pub async fn delete_key_pair(&self, caller: &Principal, name: &str) -> ComputeResult<()> {
        authorize(
            caller,
            "compute:delete_keypair",
            Rule::ProjectWrite(&caller.project_id),
        )?;
        if !repo::delete_key(self.db().writer(), &caller.project_id, name).await? {
            return Err(ComputeError::not_found(Resource::KeyPair, name));
        }
        Ok(())
    }

    // ------------------------------------------------------ placement groups

    /// Creates a placement group: `cluster` keeps its instances on one node
    /// (affinity), `spread` puts each on a different node (anti-affinity).
    /// Its id is also its Nova server group id.
    pub async fn create_placement_group(
        &self,
        caller: &Principal,
        name: &str,
        strategy: &str,
    ) -> ComputeResult<PlacementGroup> {
        authorize(
            caller,
            "compute:create_placement_group",
            Rule::ProjectWrite(&caller.project_id),
        )?;
        check_name("placement group", name)?;
        if !matches!(strategy, "cluster" | "spread") {
            return Err(ComputeError::invalid(format!(
                "strategy {strategy:?} is not cluster or spread"
            )));
        }
        let g = PlacementGroup {
            id: nuage_model::id::ec2("pg"),
            name: name.into(),
            project_id: caller.project_id.clone(),
            user_id: Some(caller.user_id.clone()),
            strategy: strategy.into(),
            created_at: crate::types::rfc3339(now()),
        };
        repo::insert_group(self.db().writer(), &caller.project_id, &g, now())
            .await
            .map_err(|e| match e {
                nuage_store::StoreError::AlreadyExists { .. } => {
                    ComputeError::already_exists(Resource::PlacementGroup, name)
                }
                other => other.into(),
            })?;
        Ok(g)
    }

    /// The caller's project's placement groups.
    pub async fn list_placement_groups(
        &self,
        caller: &Principal,
    ) -> ComputeResult<Vec<PlacementGroup>> {
        authorize(
            caller,
            "compute:list_placement_groups",
            Rule::ProjectRead(&caller.project_id),
        )?;
        Ok(repo::list_groups(self.db().reader(), &caller.project_id).await?)
    }

    /// Every project's placement groups: admins only.
    pub async fn list_all_placement_groups(
        &self,
        caller: &Principal,
    ) -> ComputeResult<Vec<PlacementGroup>> {
        authorize(caller, "compute:list_all_placement_groups", Rule::Admin)?;
        Ok(repo::list_all_groups(self.db().reader()).await?)
    }

    /// A placement group by name (in the caller's project) or by id (any
    /// project's for admins): another project's group is not found.
    pub async fn get_placement_group(
        &self,
        caller: &Principal,
        id_or_name: &str,
    ) -> ComputeResult<PlacementGroup> {
        authorize(
            caller,
            "compute:get_placement_group",
            Rule::ProjectRead(&caller.project_id),
        )?;
        if let Some(g) = repo::get_group(self.db().reader(), &caller.project_id, id_or_name).await?
        {
            return Ok(g);
        }
        repo::get_group_by_id(self.db().reader(), id_or_name)
            .await?
            .filter(|g| g.project_id == caller.project_id || caller.is_admin())
            .ok_or_else(|| ComputeError::not_found(Resource::PlacementGroup, id_or_name))
    }

    /// The instances (not terminated) in a placement group.
    pub async fn placement_group_members(
        &self,
        caller: &Principal,
        group: &PlacementGroup,
    ) -> ComputeResult<Vec<String>> {
        authorize(
            caller,
            "compute:get_placement_group",
            Rule::ProjectRead(&group.project_id),
        )?;
        Ok(repo::group_members(self.db().reader(), &group.id).await?)
    }

    /// Deletes a placement group named by name or id; refused while it
    /// holds instances.
    pub async fn delete_placement_group(
        &self,
        caller: &Principal,
        id_or_name: &str,
    ) -> ComputeResult<()> {
        let g = self.get_placement_group(caller, id_or_name).await?;
        authorize(
            caller,
            "compute:delete_placement_group",
            Rule::ProjectWrite(&g.project_id),
        )?;
        if repo::instances_in_group(self.db().reader(), &g.id).await? > 0 {
            return Err(ComputeError::conflict(format!(
                "placement group {id_or_name} still has instances"
            )));
        }
        repo::delete_group(self.db().writer(), &g.project_id, &g.name).await?;
        Ok(())
    }

    // ---------------------------------------------------------- instance types

    /// The types the caller may see: public ones, private ones whose access
    /// list names its project, and every type for admins.
    pub async fn list_instance_types(
        &self,
        caller: &Principal,
    ) -> ComputeResult<Vec<crate::types::InstanceType>> {
        authorize(
            caller,
            "compute:list_flavors",
            Rule::ProjectRead(&caller.project_id),
        )?;
        let mut all = repo::list_types(self.db().reader()).await?;
        if !caller.is_admin() && all.iter().any(|t| !t.is_public) {
            let access = repo::type_access(self.db().reader()).await?;
            all.retain(|t| type_visible(caller, t, access.get(&t.name)));
        }
        Ok(all)
    }

    /// A type the caller may see (and so launch); a private type outside
    /// its access list is not found. Launches and resizes look types up
    /// here, so the access rule holds for every door.
    pub async fn get_instance_type(
        &self,
        caller: &Principal,
        name: &str,
    ) -> ComputeResult<crate::types::InstanceType> {
        authorize(
            caller,
            "compute:get_flavor",
            Rule::ProjectRead(&caller.project_id),
        )?;
        let t = repo::get_type(self.db().reader(), name)
            .await?
            .ok_or_else(|| ComputeError::not_found(Resource::InstanceType, name))?;
        if !t.is_public && !caller.is_admin() {
            let access = repo::type_access_of(self.db().reader(), name).await?;
            if !type_visible(caller, &t, Some(&access)) {
                return Err(ComputeError::not_found(Resource::InstanceType, name));
            }
        }
        Ok(t)
    }

    pub async fn create_instance_type(
        &self,
        caller: &Principal,
        t: crate::types::InstanceType,
    ) -> ComputeResult<crate::types::InstanceType> {
        authorize(caller, "compute:create_flavor", Rule::Admin)?;
        check_name("instance type", &t.name)?;
        if t.vcpus == 0 || t.vcpus > 1024 {
            return Err(ComputeError::invalid("vcpus must be 1 to 1024"));
        }
        if t.memory_mib < 16 {
            return Err(ComputeError::invalid("memory_mib must be at least 16"));
        }
        if t.pids_limit < 16 {
            return Err(ComputeError::invalid("pids_limit must be at least 16"));
        }
        if !(10..=1000).contains(&t.io_weight) {
            return Err(ComputeError::invalid("io_weight must be 10 to 1000"));
        }
        crate::instance_types::check_description(t.description.as_deref())?;
        crate::instance_types::check_specs(&t.extra_specs)?;
        let t = crate::types::InstanceType {
            builtin: false,
            ..t
        };
        repo::insert_type(self.db().writer(), &t, now(), false)
            .await
            .map_err(|e| match e {
                nuage_store::StoreError::AlreadyExists { .. } => {
                    ComputeError::already_exists(Resource::InstanceType, &t.name)
                }
                other => other.into(),
            })?;
        Ok(t)
    }

    /// Deletes a type and its access list (instances keep their sizes).
    pub async fn delete_instance_type(&self, caller: &Principal, name: &str) -> ComputeResult<()> {
        authorize(caller, "compute:delete_flavor", Rule::Admin)?;
        if !repo::delete_type(self.db().writer(), name).await? {
            return Err(ComputeError::not_found(Resource::InstanceType, name));
        }
        Ok(())
    }
}

/// May `caller` see a type with this access list?
fn type_visible(
    caller: &Principal,
    t: &crate::types::InstanceType,
    access: Option<&Vec<String>>,
) -> bool {
    t.is_public || caller.is_admin() || access.is_some_and(|a| a.contains(&caller.project_id))
}
