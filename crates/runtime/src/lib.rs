//! nuage's reconcile runtime: the one loop that drives every resource kind.
//!
//! nuage keeps the desired state in the store and makes the world follow it
//! with level-triggered, idempotent reconcilers. This crate holds the
//! machinery they share, after kube-rs's `runtime`: a [`Controller`] runs a
//! [`Reconciler`] on keys fed by explicit triggers ([`Handle::trigger`], called
//! by the API after it commits), by a periodic full resync (every key listed
//! and reconciled again, which repairs lost triggers and crashes), and
//! optionally by a store revision watch (a resync as soon as another
//! controller changes the area). It guarantees that a key never runs
//! concurrently with itself, that triggers coalesce, that failures back off
//! exponentially, that a panic is only an error, and that shutdown lets
//! running reconciles finish.
//!
//! It knows nothing about any one resource kind, HTTP or drivers; it reads
//! the store only through [`nuage_store::Db::revision`]. See
//! `docs/adr/0007-reconcile-runtime.md`.

mod backoff;
mod controller;
mod queue;
mod reconciler;

pub use backoff::Backoff;
pub use controller::{BoxError, Controller, Handle, Stats};
pub use reconciler::{Action, Reconciler};
