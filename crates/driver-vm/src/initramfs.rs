//! Initramfs archives: the kernel's `newc` cpio format, gzip-compressed.
//! The format is a 110-byte ASCII header per entry (magic `070701` and
//! thirteen 8-digit hex fields) followed by the name and the data, each
//! padded to four bytes, and a `TRAILER!!!` entry; written here rather than
//! through a crate for some sixty lines.

use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;

use crate::{DriverError, DriverResult};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// An initramfs being written.
pub struct Initramfs<W: Write> {
    out: GzEncoder<W>,
    next_ino: u32,
}

impl<W: Write> std::fmt::Debug for Initramfs<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initramfs")
            .field("entries", &self.next_ino)
            .finish()
    }
}

fn io(e: std::io::Error) -> DriverError {
    DriverError::failed("cannot write the initramfs", e)
}

impl<W: Write> Initramfs<W> {
    pub fn new(out: W) -> Self {
        // Level 1: the guest decompresses it at boot, under TCG too; the
        // archive is written once per image.
        Initramfs {
            out: GzEncoder::new(out, flate2::Compression::fast()),
            next_ino: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) -> DriverResult<()> {
        let name = name.trim_start_matches('/');
        if name.is_empty() || name.len() > 4095 {
            return Err(DriverError::Invalid(format!(
                "initramfs path {name:?} is empty or too long"
            )));
        }
        let size = u32::try_from(data.len())
            .map_err(|_| DriverError::Invalid(format!("{name} is over 4 GiB")))?;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let fields = [
            self.next_ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            size,
            0, // devmajor
            0, // devminor
            0, // rdevmajor
            0, // rdevminor
            name.len() as u32 + 1,
            0, // check
        ];
        self.next_ino += 1;
        let mut head = String::with_capacity(110 + name.len() + 4);
        head.push_str("070701");
        for f in fields {
            head.push_str(&format!("{f:08x}"));
        }
        head.push_str(name);
        head.push('\0');
        let mut bytes = head.into_bytes();
        bytes.resize(bytes.len().div_ceil(4) * 4, 0);
        self.out.write_all(&bytes).map_err(io)?;
        self.out.write_all(data).map_err(io)?;
        let pad = data.len().div_ceil(4) * 4 - data.len();
        self.out.write_all(&[0u8; 3][..pad]).map_err(io)
    }

    pub fn dir(&mut self, name: &str) -> DriverResult<()> {
        self.entry(name, S_IFDIR | 0o755, &[])
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> DriverResult<()> {
        self.entry(name, S_IFREG | (mode & 0o7777), data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> DriverResult<()> {
        self.entry(name, S_IFLNK | 0o777, target.as_bytes())
    }

    /// A file copied from the host, with its permission bits.
    pub fn copy(&mut self, name: &str, from: &Path) -> DriverResult<()> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(from)
            .map_err(|e| DriverError::failed(format!("cannot read {}", from.display()), e))?;
        let data = std::fs::read(from)
            .map_err(|e| DriverError::failed(format!("cannot read {}", from.display()), e))?;
        self.file(name, meta.permissions().mode(), &data)
    }

    /// Ends the archive; the writer, flushed.
    pub fn finish(mut self) -> DriverResult<W> {
        self.entry("TRAILER!!!", 0, &[])?;
        self.out.finish().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn writes_newc_entries_padded_to_four_bytes() {
        let mut a = Initramfs::new(Vec::new());
        a.dir("bin").expect("dir");
        a.file("/init", 0o755, b"#!/bin/sh\n").expect("file");
        a.symlink("bin/sh", "busybox").expect("link");
        let gz = a.finish().expect("finish");
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .expect("gunzip");
        assert!(raw.starts_with(b"070701"));
        assert_eq!(raw.len() % 4, 0);
        let text = String::from_utf8_lossy(&raw);
        for name in ["bin\0", "init\0", "bin/sh\0", "TRAILER!!!\0"] {
            assert!(text.contains(name), "{name} missing");
        }
        // The init entry: mode 0100755, size 10, name length 5.
        let at = text.find("init\0").expect("init") - 110;
        let head = &text[at..at + 110];
        assert_eq!(&head[14..22], "000081ed");
        assert_eq!(&head[54..62], "0000000a");
        assert_eq!(&head[94..102], "00000005");
        assert!(text.contains("#!/bin/sh\n\0\0"));
        assert!(Initramfs::new(Vec::new()).file("", 0o644, b"").is_err());
    }
}
