//! nuage-api's S3 protocol modules, compiled on their own for fuzzing.
//!
//! `xml.rs` and `chunked.rs` are pure protocol code that depends only on
//! external crates and on nuage-identity/nuage-object, never on the rest of
//! nuage-api. Including them by path keeps the fuzz build free of the HTTP
//! stack and of handler code under construction, and it fails loudly if
//! either module ever grows a `crate::` dependency.

#[path = "../../crates/api/src/s3/chunked.rs"]
pub mod chunked;
#[path = "../../crates/api/src/s3/xml.rs"]
pub mod xml;
