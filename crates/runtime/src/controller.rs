//! The controller: feeds keys to a [`Reconciler`] and keeps its promises.
//!
//! A [`Controller`] is built once per resource kind, then [`Controller::run`]
//! until a shutdown signal. Keys come from three sources: [`Handle::trigger`]
//! (the API, after committing a change), a periodic full resync through a
//! user-supplied lister (so every object is looked at again every interval,
//! whatever was lost), and optionally a revision watch that resyncs as soon
//! as the store's counter for an area moves (changes made by another
//! controller process). One driver loop owns the [`WorkQueue`] decisions and
//! a `JoinSet` of reconcile tasks: at most `concurrency` run at once, each in
//! its own task so that a panic comes back as a `JoinError` and is handled
//! like an error instead of killing the controller.
//!
//! [`WorkQueue`]: crate::queue::WorkQueue

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::queue::{Outcome, WorkQueue};
use crate::reconciler::{Action, Reconciler};

/// The error a lister or a revision probe may return; it is only logged.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Lister<K> = Arc<dyn Fn() -> BoxFuture<Result<Vec<K>, BoxError>> + Send + Sync>;
type Probe = Arc<dyn Fn() -> BoxFuture<Result<i64, BoxError>> + Send + Sync>;

/// Counters of a controller since it was built, for logs, tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Reconciles that finished, whatever their outcome.
    pub reconciles: u64,
    /// Reconciles that returned an error or panicked.
    pub errors: u64,
    /// Of the errors, those that were panics.
    pub panics: u64,
    /// Full resyncs whose listing succeeded.
    pub resyncs: u64,
    /// Reconciles running now.
    pub running: usize,
    /// Keys waiting for a worker or for a requeue/back-off deadline.
    pub pending: usize,
}

#[derive(Default)]
struct Counters {
    reconciles: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    resyncs: AtomicU64,
    running: AtomicUsize,
}

/// State shared by the driver loop, the sources and every [`Handle`].
struct Shared<K> {
    queue: Mutex<WorkQueue<K>>,
    /// A key became ready: the driver loop should look at the queue.
    wake: Notify,
    /// Someone asked for a full resync now.
    resync_now: Notify,
    counters: Counters,
}

impl<K: Clone + Eq + std::hash::Hash> Shared<K> {
    fn queue(&self) -> MutexGuard<'_, WorkQueue<K>> {
        // No code panics while holding the lock; if some day one does, the
        // queue is still consistent enough to keep scheduling.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn trigger_all(&self, keys: impl IntoIterator<Item = K>) {
        let woke = {
            let mut q = self.queue();
            keys.into_iter().fold(false, |woke, k| q.trigger(k) | woke)
        };
        if woke {
            self.wake.notify_one();
        }
    }
}

/// A cheap, cloneable way to reach a running (or not yet running) controller.
pub struct Handle<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Handle<K> {
    fn clone(&self) -> Self {
        Handle {
            shared: self.shared.clone(),
        }
    }
}

impl<K: Clone + Eq + std::hash::Hash> fmt::Debug for Handle<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("stats", &self.stats())
            .finish()
    }
}

impl<K: Clone + Eq + std::hash::Hash> Handle<K> {
    /// Asks for `key` to be reconciled soon. Call it after the change that
    /// motivates it has been committed. Triggers for a key already waiting
    /// are merged into one run; a trigger for a key being reconciled earns
    /// it exactly one more run once the current one ends; a trigger wakes a
    /// key sleeping in a requeue or back-off delay at once. Ignored once the
    /// controller is shutting down. Never blocks on I/O.
    pub fn trigger(&self, key: K) {
        self.shared.trigger_all(std::iter::once(key));
    }

    /// [`Handle::trigger`] for many keys, taking the queue lock once.
    pub fn trigger_all(&self, keys: impl IntoIterator<Item = K>) {
        self.shared.trigger_all(keys);
    }

    /// Asks for a full resync (list every key, trigger each) now rather
    /// than at the next interval. Does nothing without a lister.
    pub fn resync(&self) {
        self.shared.resync_now.notify_one();
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            reconciles: c.reconciles.load(Relaxed),
            errors: c.errors.load(Relaxed),
            panics: c.panics.load(Relaxed),
            resyncs: c.resyncs.load(Relaxed),
            running: c.running.load(Relaxed),
            pending: self.shared.queue().pending(),
        }
    }
}

/// Runs a [`Reconciler`] over the keys of one resource kind.
///
/// ```text
/// let controller = Controller::new("instances", InstanceReconciler::new(db.clone()))
///     .concurrency(8)
///     .resync(Duration::from_secs(300), move || list_instance_ids(db.clone()))
///     .watch_store_revision(db.clone(), "compute", Duration::from_secs(1));
/// let handle = controller.handle(); // given to the API, which triggers keys
/// tokio::spawn(controller.run(shutdown_rx));
/// ```
pub struct Controller<R: Reconciler> {
    name: &'static str,
    reconciler: Arc<R>,
    shared: Arc<Shared<R::Key>>,
    concurrency: usize,
    backoff: Backoff,
    resync: Option<(Duration, Lister<R::Key>)>,
    watch: Option<(Duration, Probe)>,
}

