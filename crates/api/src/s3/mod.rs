//! The S3 dialect: path- and virtual-hosted-style REST over the object
//! engine, authenticated by the shared SigV4 verifier (docs/adr/0010).
//!
//! This module parses the request (addressing, SigV4, the operation it
//! names, payload encoding, headers), calls the engine, and renders S3's
//! XML and error codes. No rule about objects lives here: quotas, policy,
//! durability and digests are the engine's. Every request is recognised
//! as one S3 operation before anything acts (`router`, docs/adr/0012).

pub mod chunked;
mod error;
mod handlers;
mod router;
pub mod xml;

pub use handlers::handle;
