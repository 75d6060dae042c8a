//! The S3 dialect: path- and virtual-hosted-style REST over the object
//! engine, authenticated by the shared SigV4 verifier (docs/adr/0010).
//!
//! This module parses the request (addressing, SigV4, payload encoding,
//! headers), calls the engine, and renders S3's XML and error codes. No
//! rule about objects lives here: quotas, policy, durability and digests
//! are the engine's.

pub mod chunked;
mod handlers;
pub mod xml;

pub use handlers::handle;
