//! Key pairs (EC2 key pairs, Nova keypairs) and placement groups.
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

    pub async fn delete_placement_group(
        &self,
        caller: &Principal,
        name: &str,
    ) -> ComputeResult<()> {
        authorize(
            caller,
            "compute:delete_placement_group",
            Rule::ProjectWrite(&caller.project_id),
        )?;
        let g = repo::get_group(self.db().reader(), &caller.project_id, name)
            .await?
            .ok_or_else(|| ComputeError::not_found(Resource::PlacementGroup, name))?;
        if repo::instances_in_group(self.db().reader(), &g.id).await? > 0 {
            return Err(ComputeError::conflict(format!(
                "placement group {name} still has instances"
            )));
        }
        repo::delete_group(self.db().writer(), &caller.project_id, name).await?;
        Ok(())
    }

    // ---------------------------------------------------------- instance types

    pub async fn list_instance_types(
        &self,
        caller: &Principal,
    ) -> ComputeResult<Vec<crate::types::InstanceType>> {
        authorize(
            caller,
            "compute:list_flavors",
            Rule::ProjectRead(&caller.project_id),
        )?;
        Ok(repo::list_types(self.db().reader()).await?)
    }

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
        repo::get_type(self.db().reader(), name)
            .await?
            .ok_or_else(|| ComputeError::not_found(Resource::InstanceType, name))
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

    pub async fn delete_instance_type(&self, caller: &Principal, name: &str) -> ComputeResult<()> {
        authorize(caller, "compute:delete_flavor", Rule::Admin)?;
        if !repo::delete_type(self.db().writer(), name).await? {
            return Err(ComputeError::not_found(Resource::InstanceType, name));
        }
        Ok(())
    }
}
