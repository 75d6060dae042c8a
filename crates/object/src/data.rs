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
//!
//! Throughput: the fsyncs of `tmp/` are shared by the writers waiting for
//! one (see [`DirSync`]); a large segment has a flusher thread that makes
//! its `tmp/` entry durable as soon as it is created and starts the
//! writeback of its bytes while they are still arriving, so the final
//! fsync is short; the MD5 of a large upload, its critical path, runs on a
//! thread of its own at a higher priority. Reads fill pooled buffers
//! (zeroed once, then reused) on the task that sends them when the page
//! cache has the bytes, on a blocking thread when the disk must be read.
//! An empty object has no segment at all.

use std::fs::{self, File};
use std::io::{self, Write};
use std::num::NonZeroU64;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Condvar, Mutex, PoisonError};

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
/// A large body's network reads are handed to the writer and hasher
/// threads in batches of at least this many bytes: one wake-up per batch
/// rather than per read.
const BATCH: usize = 1024 * 1024;
/// While a large segment is written, its writeback is started each time
/// this many more bytes are in the file.
const FLUSH_EVERY: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct DataDir {
    root: PathBuf,
    tmp_sync: Arc<DirSync>,
}

/// Group fsync of a directory. A writer whose new entry must be durable
/// waits for an fsync of the directory that began after it asked: one
/// fsync covers the entries of every writer that asked before it began,
/// where an fsync each (all of the same directory, each forcing its own
/// journal commit) made concurrent small writes wait on one another.
#[derive(Debug)]
struct DirSync {
    dir: File,
    state: Mutex<SyncState>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    /// fsyncs begun and finished, numbered from 1.
    started: u64,
    finished: u64,
    /// The last fsync that succeeded.
    ok: u64,
    running: bool,
    /// What the last fsync that failed said.
    error: Option<(io::ErrorKind, String)>,
}

impl DirSync {
    fn open(dir: &Path) -> io::Result<DirSync> {
        Ok(DirSync {
            dir: File::open(dir)?,
            state: Mutex::new(SyncState::default()),
            done: Condvar::new(),
        })
    }