impl<R: Reconciler> Controller<R> {
    /// A controller named `name` (in logs) with 4 workers, the default
    /// [`Backoff`] and no source but triggers.
    pub fn new(name: &'static str, reconciler: R) -> Self {
        Controller {
            name,
            reconciler: Arc::new(reconciler),
            shared: Arc::new(Shared {
                queue: Mutex::new(WorkQueue::new()),
                wake: Notify::new(),
                resync_now: Notify::new(),
                counters: Counters::default(),
            }),
            concurrency: 4,
            backoff: Backoff::default(),
            resync: None,
            watch: None,
        }
    }

    /// At most `n` reconciles (of different keys) run at once; at least 1.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Retry failed keys after `base`, doubling up to `max`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = Backoff { base, max };
        self
    }

    /// Level triggering: at start, and then every `every` (at least 1 ms),
    /// call `list` and trigger every key it returns. This is what repairs a
    /// lost trigger, a crash between a commit and its trigger, or a world
    /// that drifted; `list` should name every object that may need work,
    /// including those being deleted. A failed listing is logged and tried
    /// again at the next interval.
    pub fn resync<F, Fut, E>(mut self, every: Duration, list: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<R::Key>, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let list: Lister<R::Key> = Arc::new(move || {
            let fut = list();
            Box::pin(async move { fut.await.map_err(Into::into) })
        });
        self.resync = Some((every.max(Duration::from_millis(1)), list));
        self
    }

    /// Calls `probe` every `poll` and runs a full resync whenever the value
    /// it returns differs from the one seen at the last resync. Meant for a
    /// change counter such as the store's revisions (see
    /// [`Controller::watch_store_revision`]); needs [`Controller::resync`].
    pub fn resync_on_change<F, Fut, E>(mut self, poll: Duration, probe: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<i64, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let probe: Probe = Arc::new(move || {
            let fut = probe();
            Box::pin(async move { fut.await.map_err(Into::into) })
        });
        self.watch = Some((poll.max(Duration::from_millis(1)), probe));
        self
    }

    /// Resyncs whenever `Db::revision(area)` moves, polled every `poll`, so
    /// that a change committed by another controller sharing the database
    /// is acted on within `poll` instead of at the next periodic resync.
    pub fn watch_store_revision(
        self,
        db: nuage_store::Db,
        area: impl Into<String>,
        poll: Duration,
    ) -> Self {
        let area: Arc<str> = area.into().into();
        self.resync_on_change(poll, move || {
            let db = db.clone();
            let area = area.clone();
            async move { db.revision(&area).await }
        })
    }

    /// The handle to trigger keys with and read stats from; take it before
    /// [`Controller::run`].
    pub fn handle(&self) -> Handle<R::Key> {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// Runs until `shutdown` becomes `true` (or its sender is dropped, so a
    /// controller never outlives its owner), then stops taking work and
    /// returns once every running reconcile has finished. Dropping the
    /// returned future instead aborts everything at once, as a crash would;
    /// the next controller's first resync picks up what was left.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let Controller {
            name,
            reconciler,
            shared,
            concurrency,
            backoff,
            resync,
            watch,
        } = self;
        let mut sources = JoinSet::new();
        match (resync, watch) {
            (Some((every, list)), watch) => {
                sources.spawn(resync_loop(name, shared.clone(), every, list, watch));
            }
            (None, Some(_)) => tracing::warn!(
                controller = name,
                "a revision watch without a resync lister does nothing"
            ),
            (None, None) => {}
        }
        let mut tasks: JoinSet<Result<Action, R::Error>> = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, R::Key> = HashMap::new();
        let mut stopping = shutdown_requested(&shutdown, Ok(()));
        let mut closed = false;
        tracing::debug!(controller = name, concurrency, "controller started");
        loop {
            if stopping && !closed {
                closed = true;
                sources.abort_all();
                shared.queue().close();
            }
            let next_due = {
                let mut q = shared.queue();
                q.promote_due(Instant::now());
                while !stopping && tasks.len() < concurrency {
                    let Some(key) = q.pop_ready() else { break };
                    let span = tracing::info_span!("reconcile", controller = name, key = ?key);
                    let r = reconciler.clone();
                    let k = key.clone();
                    let id = tasks
                        .spawn(async move { r.reconcile(&k).await }.instrument(span))
                        .id();
                    running.insert(id, key);
                }
                q.next_due()
            };
            shared.counters.running.store(tasks.len(), Relaxed);
            if stopping && tasks.is_empty() {
                break;
            }
            tokio::select! {
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    finish(name, &shared, &backoff, &mut running, joined);
                }
                _ = shared.wake.notified(), if !stopping => {}
                _ = sleep_until(next_due), if !stopping => {}
                changed = shutdown.changed(), if !stopping => {
                    stopping = shutdown_requested(&shutdown, changed);
                    if stopping {
                        tracing::info!(
                            controller = name,
                            running = tasks.len(),
                            "shutting down; waiting for running reconciles"
                        );
                    }
                }
            }
        }
        shared.counters.running.store(0, Relaxed);
        tracing::debug!(controller = name, "controller stopped");
    }
}

