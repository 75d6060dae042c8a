//! Object bytes on disk: one file per segment (a single-part object has one,
//! a multipart object one per part), named by a random id.
//!
//! A segment is written to `tmp/<id>` and made durable (fsync of the file
//! and of `tmp/`) before its metadata commits; after the commit it is
//! renamed to `data/<id[..2]>/<id>`. A crash between the two leaves it in
//! `tmp/` with its row committed, and [`DataDir::recover`] finishes the
//! rename; a `tmp/` file without a row was never acknowledged and is
//! removed. Readers look in `data/` then in `tmp/`. Removal goes through the
//! `garbage` table, in the same commit that drops the last reference, so a
//! crash never orphans a file.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use md5::Digest as _;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::checksum::{self, Algorithm, Hasher};
use crate::error::{ObjectError, ObjectResult};

/// Bodies up to this size are gathered in memory and written in one
/// blocking call; larger ones stream through a writer thread.
const SMALL: usize = 256 * 1024;
/// Read size when streaming a segment out.
const READ_CHUNK: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct DataDir {
    root: PathBuf,
}

/// What the engine wants computed while a body is written.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Want {
    /// The payload sha256 the signature covered, to check.
    pub sha256: bool,
    /// An `x-amz-checksum-*` algorithm to compute.
    pub extra: Option<Algorithm>,
    /// The exact length declared by the client, if any.
    pub declared: Option<u64>,
    /// The largest body accepted.
    pub max: u64,
}

/// A segment written to `tmp/` and made durable.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub id: String,
    pub size: u64,
    pub md5: [u8; 16],
    pub crc32c: u32,
    pub sha256: Option<[u8; 32]>,
    pub extra: Option<Vec<u8>>,
}

enum Msg {
    Data(Bytes),
    End,
}

