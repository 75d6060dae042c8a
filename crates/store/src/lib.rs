//! nuage's state store: the desired state of the whole cloud.
//!
//! One schema, two engines: SQLite in WAL mode, embedded, for the all-in-one
//! cloud, and PostgreSQL for several controllers. Both are reached through
//! sqlx's `Any` driver so that every query is written once; the few places
//! where the dialects differ (column types in migrations) are handled here and
//! nowhere else. Services own their SQL (in their own crate) but always go
//! through [`Db`], which gives them the right pool, transactions and error
//! mapping. This crate knows nothing about HTTP or about any one service's
//! rules.
//!
//! Concurrency: every mutable row carries a `version`; an update names the
//! version it read and fails with [`StoreError::Conflict`] when the row moved
//! on, so two concurrent updates never silently overwrite each other.

mod db;
mod error;
mod migrations;
pub mod testing;

pub use db::{now_ms, Db, Dialect, Tx, TxLock};
pub use error::{StoreError, StoreResult};
pub use sqlx;
