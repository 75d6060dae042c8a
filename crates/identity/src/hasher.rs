//! The password hashing pool: a fixed number of worker threads (one per core
//! by default), each keeping one argon2 working memory and reusing it.
//!
//! Every argon2id check takes 19 MiB and tens of milliseconds of one core.
//! Run on tokio's blocking pool, a burst of logins started one hash per
//! request (up to 512 threads, 19 MiB each) and the allocator kept what
//! they freed. Here at most `workers` hashes run at once; the others wait
//! for a worker up to a deadline and are then refused with
//! [`IdentityError::Busy`], so a caller can retry later instead of the
//! server running out of memory. A worker idle for `idle_release` frees its
//! memory, so an idle server holds none.

use std::sync::atomic::AtomicI64;
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use argon2::Block;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{IdentityError, IdentityResult};

/// Password hashes running now, in this process.
pub static HASHES_RUNNING: LazyLock<Gauge<i64, AtomicI64>> = LazyLock::new(Gauge::default);
/// The most password hashes that ever ran at once in this process: the
/// pool's bound, made visible on `/metrics` so tests and operators can
/// check it.
pub static HASHES_PEAK: LazyLock<Gauge<i64, AtomicI64>> = LazyLock::new(Gauge::default);
/// Password checks refused because no worker became free in time.
pub static HASHES_REFUSED: LazyLock<Counter> = LazyLock::new(Counter::default);

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Settings of the pool.
#[derive(Debug, Clone)]
pub struct HashPoolConfig {
    /// Hashes that may run at once; 0 means one per core.
    pub workers: usize,
    /// How long a password check may wait for a worker before it is refused.
    pub max_wait: Duration,
    /// A worker idle this long frees its working memory.
    pub idle_release: Duration,
}

impl Default for HashPoolConfig {
    fn default() -> Self {
        HashPoolConfig {
            workers: 0,
            max_wait: Duration::from_secs(5),
            idle_release: Duration::from_secs(1),
        }
    }
}

/// See the module documentation. Dropping the last handle ends the workers.
pub(crate) struct HashPool {
    permits: Arc<Semaphore>,
    idle: Arc<Mutex<Vec<usize>>>,
    workers: Vec<mpsc::Sender<Job>>,
    max_wait: Duration,
}

/// Gives the worker back and then the permit (field order), even if the
/// job panicked, so the next caller holding a permit always finds a worker.
struct Release {
    idle: Arc<Mutex<Vec<usize>>>,
    worker: usize,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Release {
    fn drop(&mut self) {
        HASHES_RUNNING.dec();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.push(self.worker);
    }
}

fn worker_loop(rx: mpsc::Receiver<Job>, idle_release: Duration) {
    let mut scratch: Vec<Block> = Vec::new();
    loop {
        let job = if scratch.is_empty() {
            match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        } else {
            match rx.recv_timeout(idle_release) {
                Ok(j) => j,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    scratch = Vec::new();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        };
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut scratch)));
        if run.is_err() {
            tracing::error!("a password hashing job panicked");
            scratch = Vec::new();
        }
    }
}

/// Makes glibc's malloc serve allocations of 4 MiB and more (the 19 MiB
/// argon2 working memory) with mappings of their own, unmapped when freed.
/// By default glibc raises that threshold past the size of the first such
/// block freed, after which the blocks come from per-thread arenas that
/// keep them: +44 MiB after 1,000 logins even with this pool, 7 GiB
/// without it (ADR 15). Setting the threshold turns the raising off. Once
/// per process; other allocators need nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn map_large_blocks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: mallopt only changes malloc's tuning under its own lock;
        // 4 MiB is within M_MMAP_THRESHOLD's valid range (up to 32 MiB).
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20) };
        if ok != 1 {
            tracing::warn!("cannot set malloc's mmap threshold; freed hash memory may be kept");
        }
    });
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn map_large_blocks() {}

impl HashPool {
    pub(crate) fn new(cfg: &HashPoolConfig) -> IdentityResult<HashPool> {
        map_large_blocks();
        let n = match cfg.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = mpsc::channel::<Job>();
            let idle_release = cfg.idle_release;
            std::thread::Builder::new()
                .name(format!("nuage-hash-{i}"))
                .spawn(move || worker_loop(rx, idle_release))
                .map_err(|_| IdentityError::Hash)?;
            workers.push(tx);
        }
        Ok(HashPool {
            permits: Arc::new(Semaphore::new(n)),
            idle: Arc::new(Mutex::new((0..n).collect())),
            workers,
            max_wait: cfg.max_wait,
        })
    }

    /// Runs `f` with a worker's working memory, waiting for a free worker
    /// at most the configured deadline.
    pub(crate) async fn run<T, F>(&self, f: F) -> IdentityResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    {
        let permit =
            match tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return Err(IdentityError::Hash),
                Err(_) => {
                    HASHES_REFUSED.inc();
                    return Err(IdentityError::Busy {
                        retry_after: Duration::from_secs(1),
                    });
                }
            };
        let worker = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.pop()
        };
        // A permit guarantees an idle worker: each worker is handed out
        // under a permit and given back before its permit is released.
        let worker = worker.ok_or(IdentityError::Hash)?;
        let running = HASHES_RUNNING.inc() + 1;
        if running > HASHES_PEAK.get() {
            HASHES_PEAK.set(running);
        }
        let release = Release {
            idle: self.idle.clone(),
            worker,
            _permit: permit,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |scratch| {
            let out = f(scratch);
            drop(release);
            let _ = tx.send(out);
        });
        self.workers[worker]
            .send(job)
            .map_err(|_| IdentityError::Hash)?;
        rx.await.map_err(|_| IdentityError::Hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn never_runs_more_than_its_workers_and_refuses_after_the_deadline() {
        let pool = Arc::new(
            HashPool::new(&HashPoolConfig {
                workers: 2,
                max_wait: Duration::from_millis(300),
                idle_release: Duration::from_millis(50),
            })
            .expect("pool"),
        );
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (pool, now, most) = (pool.clone(), now.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move |_| {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        let (mut ok, mut busy) = (0, 0);
        for t in tasks {
            match t.await.expect("join") {
                Ok(()) => ok += 1,
                Err(IdentityError::Busy { retry_after }) => {
                    assert!(retry_after >= Duration::from_secs(1));
                    busy += 1
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(most.load(Ordering::SeqCst), 2, "at most two at once");
        assert!(ok >= 4 && busy >= 4, "ok {ok}, busy {busy}");
        // The pool still works after refusals and a panicking job.
        assert!(pool.run(|_| -> u8 { panic!("boom") }).await.is_err());
        assert_eq!(pool.run(|s| s.len()).await.expect("run"), 0);
        assert_eq!(pool.run(|_| 7).await.expect("run"), 7);
    }
}