    /// Returns once an fsync of the directory that began after this call
    /// succeeded; an error if it (and every later one finished by then)
    /// failed.
    fn sync(&self) -> io::Result<()> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // One running now may have begun before the caller's entry was
        // made: only the next one counts.
        let wanted = s.started + 1;
        loop {
            if s.ok >= wanted {
                return Ok(());
            }
            if s.finished >= wanted {
                // Every fsync from `wanted` on failed.
                let (kind, msg) = s
                    .error
                    .clone()
                    .unwrap_or((io::ErrorKind::Other, "fsync failed".into()));
                return Err(io::Error::new(kind, msg));
            }
            if s.running {
                s = self.done.wait(s).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            s.running = true;
            s.started += 1;
            let n = s.started;
            drop(s);
            let r = self.dir.sync_all();
            s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            s.running = false;
            s.finished = n;
            match r {
                Ok(()) => s.ok = n,
                Err(e) => s.error = Some((e.kind(), e.to_string())),
            }
            self.done.notify_all();
        }
    }
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
    Data(Arc<Vec<Bytes>>),
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
        fs::create_dir_all(root.join("tmp"))
            .map_err(|e| ObjectError::internal(format!("creating {}", root.display()), e))?;
        // Objects may be private: only the server's user reaches them.
        for dir in [root.to_path_buf(), root.join("tmp"), root.join("data")] {
            fs::create_dir_all(&dir)
                .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)))
                .map_err(|e| ObjectError::internal(format!("restricting {}", dir.display()), e))?;
        }
        let d = DataDir {
            root: root.to_path_buf(),
            tmp_sync: Arc::new(DirSync::open(&root.join("tmp"))?),
        };
        for i in 0..=255u8 {
            let shard = root.join("data").join(format!("{i:02x}"));
            if !shard.is_dir() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&shard)
                    .map_err(|e| {
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
        let tmp_dir = self.tmp_sync.clone();
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
        // Large bodies: a writer thread (file, crc32c, sha256, extra; it
        // starts writeback as it goes) and a hasher thread of its own (MD5,
        // the slowest; see [`Boost`]) run beside the network reads, fed
        // batches of them.
        let (wtx, mut wrx) = mpsc::channel::<Msg>(16);
        let (htx, mut hrx) = mpsc::channel::<Msg>(16);
        let writer = tokio::task::spawn_blocking(move || -> ObjectResult<Written> {
            let mut w = SegmentFile::create(id, path, tmp_dir, want)?;
            w.start_flusher()?;
            loop {
                match wrx.blocking_recv() {
                    Some(Msg::Data(batch)) => {
                        for b in batch.iter() {
                            w.append(b)?;
                        }
                        w.start_writeback()?;
                    }
                    Some(Msg::End) => return w.finish(),
                    None => return Err(ObjectError::Body("the upload was abandoned".into())),
                }
            }
        });
        let (md5_tx, hasher) = tokio::sync::oneshot::channel::<Option<[u8; 16]>>();
        let hash = move || {
            let mut md5 = checksum::md5();
            let r = loop {
                match hrx.blocking_recv() {
                    Some(Msg::Data(batch)) => batch.iter().for_each(|b| md5.update(b)),
                    Some(Msg::End) => break Some(md5.finalize()),
                    None => break None,
                }
            };
            let _ = md5_tx.send(r);
        };
        // A boosted thread of its own while a slot is free (so their number
        // stays bounded), else a thread of the blocking pool as any other.
        match Boost::take() {
            Some(boost) => {
                std::thread::Builder::new()
                    .name("nuage-md5".into())
                    .spawn(move || {
                        boost.apply();
                        hash();
                    })
                    .map_err(|e| ObjectError::internal("starting the MD5 hasher", e))?;
            }
            None => drop(tokio::task::spawn_blocking(hash)),
        }
        let mut total = 0u64;
        let fed: ObjectResult<()> = async {
            let mut batch = Vec::new();
            let mut batched = 0usize;
            let mut ended = false;
            while !ended {
                match body.next().await {
                    Some(chunk) => {
                        let chunk = chunk.map_err(Into::into)?;
                        total += chunk.len() as u64;
                        if let Some(d) = want.declared.filter(|d| total > *d) {
                            return Err(ObjectError::BodyTooLong(d));
                        }
                        if total > want.max {
                            return Err(ObjectError::EntityTooLarge(want.max));
                        }
                        batched += chunk.len();
                        batch.push(chunk);
                        if batched < BATCH {
                            continue;
                        }
                    }
                    None => ended = true,
                }
                if batch.is_empty() {
                    continue;
                }
                let b = Arc::new(std::mem::take(&mut batch));
                batched = 0;
                if htx.send(Msg::Data(b.clone())).await.is_err()
                    || wtx.send(Msg::Data(b)).await.is_err()
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
        let md5 = hasher.await.unwrap_or(None);
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

    /// An empty body, checked and hashed, for an object without a segment:
    /// the [`Written`] has an empty id and no file.
    pub async fn empty<S, E>(mut body: S, want: Want) -> ObjectResult<Written>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<ObjectError>,
    {
        while let Some(chunk) = body.next().await {
            if !chunk.map_err(Into::into)?.is_empty() {
                return Err(ObjectError::BodyTooLong(0));
            }
        }
        Ok(Written {
            id: String::new(),
            size: 0,
            md5: checksum::md5().finalize(),
            crc32c: 0,
            sha256: want.sha256.then(|| Sha256::new().finalize().into()),
            extra: want.extra.map(|a| Hasher::new(a).finish()),
        })
    }

    /// Removes a `tmp/` segment that will not be committed.
    pub fn discard_tmp(&self, id: &str) {
        if !id.is_empty() {
            let _ = fs::remove_file(self.tmp_path(id));
        }
    }

    /// After the commit: moves the segment to `data/`. A failure here is
    /// repaired by [`DataDir::recover`] and readers look in `tmp/` too.
    pub fn publish(&self, id: &str) {
        if id.is_empty() {
            return;
        }
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
        file: &File,
        offset: u64,
        len: usize,
        whole: Option<u32>,
    ) -> io::Result<Result<Bytes, ()>> {
        use std::os::unix::fs::FileExt as _;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, offset)?;
        if let Some(crc) = whole {
            if crate::checksum::crc32c_append(0, &buf) != crc {
                return Ok(Err(()));
            }
        }
        Ok(Ok(Bytes::from(buf)))
    }

    /// The bytes of segment-file ranges, to be read by [`Segments::into_bytes`]
    /// or handed to a socket by [`Segments::into_spans`].
    pub fn segments(pieces: Vec<Piece>, on_corrupt: Box<dyn FnOnce() + Send>) -> Segments {
        for p in &pieces {
            // A hint: a larger read-ahead when the data is not cached.
            let _ = rustix::fs::fadvise(
                &*p.file,
                p.offset,
                NonZeroU64::new(p.len),
                rustix::fs::Advice::Sequential,
            );
        }
        Segments(SegmentReader {
            pieces: pieces.into(),
            crc: 0,
            on_corrupt: Some(on_corrupt),
            done: false,
        })
    }
}

/// The stored bytes of a GET too large to read in one go: ranges of
/// segment files, opened. A segment read whole is checked against its
/// CRC32C; on a mismatch the stream ends with an error before its last
/// bytes (the client sees a cut response, never bad bytes presented as
/// complete) and the `on_corrupt` hook runs.
pub struct Segments(SegmentReader);

impl std::fmt::Debug for Segments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segments")
            .field("pieces", &self.0.pieces.len())
            .finish()
    }
}

