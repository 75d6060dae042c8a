//! The node-side image library of the compute service (Glance's images,
//! EC2's AMIs, for containers): a content-addressed blob store, the import
//! of uploaded archives (rootfs tarballs, OCI image layouts, `docker save`
//! archives) into unpacked root filesystems, and builders for the images a
//! fresh node has without internet access.
//!
//! On disk, under the store's root:
//!
//! ```text
//! blobs/sha256/<hex>      uploaded archives, named by the sha256 of their bytes
//! rootfs/<hex>/           the unpacked root filesystem (overlayfs lower dir, never written)
//! rootfs/<hex>.json       what unpacking found (format, architecture, launch config)
//! rootfs/<hex>.partial-*  an unpack or removal in progress (removed by `open`)
//! tmp/                    blobs being written (emptied by `open`)
//! ```
//!
//! Everything is synchronous (std::io): callers on async runtimes run it in
//! `spawn_blocking`. Every change becomes visible with one rename, so a crash
//! leaves either the old or the new state plus leftovers `open` removes.

mod elf;
mod layer;
mod store;
mod unpack;

pub mod builders;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use store::{Blob, BlobWriter, ImageStore};

/// Why an image operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The archive is corrupt, truncated, unsupported or unsafe: the
    /// uploader's fault, and the message says why in their terms.
    #[error("{0}")]
    Invalid(String),
    /// The node failed (disk full, I/O error, missing tool); the message
    /// says what it was doing.
    #[error("{0}")]
    Io(String),
}

impl ImageError {
    pub(crate) fn io(context: impl fmt::Display, e: impl fmt::Display) -> ImageError {
        ImageError::Io(format!("{context}: {e}"))
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> ImageError {
        ImageError::Invalid(msg.into())
    }

    /// Prefixes an `Invalid` message with where in the archive it happened;
    /// `Io` keeps its own context.
    pub(crate) fn within(self, place: impl fmt::Display) -> ImageError {
        match self {
            ImageError::Invalid(m) => ImageError::Invalid(format!("{place}: {m}")),
            io => io,
        }
    }
}

/// The result of image operations.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// What kind of archive an image was uploaded as (detected from content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A tarball (plain or gzip) of a root filesystem.
    RootfsTar,
    /// An OCI image layout in a tar (`skopeo copy ... oci-archive:`, `docker save` ≥ 25).
    OciArchive,
    /// A classic `docker save` archive (`manifest.json`, `<id>/layer.tar`).
    DockerArchive,
}

impl Format {
    /// The name stored and shown by the APIs (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::RootfsTar => "rootfs-tar",
            Format::OciArchive => "oci-archive",
            Format::DockerArchive => "docker-archive",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an instance of the image starts, from the image's own config (OCI,
/// docker) or guessed from the root filesystem (tarballs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Entrypoint followed by Cmd.
    pub command: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// Absolute; "/" when the image does not say.
    pub workdir: String,
}

/// What unpacking an image found; saved beside the root filesystem so a
/// repeated unpack answers without reading the archive again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unpacked {
    pub format: Format,
    /// The kernel's name (`x86_64`, `aarch64`), when the image says or its
    /// shell's ELF header tells.
    pub architecture: Option<String>,
    pub config: ImageConfig,
    /// Bytes of file data in the root filesystem (hard links counted once).
    pub unpacked_bytes: u64,
}

/// The PATH of images that do not set one (Debian's default for root).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// True for a sha256 digest as the store names blobs: 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_match_serde() {
        for f in [Format::RootfsTar, Format::OciArchive, Format::DockerArchive] {
            let json = serde_json::to_string(&f).expect("serialises");
            assert_eq!(json, format!("\"{}\"", f.as_str()));
            let back: Format = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, f);
        }
    }

    #[test]
    fn sha256_hex_is_strict() {
        assert!(is_sha256_hex(&"a".repeat(64)));
        assert!(!is_sha256_hex(&"A".repeat(64)));
        assert!(!is_sha256_hex(&"a".repeat(63)));
        assert!(!is_sha256_hex(&format!("../{}", "a".repeat(61))));
    }
}
