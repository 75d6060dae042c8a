//! Keystone v3 (being written)
use axum::Router;
use crate::SharedCore;
pub fn router(core: SharedCore) -> Router { Router::new().with_state(core) }