/// A checked range of a segment file, for a sender that has the kernel
/// copy it to its socket (`sendfile`) instead of reading it.
#[derive(Debug)]
pub struct FileSpan {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: usize,
}

impl Segments {
    /// The bytes, read. A chunk already in the page cache is read right
    /// where the network writes it (`preadv2` with `RWF_NOWAIT`: it never
    /// waits for the disk), so the bytes are sent from this core's cache
    /// with no hand-over between threads; a chunk that must come from the
    /// disk is read on a blocking thread.
    pub fn into_bytes(self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        futures_util::stream::unfold(self.0, |mut r| async move {
            let item = r.next().await?;
            if item.is_err() {
                r.done = true;
            }
            Some((item, r))
        })
    }

    /// The same ranges as spans of [`SPAN`] bytes at most, each yielded
    /// once its bytes have been read (in [`CHECK_CHUNK`]s, which stay in
    /// the CPU cache) and, for a segment read whole, checked: the CRC32C
    /// needs them, and the sender then finds them in the page cache, so
    /// its `sendfile` never waits for the disk on the connection's task.
    pub fn into_spans(self) -> impl Stream<Item = io::Result<FileSpan>> + Send + 'static {
        futures_util::stream::unfold((self.0, None), |(mut r, mut buf)| async move {
            let item = r.next_span(&mut buf).await?;
            if item.is_err() {
                r.done = true;
            }
            Some((item, (r, buf)))
        })
    }
}

/// The largest [`FileSpan`].
pub const SPAN: usize = 1024 * 1024;
/// Read size when a span is checked.
const CHECK_CHUNK: usize = 256 * 1024;

/// The state of a [`Segments`] stream.
struct SegmentReader {
    pieces: std::collections::VecDeque<Piece>,
    /// CRC32C so far of the current piece, when it is a whole segment.
    crc: u32,
    on_corrupt: Option<Box<dyn FnOnce() + Send>>,
    done: bool,
}

