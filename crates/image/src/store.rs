//! The content-addressed blob store and the unpacked root filesystems.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::{is_sha256_hex, unpack, ImageError, Result, Unpacked};

/// One node's images: blobs by digest and their unpacked root filesystems.
/// Cheap to clone; all methods take `&self` and may run on many threads.
/// Open one store per root directory per machine (`open` clears `tmp/`).
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

/// A stored blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    /// Lowercase hex, no `sha256:` prefix.
    pub sha256: String,
    pub size: u64,
}

impl ImageStore {
    /// Opens (creating) the store at `root`, removing what a crash left:
    /// half-written blobs in `tmp/` and half-done unpacks or removals.
    pub fn open(root: &Path) -> Result<ImageStore> {
        let store = ImageStore {
            root: root.to_path_buf(),
        };
        for dir in [store.blobs_dir(), store.rootfs_dir(), store.tmp_dir()] {
            fs::create_dir_all(&dir)
                .map_err(|e| ImageError::io(format!("creating {}", dir.display()), e))?;
        }
        // Uploads may be private: only root reads blobs and their temp files.
        // Unpacked trees keep their setuid binaries (instances need them):
        // no host user may reach them, nor the store at all.
        for dir in [
            root.to_path_buf(),
            root.join("blobs"),
            store.blobs_dir(),
            store.rootfs_dir(),
            store.tmp_dir(),
        ] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| ImageError::io(format!("chmod {}", dir.display()), e))?;
        }
        for entry in read_dir(&store.tmp_dir())? {
            crate::layer::remove_any(&entry)?;
        }
        for entry in read_dir(&store.rootfs_dir())? {
            let Some(name) = entry.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let orphan_meta = name
                .strip_suffix(".json")
                .is_some_and(|sha| is_sha256_hex(sha) && !store.rootfs_dir().join(sha).is_dir());
            if name.contains(".partial-") || orphan_meta {
                crate::layer::remove_any(&entry)?;
            }
        }
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts a new blob; it is stored under its digest by `finish`.
    pub fn writer(&self) -> Result<BlobWriter> {
        let file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(self.tmp_dir())
            .map_err(|e| ImageError::io("creating a temporary blob", e))?;
        Ok(BlobWriter {
            file,
            hasher: Sha256::new(),
            size: 0,
            blobs: self.blobs_dir(),
        })
    }

    /// Stores everything `r` yields as a blob.
    pub fn import(&self, mut r: impl Read) -> Result<Blob> {
        let mut w = self.writer()?;
        io::copy(&mut r, &mut w).map_err(|e| ImageError::io("storing a blob", e))?;
        w.finish()
    }

    /// Where the blob `sha256` is (or would be). The name is not checked:
    /// pass digests the store returned.
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blobs_dir().join(sha256)
    }

    /// Where the unpacked root filesystem of `sha256` is once `unpack`
    /// succeeded: a directory never written to afterwards (use it as a
    /// read-only overlayfs lower dir).
    pub fn rootfs_path(&self, sha256: &str) -> PathBuf {
        self.rootfs_dir().join(sha256)
    }

    pub fn has_blob(&self, sha256: &str) -> bool {
        is_sha256_hex(sha256) && self.blob_path(sha256).is_file()
    }

    /// The digests of all stored blobs, sorted.
    pub fn blobs(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = read_dir(&self.blobs_dir())?
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .filter(|n| is_sha256_hex(n))
            .collect();
        out.sort();
        Ok(out)
    }

    /// What an earlier `unpack` found, if the root filesystem is there.
    pub fn unpacked(&self, sha256: &str) -> Result<Option<Unpacked>> {
        check_sha(sha256)?;
        if !self.rootfs_path(sha256).is_dir() {
            return Ok(None);
        }
        match fs::read(self.meta_path(sha256)) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io(
                format!("reading {}", self.meta_path(sha256).display()),
                e,
            )),
        }
    }

    /// Detects the blob's format, verifies it, and unpacks it to
    /// `rootfs_path(sha256)`, all or nothing. Unpacking an image already
    /// unpacked returns what the first unpack found, without reading the
    /// blob. Corrupt, unsupported or unsafe archives are `Invalid`, with
    /// the reason, and leave nothing behind.
    pub fn unpack(&self, sha256: &str) -> Result<Unpacked> {
        check_sha(sha256)?;
        if let Some(u) = self.unpacked(sha256)? {
            return Ok(u);
        }
        if self.rootfs_path(sha256).exists() {
            // A root filesystem without its metadata was not made by this
            // store's unpack (which writes the metadata first): redo it.
            self.discard(&self.rootfs_path(sha256))?;
        }
        unpack::unpack(self, sha256)
    }

    /// Removes the blob and its root filesystem; removing what is not there
    /// is not an error.
    pub fn remove(&self, sha256: &str) -> Result<()> {
        check_sha(sha256)?;
        self.discard(&self.rootfs_path(sha256))?;
        remove_file(&self.meta_path(sha256))?;
        remove_file(&self.blob_path(sha256))?;
        Ok(())
    }

    /// Removes every blob and root filesystem whose digest is not in `keep`
    /// (digests with or without `sha256:`) and returns the removed digests.
    /// Writes and unpacks in progress are left alone.
    pub fn gc(&self, keep: &HashSet<String>) -> Result<Vec<String>> {
        let keep: HashSet<&str> = keep
            .iter()
            .map(|k| k.strip_prefix("sha256:").unwrap_or(k))
            .collect();
        let mut found: BTreeSet<String> = self.blobs()?.into_iter().collect();
        for p in read_dir(&self.rootfs_dir())? {
            if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                let sha = name.strip_suffix(".json").unwrap_or(name);
                if is_sha256_hex(sha) {
                    found.insert(sha.to_string());
                }
            }
        }
        let mut removed = Vec::new();
        for sha in found {
            if !keep.contains(sha.as_str()) {
                self.remove(&sha)?;
                removed.push(sha);
            }
        }
        Ok(removed)
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn rootfs_dir(&self) -> PathBuf {
        self.root.join("rootfs")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn meta_path(&self, sha256: &str) -> PathBuf {
        self.rootfs_dir().join(format!("{sha256}.json"))
    }

    /// A fresh name for a partial directory of `sha256` (removed by `open`
    /// if the process dies holding it).
    pub(crate) fn partial_path(&self, sha256: &str) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        self.rootfs_dir().join(format!(
            "{sha256}.partial-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Removes a root filesystem so that a crash midway cannot leave a
    /// half-deleted tree under its real name: renamed first, then deleted.
    fn discard(&self, dir: &Path) -> Result<()> {
        let Some(sha) = dir.file_name().and_then(|n| n.to_str()) else {
            return Ok(());
        };
        let doomed = self.partial_path(sha);
        match fs::rename(dir, &doomed) {
            Ok(()) => crate::layer::remove_any(&doomed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io(format!("removing {}", dir.display()), e)),
        }
    }
}

fn check_sha(sha256: &str) -> Result<()> {
    if is_sha256_hex(sha256) {
        Ok(())
    } else {
        Err(ImageError::invalid(format!(
            "{sha256:?} is not a sha256 digest (64 lowercase hex digits)"
        )))
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let list =
        fs::read_dir(dir).map_err(|e| ImageError::io(format!("listing {}", dir.display()), e))?;
    list.map(|e| e.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| ImageError::io(format!("listing {}", dir.display()), e))
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImageError::io(format!("removing {}", path.display()), e)),
    }
}

/// Makes a directory's entries (renames, creations) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ImageError::io(format!("syncing {}", dir.display()), e))
}

/// A blob being written: a temporary file, hashed as it grows. `finish`
/// stores it under its digest; dropping it unfinished deletes it.
pub struct BlobWriter {
    file: NamedTempFile,
    hasher: Sha256,
    size: u64,
    blobs: PathBuf,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("path", &self.file.path())
            .field("size", &self.size)
            .finish()
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Makes the blob durable under its digest. The same bytes stored twice
    /// are one blob: the second copy is dropped.
    pub fn finish(self) -> Result<Blob> {
        let BlobWriter {
            mut file,
            hasher,
            size,
            blobs,
        } = self;
        let sha256 = hex::encode(hasher.finalize());
        let dest = blobs.join(&sha256);
        if !dest.is_file() {
            file.flush()
                .and_then(|()| file.as_file().sync_all())
                .map_err(|e| ImageError::io("syncing a new blob", e))?;
            file.persist(&dest)
                .map_err(|e| ImageError::io(format!("storing {}", dest.display()), e.error))?;
            sync_dir(&blobs)?;
        }
        Ok(Blob { sha256, size })
    }
}
