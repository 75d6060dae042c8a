//! What the instance metadata service tells an instance about itself. The
//! metadata service has identified the instance by its port (the network
//! its request arrived on and its source address), never by anything the
//! instance said, so this read takes no principal.

use crate::instances::HttpTokens;
use crate::types::Instance;
use crate::{repo, Compute, ComputeError, ComputeResult};

/// An instance as its metadata service shows it.
#[derive(Debug, Clone)]
pub struct InstanceMetadata {
    /// With its addresses filled in.
    pub instance: Instance,
    pub user_data: Option<Vec<u8>>,
    pub http_tokens: HttpTokens,
    /// The launch's key pair: (name, OpenSSH public key).
    pub public_key: Option<(String, String)>,
}

impl Compute {
    /// The metadata of instance `id`, or `None` if there is no such
    /// instance.
    pub async fn instance_metadata(&self, id: &str) -> ComputeResult<Option<InstanceMetadata>> {
        let Some(inst) = repo::get_instance(self.db().reader(), id).await? else {
            return Ok(None);
        };
        let Some((user_data, tokens)) = repo::metadata_extras(self.db().reader(), id).await? else {
            return Ok(None);
        };
        let http_tokens = HttpTokens::parse(&tokens).ok_or_else(|| {
            ComputeError::Internal(format!("instance {id}: unknown http_tokens {tokens:?}"))
        })?;
        let public_key = match &inst.key_name {
            Some(k) => repo::get_key(self.db().reader(), &inst.project_id, k)
                .await?
                .map(|kp| (kp.name, kp.public_key)),
            None => None,
        };
        let mut one = [inst];
        self.fill_addresses(&mut one).await?;
        let [instance] = one;
        Ok(Some(InstanceMetadata {
            instance,
            user_data,
            http_tokens,
            public_key,
        }))
    }
}