fn shutdown_requested(
    rx: &watch::Receiver<bool>,
    changed: Result<(), watch::error::RecvError>,
) -> bool {
    changed.is_err() || *rx.borrow()
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Books a finished reconcile task: counters, log, and the queue's next step.
fn finish<K, E>(
    name: &'static str,
    shared: &Shared<K>,
    backoff: &Backoff,
    running: &mut HashMap<tokio::task::Id, K>,
    joined: Result<(tokio::task::Id, Result<Action, E>), JoinError>,
) where
    K: Clone + Eq + std::hash::Hash + fmt::Debug,
    E: std::error::Error,
{
    let c = &shared.counters;
    c.reconciles.fetch_add(1, Relaxed);
    let (id, outcome, failure) = match joined {
        Ok((id, Ok(Action::Done))) => (id, Outcome::Done, None),
        Ok((id, Ok(Action::RequeueAfter(d)))) => (id, Outcome::RequeueAfter(d), None),
        Ok((id, Err(e))) => (id, Outcome::Failed, Some((chain(&e), false))),
        Err(e) => {
            let id = e.id();
            let why = if e.is_panic() {
                c.panics.fetch_add(1, Relaxed);
                format!("panicked: {}", panic_message(e.into_panic()))
            } else {
                "cancelled".to_string()
            };
            (id, Outcome::Failed, Some((why, true)))
        }
    };
    let Some(key) = running.remove(&id) else {
        tracing::error!(controller = name, "a reconcile task finished with no key");
        return;
    };
    let retry = shared
        .queue()
        .finish(&key, outcome, Instant::now(), backoff);
    match failure {
        None => {}
        Some((error, false)) => {
            c.errors.fetch_add(1, Relaxed);
            tracing::warn!(controller = name, key = ?key, error, retry_in = ?retry, "reconcile failed");
        }
        Some((error, true)) => {
            // A bug rather than a condition of the world: louder.
            c.errors.fetch_add(1, Relaxed);
            tracing::error!(controller = name, key = ?key, error, retry_in = ?retry, "reconcile task died");
        }
    }
}

/// An error and its sources, `outer: inner: root`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => match p.downcast::<&'static str>() {
            Ok(s) => (*s).to_string(),
            Err(_) => "(no message)".to_string(),
        },
    }
}

async fn tick(interval: &mut Option<(Interval, Probe)>) -> Option<Probe> {
    match interval {
        Some((i, probe)) => {
            i.tick().await;
            Some(probe.clone())
        }
        None => std::future::pending().await,
    }
}

/// The resync source: lists every key at start, every `every`, on
/// [`Handle::resync`], and whenever the watched counter moves.
async fn resync_loop<K>(
    name: &'static str,
    shared: Arc<Shared<K>>,
    every: Duration,
    list: Lister<K>,
    watch: Option<(Duration, Probe)>,
) where
    K: Clone + Eq + std::hash::Hash + Send + 'static,
{
    let mut periodic = tokio::time::interval(every);
    periodic.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut watch = watch.map(|(poll, probe)| {
        let mut i = tokio::time::interval(poll);
        i.set_missed_tick_behavior(MissedTickBehavior::Delay);
        (i, probe)
    });
    let probe_of = |w: &Option<(Interval, Probe)>| w.as_ref().map(|(_, p)| p.clone());
    // The counter value the last successful listing is known to include.
    let mut seen: Option<i64> = None;
    loop {
        let observed = tokio::select! {
            biased;
            _ = periodic.tick() => None,
            _ = shared.resync_now.notified() => None,
            Some(probe) = tick(&mut watch) => match probe().await {
                Ok(rev) if Some(rev) == seen => continue,
                Ok(rev) => Some(rev),
                Err(e) => {
                    tracing::warn!(controller = name, error = chain(&*e), "reading the change counter failed");
                    continue;
                }
            },
        };
        // Read the counter *before* listing: a change committed after this
        // read moves it again and is caught at the next poll.
        let rev = match (observed, probe_of(&watch)) {
            (Some(rev), _) => Some(rev),
            (None, Some(probe)) => probe().await.ok(),
            (None, None) => None,
        };
        match list().await {
            Ok(keys) => {
                let n = keys.len();
                shared.trigger_all(keys);
                shared.counters.resyncs.fetch_add(1, Relaxed);
                seen = rev;
                tracing::debug!(controller = name, keys = n, "resync");
            }
            Err(e) => tracing::warn!(
                controller = name,
                error = chain(&*e),
                "listing keys for a resync failed; trying again at the next one"
            ),
        }
        periodic.reset();
    }
}
