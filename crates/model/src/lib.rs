//! Resource types, identifiers and error kinds shared by every nuage crate.
//!
//! This crate holds plain data and no I/O, so that front doors, core services,
//! the store and the drivers can all speak about the same things without
//! depending on each other. It must never grow a dependency on tokio, sqlx or
//! HTTP.

pub mod error;
pub mod filter;
pub mod id;
pub mod identity;

pub use error::{ErrorKind, HasKind};
