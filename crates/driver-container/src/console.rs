//! The console log: the init's stdout and stderr, appended to by the
//! container (runc hands it our file in detached mode), bounded on disk by
//! punching a hole over its head so that a chatty instance cannot fill the
//! node while the file keeps its offsets (the writer appends with O_APPEND
//! and never notices).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::{FallocateFlags, SeekFrom};

/// Past this many allocated bytes the head is punched out...
pub(crate) const BOUND: u64 = 1 << 20;
/// ...keeping at least this much of the tail.
pub(crate) const KEEP: u64 = 64 << 10;

/// Opens (creating) the console for appending, as the init's stdout/stderr.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// Punches out everything but the last [`KEEP`] bytes (block aligned) once
/// more than [`BOUND`] bytes are allocated. Cheap when there is nothing to do
/// (one stat). Returns whether it punched.
pub(crate) fn bound(path: &Path) -> io::Result<bool> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.blocks() * 512 <= BOUND {
        return Ok(false);
    }
    let block = meta.blksize().max(512);
    let end = meta.len().saturating_sub(KEEP) / block * block;
    if end == 0 {
        return Ok(false);
    }
    let file = OpenOptions::new().write(true).open(path)?;
    rustix::fs::fallocate(
        &file,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        0,
        end,
    )?;
    Ok(true)
}

/// The last `max` bytes of the console, skipping the punched (sparse) head.
pub(crate) fn tail(path: &Path, max: usize) -> io::Result<Vec<u8>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let from = len.saturating_sub(max as u64);
    // SEEK_DATA skips the hole; ENXIO means no data at or after `from`.
    let start = match rustix::fs::seek(&file, SeekFrom::Data(from)) {
        Ok(off) => off,
        Err(rustix::io::Errno::NXIO) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let start = start.max(from);
    if start >= len {
        return Ok(Vec::new());
    }
    file.seek(io::SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    file.take(len - start).read_to_end(&mut buf)?;
    Ok(buf)
}