/// Reads `buf[..want]` from `file` at `offset`: on this thread when the
/// page cache has the bytes, on a blocking thread otherwise. Returns the
/// buffer and how many bytes were read.
async fn read_chunk(
    file: &Arc<File>,
    offset: u64,
    mut buf: Vec<u8>,
    want: usize,
) -> io::Result<(Vec<u8>, usize)> {
    match rustix::io::preadv2(
        &**file,
        &mut [io::IoSliceMut::new(&mut buf[..want])],
        offset,
        rustix::io::ReadWriteFlags::NOWAIT,
    ) {
        Ok(n) if n > 0 => return Ok((buf, n)),
        Ok(_) => {}
        Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::OPNOTSUPP => {}
        Err(e) => return Err(e.into()),
    }
    let file = file.clone();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt as _;
        file.read_exact_at(&mut buf[..want], offset)
            .map(|()| (buf, want))
    })
    .await
    .map_err(io::Error::other)?
}

impl SegmentReader {
    /// The current piece, past the finished ones.
    fn piece(&mut self) -> Option<&mut Piece> {
        while self.pieces.front()?.len == 0 {
            self.pieces.pop_front();
            self.crc = 0;
        }
        self.pieces.front_mut()
    }

    /// Adds `bytes`, the next of the current piece, to its CRC32C; at the
    /// end of a whole segment, an error if the CRC is not the stored one.
    fn check(&mut self, bytes: &[u8], last: bool) -> io::Result<()> {
        let Some(expected) = self.pieces.front().and_then(|p| p.whole_crc) else {
            return Ok(());
        };
        self.crc = crate::checksum::crc32c_append(self.crc, bytes);
        if last && self.crc != expected {
            if let Some(f) = self.on_corrupt.take() {
                f();
            }
            return Err(io::Error::other(
                "stored object data does not match its checksum",
            ));
        }
        Ok(())
    }

