//! What a project uses of its compute quotas, for the front doors that
//! show usage beside the limits (Nova's `limits` and `os-quota-sets`
//! detail; the same numbers the quota check at launch counts).

use nuage_identity::policy::{authorize, Rule};
use nuage_model::identity::Principal;

use crate::{repo, Compute, ComputeResult};

/// A project's compute usage: instances not terminated and their sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub instances: i64,
    pub cores: i64,
    pub ram_mib: i64,
    pub key_pairs: i64,
}

impl Compute {
    /// The usage of `project_id` (the caller's own, or any for an admin).
    pub async fn usage(&self, caller: &Principal, project_id: &str) -> ComputeResult<Usage> {
        authorize(caller, "compute:get_usage", Rule::ProjectRead(project_id))?;
        let (instances, cores, ram_mib) =
            repo::project_usage(self.db().reader(), project_id).await?;
        let key_pairs = repo::count_keys(self.db().reader(), project_id).await?;
        Ok(Usage {
            instances,
            cores,
            ram_mib,
            key_pairs,
        })
    }
}
