//! Identity for the whole cloud, after OpenStack Keystone v3.
//!
//! Holds domains, projects, users, groups, roles and role assignments; issues,
//! validates and revokes tokens; keeps EC2-style access keys and verifies AWS
//! Signature Version 4 ([`sigv4`]); and owns the one policy check
//! ([`policy::authorize`]) that every core service calls with the caller's
//! [`Principal`](nuage_model::identity::Principal). Per-project quotas are
//! stored here too, since they belong to the project; each service enforces
//! its own.
//!
//! This crate never speaks HTTP: front doors turn their dialect's credentials
//! into calls on [`Identity`] and render its errors.

mod cache;
mod error;
pub mod hasher;
pub mod password;
pub mod policy;
mod repo;
mod service;
pub mod sigv4;
pub mod throttle;
pub mod token;

pub use error::{secs, IdentityError, IdentityResult};
pub use service::{
    AssignmentFilter, Bootstrap, BootstrapOutcome, Identity, IdentityConfig, Login, NewProject,
    NewUser, ProjectPatch, Ref, UserPatch,
};