    async fn next(&mut self) -> Option<io::Result<Bytes>> {
        if self.done {
            return None;
        }
        let p = self.piece()?;
        let want = p.len.min(READ_CHUNK as u64) as usize;
        let (buf, got) = match read_chunk(&p.file, p.offset, pooled_buffer(), want).await {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let buf = Pooled(buf);
        p.offset += got as u64;
        p.len -= got as u64;
        let last = p.len == 0;
        if let Err(e) = self.check(&buf.0[..got], last) {
            return Some(Err(e));
        }
        Some(Ok(Bytes::from_owner(buf).slice(..got)))
    }

    async fn next_span(&mut self, buf: &mut Option<Vec<u8>>) -> Option<io::Result<FileSpan>> {
        if self.done {
            return None;
        }
        let p = self.piece()?;
        let len = p.len.min(SPAN as u64) as usize;
        let span = FileSpan {
            file: p.file.clone(),
            offset: p.offset,
            len,
        };
        let mut scratch = buf.take().unwrap_or_else(|| vec![0u8; CHECK_CHUNK]);
        let mut done = 0;
        while done < len {
            let p = self.piece()?;
            let want = (len - done).min(CHECK_CHUNK);
            let got;
            (scratch, got) = match read_chunk(&p.file, p.offset, scratch, want).await {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            p.offset += got as u64;
            p.len -= got as u64;
            done += got;
            let last = p.len == 0;
            if let Err(e) = self.check(&scratch[..got], last) {
                return Some(Err(e));
            }
        }
        *buf = Some(scratch);
        Some(Ok(span))
    }
}

/// A large upload's MD5 hasher thread runs at this nice value: one thread
/// that cannot be split is the critical path of the upload (everything
/// else keeps up beside it), and at the default priority it shares a core
/// with the client, the network reads and the writer, ~25% slower.
const HASHER_NICE: i32 = -10;
/// Hashers boosted now: at most half the CPUs (at least one), so that
/// concurrent large uploads never crowd out the rest of the server.
static BOOSTED: AtomicUsize = AtomicUsize::new(0);

/// A slot for a boosted hasher thread, held while it runs.
struct Boost(());

impl Boost {
    /// A free slot, if any.
    fn take() -> Option<Boost> {
        let slots = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        if BOOSTED.fetch_add(1, Ordering::AcqRel) >= slots {
            BOOSTED.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Boost(()))
    }

    /// Raises the calling thread's priority, if the process may (it runs as
    /// root); best effort. Linux: PRIO_PROCESS with 0 is this thread only,
    /// which ends with the hash.
    fn apply(&self) {
        let _ = rustix::process::setpriority_process(None, HASHER_NICE);
    }
}

impl Drop for Boost {
    fn drop(&mut self) {
        BOOSTED.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Read buffers of [`READ_CHUNK`] bytes, zeroed once when made: a chunk
/// comes back here when the network is done with it, so a GET neither
/// zeroes nor faults in fresh memory per chunk, and reads a whole chunk
/// per call (`read_to_end` on a bounded reader starts at 8 KiB per call).
static READ_BUFFERS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Buffers kept idle at most (the rest are freed).
const READ_BUFFERS_KEPT: usize = 8;

/// A pooled buffer lent to a [`Bytes`].
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        let mut pool = READ_BUFFERS.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < READ_BUFFERS_KEPT {
            pool.push(buf);
        }
    }
}

/// A buffer of [`READ_CHUNK`] bytes from the pool.
fn pooled_buffer() -> Vec<u8> {
    READ_BUFFERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop()
        .unwrap_or_else(|| vec![0u8; READ_CHUNK])
}

/// A range of one segment file to send.
#[derive(Debug)]
pub(crate) struct Piece {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
    /// The segment's CRC32C when the piece is the whole segment.
    pub whole_crc: Option<u32>,
}

/// A `tmp/` file being written; removed on drop unless finished.
struct SegmentFile {
    id: String,
    path: PathBuf,
    tmp_dir: Arc<DirSync>,
    file: Option<File>,
    /// Started on the first writeback of a large segment.
    flusher: Option<Flusher>,
    /// Bytes whose writeback has been asked for.
    flushed: u64,
    size: u64,
    crc: u32,
    sha: Option<Sha256>,
    extra: Option<Hasher>,
    md5: crate::fastmd5::Md5,
    want: Want,
    done: bool,
}

impl SegmentFile {
    fn create(id: String, path: PathBuf, tmp_dir: Arc<DirSync>, want: Want) -> ObjectResult<Self> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| ObjectError::internal(format!("creating {}", path.display()), e))?;
        Ok(SegmentFile {
            id,
            path,
            tmp_dir,
            file: Some(file),
            flusher: None,
            flushed: 0,
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
        self.crc = crate::checksum::crc32c_append(self.crc, b);
        if let Some(s) = self.sha.as_mut() {
            s.update(b);
        }
        if let Some(x) = self.extra.as_mut() {
            x.update(b);
        }
        Ok(())
    }

    /// For a large segment: a thread that makes the new `tmp/` entry
    /// durable now, while the bytes arrive, then syncs them as asked by
    /// [`SegmentFile::start_writeback`].
    fn start_flusher(&mut self) -> ObjectResult<()> {
        let f = self
            .file
            .as_ref()
            .ok_or_else(|| ObjectError::Internal("segment already closed".into()))?;
        self.flusher = Some(Flusher::start(f.try_clone()?, self.tmp_dir.clone())?);
        Ok(())
    }

    /// Asks for the writeback of what was written since the last time, once
    /// that is at least [`FLUSH_EVERY`] bytes: the flusher thread runs
    /// `fdatasync` while the writer goes on, so the final fsync finds most
    /// of the file already on disk instead of writing it all then.
    fn start_writeback(&mut self) -> ObjectResult<()> {
        if self.size - self.flushed < FLUSH_EVERY {
            return Ok(());
        }
        if let Some(f) = &self.flusher {
            f.kick();
        }
        self.flushed = self.size;
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
        // The `tmp/` entry: made durable by the flusher long ago for a large
        // segment (the directory's fsync was begun after the file was
        // created), else now, after the file's own fsync.
        match self.flusher.take() {
            Some(fl) => {
                let dir = fl.stop();
                f.sync_all()?;
                dir?;
            }
            None => {
                f.sync_all()?;
                self.tmp_dir.sync()?;
            }
        }
        drop(f);
        self.done = true;
        Ok(Written {
            id: std::mem::take(&mut self.id),
            size: self.size,
            md5: self.md5.clone().finalize(),
            crc32c: self.crc,
            sha256: self.sha.take().map(|s| s.finalize().into()),
            extra: self.extra.take().map(Hasher::finish),
        })
    }
}

/// The helper thread of a large segment being written: it first syncs
/// `tmp/` (the segment's entry exists: it was created before), then runs
/// `fdatasync` on the segment each time it is kicked (kicks that arrive
/// while it syncs are merged into one more sync).
struct Flusher {
    kick: Option<std_mpsc::SyncSender<()>>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    dir_synced: std_mpsc::Receiver<io::Result<()>>,
}

impl Flusher {
    fn start(file: File, tmp_dir: Arc<DirSync>) -> io::Result<Flusher> {
        use std::sync::atomic::Ordering;
        let (tx, rx) = std_mpsc::sync_channel::<()>(1);
        let (dir_tx, dir_rx) = std_mpsc::sync_channel(1);
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = stopping.clone();
        std::thread::Builder::new()
            .name("nuage-object-flush".into())
            .spawn(move || {
                let _ = dir_tx.send(tmp_dir.sync());
                while rx.recv().is_ok() {
                    // The final fsync does the rest and reports errors.
                    if stop.load(Ordering::Acquire) || file.sync_data().is_err() {
                        return;
                    }
                }
            })?;
        Ok(Flusher {
            kick: Some(tx),
            stopping,
            dir_synced: dir_rx,
        })
    }

    fn kick(&self) {
        if let Some(k) = &self.kick {
            let _ = k.try_send(());
        }
    }

    /// No more syncs of the data (the final fsync follows); returns the
    /// outcome of the directory's fsync, waiting for it if need be.
    fn stop(mut self) -> io::Result<()> {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        self.kick.take();
        self.dir_synced
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the flusher thread stopped")))
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Abandoned (an error): the thread ends after its current sync.
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        self.kick.take();
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All the bytes of `piece`, through [`DataDir::stream`].
    async fn read_back(piece: Piece) -> Vec<u8> {
        let mut s = Box::pin(
            DataDir::segments(vec![piece], Box::new(|| panic!("not corrupt"))).into_bytes(),
        );
        let mut back = Vec::new();
        while let Some(c) = s.next().await {
            back.extend_from_slice(&c.expect("chunk"));
        }
        back
    }

    /// Writes `data` as a body of `chunk`-byte reads declaring `declared`
    /// bytes.
    async fn write_in_chunks(
        d: &DataDir,
        data: &[u8],
        chunk: usize,
        declared: u64,
    ) -> ObjectResult<Written> {
        let chunks: Vec<Result<Bytes, ObjectError>> = data
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let want = Want {
            declared: Some(declared),
            max: u64::MAX,
            ..Want::default()
        };
        d.write(futures_util::stream::iter(chunks), want).await
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 4099) as u8).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_segment_written_in_batches_with_writeback_reads_back() {
        // On disk (not tmpfs): the test evicts pages from the page cache.
        let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
        let d = DataDir::open(dir.path()).expect("open");
        // 20 MiB in uneven network-sized reads: several batches, several
        // writebacks, a short last batch.
        let data = pattern(20 * 1024 * 1024 + 12345);
        let w = write_in_chunks(&d, &data, 65_521, data.len() as u64)
            .await
            .expect("write");
        assert_eq!(w.size, data.len() as u64);
        assert_eq!(w.md5, <[u8; 16]>::from(md5::Md5::digest(&data)));
        assert_eq!(w.crc32c, crate::checksum::crc32c_append(0, &data));
        let file = d.open_segment(&w.id).expect("segment in tmp/");
        let piece = Piece {
            file: file.into(),
            offset: 0,
            len: w.size,
            whole_crc: Some(w.crc32c),
        };
        let back = read_back(piece).await;
        assert!(back == data, "read back differs");
        // A range in the middle, no CRC (not the whole segment).
        let piece = Piece {
            file: d.open_segment(&w.id).expect("segment").into(),
            offset: 3 * 1024 * 1024 + 7,
            len: 5 * 1024 * 1024,
            whole_crc: None,
        };
        let back = read_back(piece).await;
        assert!(back[..] == data[3 * 1024 * 1024 + 7..8 * 1024 * 1024 + 7]);

        // Out of the page cache: chunks come from the blocking-thread path.
        let file = d.open_segment(&w.id).expect("segment");
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).expect("fadvise");
        let mut probe = [0u8; 4096];
        assert_eq!(
            rustix::io::preadv2(
                &file,
                &mut [io::IoSliceMut::new(&mut probe)],
                0,
                rustix::io::ReadWriteFlags::NOWAIT
            ),
            Err(rustix::io::Errno::AGAIN),
            "evicted pages must not be readable without waiting"
        );
        let piece = Piece {
            file: file.into(),
            offset: 0,
            len: w.size,
            whole_crc: Some(w.crc32c),
        };
        let back = read_back(piece).await;
        assert!(back == data, "read back from disk differs");
    }

    /// More concurrent large uploads than boosted hasher slots: the others
    /// hash on the blocking pool, and every MD5 is right.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_large_writes_hash_right_beyond_the_boosted_slots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = DataDir::open(dir.path()).expect("open");
        let writes = (0..6u8).map(|i| {
            let d = d.clone();
            async move {
                let data: Vec<u8> = pattern(2 * 1024 * 1024 + i as usize * 977);
                let w = write_in_chunks(&d, &data, 100_000, data.len() as u64)
                    .await
                    .expect("write");
                assert_eq!(w.md5, <[u8; 16]>::from(md5::Md5::digest(&data)));
                d.discard_tmp(&w.id);
            }
        });
        futures_util::future::join_all(writes).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_or_long_large_body_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = DataDir::open(dir.path()).expect("open");
        let data = pattern(9 * 1024 * 1024);
        for declared in [data.len() as u64 + 1, data.len() as u64 - 1] {
            let r = write_in_chunks(&d, &data, 100_000, declared).await;
            assert!(r.is_err(), "declared {declared}: {r:?}");
        }
        assert_eq!(d.tmp_ids().expect("tmp"), Vec::<String>::new());
    }

