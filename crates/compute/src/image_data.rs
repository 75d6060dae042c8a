//! Reading an image's data back (Glance's `GET /v2/images/{id}/file`).

use crate::types::Image;
use crate::{Compute, ComputeError, ComputeResult};
use nuage_model::identity::Principal;

impl Compute {
    /// The image's stored data, opened, if the caller may see the image
    /// and it has data (`active`; `deactivated` for admins only). The file is opened under the collector's
    /// read lock, so a concurrent deletion cannot remove it first; once
    /// open, it reads to the end even if the image is deleted meanwhile.
    pub async fn open_image_data(
        &self,
        caller: &Principal,
        id: &str,
    ) -> ComputeResult<(Image, tokio::fs::File)> {
        let image = self.get_image(caller, id).await?;
        if image.status == "deactivated" && !caller.is_admin() {
            return Err(ComputeError::Identity(
                nuage_identity::IdentityError::Forbidden {
                    action: "image:download_image".into(),
                    reason: format!(
                        "image {} is deactivated: only admins may download its data",
                        image.id
                    ),
                },
            ));
        }
        let Some(sha) = image
            .sha256
            .clone()
            .filter(|_| matches!(image.status.as_str(), "active" | "deactivated"))
        else {
            return Err(ComputeError::conflict(format!(
                "image {} has no data (it is {})",
                image.id, image.status
            )));
        };
        let _guard = self.inner.blob_gc.read().await;
        let path = self.inner.images.blob_path(&sha);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| ComputeError::internal("opening image data", e))?;
        Ok((image, file))
    }
}