pub(crate) fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl DataDir {
    pub fn open(root: &Path) -> ObjectResult<DataDir> {
        let d = DataDir {
            root: root.to_path_buf(),
        };
        fs::create_dir_all(root.join("tmp"))
            .map_err(|e| ObjectError::internal(format!("creating {}", root.display()), e))?;
        for i in 0..=255u8 {
            let shard = root.join("data").join(format!("{i:02x}"));
            if !shard.is_dir() {
                fs::create_dir_all(&shard).map_err(|e| {
                    ObjectError::internal(format!("creating {}", shard.display()), e)
                })?;
            }
        }
        fsync_dir(&root.join("data"))?;
        fsync_dir(root)?;
        Ok(d)
    }

    fn tmp_path(&self, id: &str) -> PathBuf {
        self.root.join("tmp").join(id)
    }

    fn data_path(&self, id: &str) -> PathBuf {
        let shard = id.get(..2).unwrap_or("00");
        self.root.join("data").join(shard).join(id)
    }

    /// Streams `body` into a new durable `tmp/` segment, hashing as it goes.
    /// Nothing is left behind on any error or if the future is dropped.
    pub async fn write<S, E>(&self, mut body: S, want: Want) -> ObjectResult<Written>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<ObjectError>,
    {
        let id = new_id();
        let path = self.tmp_path(&id);
        let tmp_dir = self.root.join("tmp");
        // Small bodies: gather, then one blocking call.
        let small = want.declared.is_some_and(|d| d as usize <= SMALL);
        if small {
            let mut buf = BytesMut::with_capacity(want.declared.unwrap_or(0) as usize);
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Into::into)?;
                if (buf.len() + chunk.len()) as u64 > want.declared.unwrap_or(0) {
                    return Err(ObjectError::BodyTooLong(want.declared.unwrap_or(0)));
                }
                buf.extend_from_slice(&chunk);
            }
            let data = buf.freeze();
            return tokio::task::spawn_blocking(move || {
                let mut w = SegmentFile::create(id, path, tmp_dir, want)?;
                w.md5.update(&data);
                w.append(&data)?;
                w.finish()
            })
            .await
            .map_err(|e| ObjectError::internal("writing object data", e))?;
        }
        // Large bodies: a writer thread (file, crc32c, sha256, extra) and a
        // hasher thread (MD5, the slowest) run beside the network reads.
        let (wtx, mut wrx) = mpsc::channel::<Msg>(16);
        let (htx, mut hrx) = mpsc::channel::<Msg>(16);
        let writer = tokio::task::spawn_blocking(move || -> ObjectResult<Written> {
            let mut w = SegmentFile::create(id, path, tmp_dir, want)?;
            loop {
                match wrx.blocking_recv() {
                    Some(Msg::Data(b)) => w.append(&b)?,
                    Some(Msg::End) => return w.finish(),
                    None => return Err(ObjectError::Body("the upload was abandoned".into())),
                }
            }
        });
        let hasher = tokio::task::spawn_blocking(move || -> Option<[u8; 16]> {
            let mut md5 = checksum::md5();
            loop {
                match hrx.blocking_recv() {
                    Some(Msg::Data(b)) => md5.update(&b),
                    Some(Msg::End) => return Some(md5.finalize().into()),
                    None => return None,
                }
            }
        });
        let mut total = 0u64;
        let fed: ObjectResult<()> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Into::into)?;
                total += chunk.len() as u64;
                if let Some(d) = want.declared.filter(|d| total > *d) {
                    return Err(ObjectError::BodyTooLong(d));
                }
                if total > want.max {
                    return Err(ObjectError::EntityTooLarge(want.max));
                }
                if htx.send(Msg::Data(chunk.clone())).await.is_err()
                    || wtx.send(Msg::Data(chunk)).await.is_err()
                {
                    break; // the writer failed: its error is reported below
                }
            }
            Ok(())
        }
        .await;
        if fed.is_ok() {
            let _ = htx.send(Msg::End).await;
            let _ = wtx.send(Msg::End).await;
        }
        drop((htx, wtx));
        let written = writer
            .await
            .map_err(|e| ObjectError::internal("writing object data", e))?;
        let md5 = hasher
            .await
            .map_err(|e| ObjectError::internal("hashing object data", e))?;
        fed?;
        let mut written = written?;
        match md5 {
            Some(m) => written.md5 = m,
            None => {
                self.discard_tmp(&written.id);
                return Err(ObjectError::Internal("the MD5 hasher stopped".into()));
            }
        }
        Ok(written)
    }

    /// Removes a `tmp/` segment that will not be committed.
    pub fn discard_tmp(&self, id: &str) {
        let _ = fs::remove_file(self.tmp_path(id));
    }

    /// After the commit: moves the segment to `data/`. A failure here is
    /// repaired by [`DataDir::recover`] and readers look in `tmp/` too.
    pub fn publish(&self, id: &str) {
        if let Err(e) = fs::rename(self.tmp_path(id), self.data_path(id)) {
            tracing::warn!(segment = id, error = %e, "moving a committed segment to data/");
        }
    }

    /// Opens a segment wherever it is.
    pub fn open_segment(&self, id: &str) -> io::Result<File> {
        match File::open(self.data_path(id)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => match File::open(self.tmp_path(id)) {
                Err(e2) if e2.kind() == io::ErrorKind::NotFound => File::open(self.data_path(id)),
                other => other,
            },
            other => other,
        }
    }

    /// Removes a segment's file wherever it is; missing is fine.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        for p in [self.data_path(id), self.tmp_path(id)] {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The ids of every file in `tmp/`.
    pub fn tmp_ids(&self) -> io::Result<Vec<String>> {
        let mut ids = Vec::new();
        for e in fs::read_dir(self.root.join("tmp"))? {
            let e = e?;
            if let Some(n) = e.file_name().to_str() {
                ids.push(n.to_string());
            }
        }
        Ok(ids)
    }

    /// Every segment id present in `data/` (a full walk: for checks and
    /// tests, not for the request path).
    pub fn data_ids(&self) -> io::Result<Vec<String>> {
        let mut ids = Vec::new();
        for shard in fs::read_dir(self.root.join("data"))? {
            for e in fs::read_dir(shard?.path())? {
                if let Some(n) = e?.file_name().to_str() {
                    ids.push(n.to_string());
                }
            }
        }
        Ok(ids)
    }

    /// Finishes a rename a crash interrupted (`committed` true), or removes
    /// an uncommitted `tmp/` file.
    pub fn recover(&self, id: &str, committed: bool) -> io::Result<()> {
        if committed {
            fs::rename(self.tmp_path(id), self.data_path(id))?;
            fsync_dir(
                self.data_path(id)
                    .parent()
                    .unwrap_or_else(|| Path::new("/")),
            )
        } else {
            fs::remove_file(self.tmp_path(id))
        }
    }

    /// Reads `len` bytes of segment `file` from `offset` in one go (small
    /// objects), checking the whole segment's CRC32C when it is read whole.
    pub fn read_small(
        mut file: File,
        offset: u64,
        len: usize,
        whole: Option<u32>,
    ) -> io::Result<Result<Bytes, ()>> {
        let mut buf = vec![0u8; len];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut buf)?;
        if let Some(crc) = whole {
            if crc32c::crc32c(&buf) != crc {
                return Ok(Err(()));
            }
        }
        Ok(Ok(Bytes::from(buf)))
    }

    /// Streams ranges of segment files on a blocking thread, one chunk ahead
    /// of the network. A segment read whole is checked against its CRC32C;
    /// on a mismatch the stream ends with an error (the client sees a cut
    /// response, never bad bytes presented as complete) and `on_corrupt` runs.
    pub fn stream(
        pieces: Vec<Piece>,
        on_corrupt: Box<dyn FnOnce() + Send>,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
        tokio::task::spawn_blocking(move || {
            let mut on_corrupt = Some(on_corrupt);
            for mut p in pieces {
                if let Err(e) = p.file.seek(SeekFrom::Start(p.offset)) {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
                let mut left = p.len;
                let mut crc = 0u32;
                while left > 0 {
                    let n = left.min(READ_CHUNK as u64) as usize;
                    let mut buf = BytesMut::zeroed(n);
                    if let Err(e) = p.file.read_exact(&mut buf) {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                    left -= n as u64;
                    if p.whole_crc.is_some() {
                        crc = crc32c::crc32c_append(crc, &buf);
                    }
                    if left == 0 {
                        if let Some(expected) = p.whole_crc {
                            if crc != expected {
                                if let Some(f) = on_corrupt.take() {
                                    f();
                                }
                                let _ = tx.blocking_send(Err(io::Error::other(
                                    "stored object data does not match its checksum",
                                )));
                                return;
                            }
                        }
                    }
                    if tx.blocking_send(Ok(buf.freeze())).is_err() {
                        return; // the client went away
                    }
                }
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
    }
}

/// A range of one segment file to send.
#[derive(Debug)]
pub(crate) struct Piece {
    pub file: File,
    pub offset: u64,
    pub len: u64,
    /// The segment's CRC32C when the piece is the whole segment.
    pub whole_crc: Option<u32>,
}

/// A `tmp/` file being written; removed on drop unless finished.
struct SegmentFile {
    id: String,
    path: PathBuf,
    tmp_dir: PathBuf,
    file: Option<File>,
    size: u64,
    crc: u32,
    sha: Option<Sha256>,
    extra: Option<Hasher>,
    md5: md5::Md5,
    want: Want,
    done: bool,
}

impl SegmentFile {
    fn create(id: String, path: PathBuf, tmp_dir: PathBuf, want: Want) -> ObjectResult<Self> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| ObjectError::internal(format!("creating {}", path.display()), e))?;
        Ok(SegmentFile {
            id,
            path,
            tmp_dir,
            file: Some(file),
            size: 0,
            crc: 0,
            sha: want.sha256.then(Sha256::new),
            extra: want.extra.map(Hasher::new),
            md5: checksum::md5(),
            want,
            done: false,
        })
    }

    fn append(&mut self, b: &[u8]) -> ObjectResult<()> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| ObjectError::Internal("segment already closed".into()))?;
        f.write_all(b)?;
        self.size += b.len() as u64;
        self.crc = crc32c::crc32c_append(self.crc, b);
        if let Some(s) = self.sha.as_mut() {
            s.update(b);
        }
        if let Some(x) = self.extra.as_mut() {
            x.update(b);
        }
        Ok(())
    }

    fn finish(mut self) -> ObjectResult<Written> {
        if let Some(d) = self.want.declared {
            if self.size < d {
                return Err(ObjectError::IncompleteBody {
                    declared: d,
                    got: self.size,
                });
            }
        }
        if self.size > self.want.max {
            return Err(ObjectError::EntityTooLarge(self.want.max));
        }
        let f = self
            .file
            .take()
            .ok_or_else(|| ObjectError::Internal("segment already closed".into()))?;
        f.sync_all()?;
        drop(f);
        fsync_dir(&self.tmp_dir)?;
        self.done = true;
        Ok(Written {
            id: std::mem::take(&mut self.id),
            size: self.size,
            md5: self.md5.clone().finalize().into(),
            crc32c: self.crc,
            sha256: self.sha.take().map(|s| s.finalize().into()),
            extra: self.extra.take().map(Hasher::finish),
        })
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}