    #[tokio::test]
    async fn an_empty_body_has_no_file_and_the_digests_of_nothing() {
        let want = Want {
            sha256: true,
            declared: Some(0),
            max: u64::MAX,
            ..Want::default()
        };
        let none: Vec<Result<Bytes, ObjectError>> = vec![Ok(Bytes::new())];
        let w = DataDir::empty(futures_util::stream::iter(none), want)
            .await
            .expect("empty");
        assert_eq!(w.id, "");
        assert_eq!(hex::encode(w.md5), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            w.sha256.map(hex::encode).as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        let some: Vec<Result<Bytes, ObjectError>> = vec![Ok(Bytes::from_static(b"x"))];
        let r = DataDir::empty(futures_util::stream::iter(some), want).await;
        assert!(matches!(r, Err(ObjectError::BodyTooLong(0))), "{r:?}");
    }

    #[test]
    fn dir_sync_is_shared_and_every_caller_returns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sync = Arc::new(DirSync::open(dir.path()).expect("open"));
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let sync = sync.clone();
                let dir = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    for i in 0..20 {
                        File::create(dir.join(format!("{t}-{i}"))).expect("create");
                        sync.sync().expect("sync");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let s = sync.state.lock().expect("state");
        assert!(!s.running);
        assert_eq!(s.ok, s.started);
        // Shared: at most one fsync per caller, usually far fewer.
        assert!(s.started <= 320, "{} fsyncs", s.started);
    }
}
