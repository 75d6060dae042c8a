//! The runtime's promises, one test each, on paused virtual time so that
//! delays are exact and the suite takes milliseconds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nuage_runtime::{Action, Controller, Handle, Reconciler, Stats};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

#[derive(Debug)]
struct Failed(&'static str);
impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for Failed {}

type Fut = Pin<Box<dyn Future<Output = Result<Action, Failed>> + Send>>;

/// What every test reconciler records: each call (key, when), and whether a
/// key ever ran beside itself or more keys ran than allowed.
#[derive(Default)]
struct Record {
    calls: Mutex<Vec<(u32, Instant)>>,
    inflight: Mutex<HashSet<u32>>,
    overlap: AtomicBool,
    parallel: AtomicUsize,
    max_parallel: AtomicUsize,
}

impl Record {
    fn runs(&self, key: u32) -> Vec<Instant> {
        let calls = self.calls.lock().unwrap();
        calls.iter().filter(|c| c.0 == key).map(|c| c.1).collect()
    }
    fn count(&self, key: u32) -> usize {
        self.runs(key).len()
    }
}

/// Leaves the in-flight set even when the reconcile panics.
struct Leave<'a>(&'a Record, u32);
impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.inflight.lock().unwrap().remove(&self.1);
        self.0.parallel.fetch_sub(1, SeqCst);
    }
}

/// A reconciler whose behaviour is a closure of (key, how many runs before).
struct Scripted<F> {
    rec: Arc<Record>,
    behave: F,
}

impl<F> Reconciler for Scripted<F>
where
    F: Fn(u32, usize) -> Fut + Send + Sync + 'static,
{
    type Key = u32;
    type Error = Failed;

    async fn reconcile(&self, key: &u32) -> Result<Action, Failed> {
        let n = {
            let mut calls = self.rec.calls.lock().unwrap();
            calls.push((*key, Instant::now()));
            calls.iter().filter(|c| c.0 == *key).count() - 1
        };
        if !self.rec.inflight.lock().unwrap().insert(*key) {
            self.rec.overlap.store(true, SeqCst);
        }
        let p = self.rec.parallel.fetch_add(1, SeqCst) + 1;
        self.rec.max_parallel.fetch_max(p, SeqCst);
        let _leave = Leave(&self.rec, *key);
        (self.behave)(*key, n).await
    }
}

fn scripted<F>(behave: F) -> (Controller<Scripted<F>>, Arc<Record>)
where
    F: Fn(u32, usize) -> Fut + Send + Sync + 'static,
{
    let rec = Arc::new(Record::default());
    let c = Controller::new(
        "test",
        Scripted {
            rec: rec.clone(),
            behave,
        },
    );
    (c, rec)
}

struct Running {
    handle: Handle<u32>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

fn start<R: Reconciler<Key = u32>>(c: Controller<R>) -> Running {
    let handle = c.handle();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(c.run(rx));
    Running { handle, stop, task }
}

fn idle(s: Stats) -> bool {
    s.running == 0 && s.pending == 0
}

/// Polls `cond` every 10 ms of (virtual) time, failing after 10 minutes.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

fn done() -> Fut {
    Box::pin(async { Ok(Action::Done) })
}

#[tokio::test(start_paused = true)]
async fn never_concurrent_with_itself_and_at_most_concurrency_at_once() {
    let (c, rec) = scripted(|_, _| {
        Box::pin(async {
            sleep(Duration::from_millis(700)).await;
            Ok(Action::Done)
        })
    });
    let r = start(c.concurrency(3));
    // Hammer every key with triggers while they run.
    for _ in 0..50 {
        r.handle.trigger_all(0..10);
        sleep(Duration::from_millis(100)).await;
    }
    wait_until("idle", || idle(r.handle.stats())).await;
    assert!(!rec.overlap.load(SeqCst), "a key ran beside itself");
    assert_eq!(rec.max_parallel.load(SeqCst), 3);
    let s = r.handle.stats();
    assert_eq!(s.errors, 0);
    assert_eq!(s.reconciles as usize, rec.calls.lock().unwrap().len());
}

#[tokio::test(start_paused = true)]
async fn triggers_for_a_queued_key_coalesce() {
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    let (c, rec) = scripted(move |key, _| {
        let g = g.clone();
        Box::pin(async move {
            if key == 0 {
                g.acquire().await.unwrap().forget();
            }
            Ok(Action::Done)
        })
    });
    let r = start(c.concurrency(1));
    r.handle.trigger(0);
    wait_until("key 0 runs", || rec.count(0) == 1).await;
    for _ in 0..5 {
        r.handle.trigger(1);
    }
    assert_eq!(r.handle.stats().pending, 1);
    gate.add_permits(1);
    wait_until("idle", || idle(r.handle.stats())).await;
    assert_eq!((rec.count(0), rec.count(1)), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_trigger_while_running_earns_exactly_one_more_run() {
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    let (c, rec) = scripted(move |_, n| {
        let g = g.clone();
        Box::pin(async move {
            if n == 0 {
                g.acquire().await.unwrap().forget();
            }
            Ok(Action::Done)
        })
    });
    let r = start(c);
    r.handle.trigger(7);
    wait_until("first run", || rec.count(7) == 1).await;
    for _ in 0..3 {
        r.handle.trigger(7);
    }
    sleep(Duration::from_secs(1)).await;
    assert_eq!(rec.count(7), 1, "not beside the running one");
    gate.add_permits(1);
    wait_until("idle", || idle(r.handle.stats())).await;
    sleep(Duration::from_secs(60)).await;
    assert_eq!(rec.count(7), 2);
    assert!(!rec.overlap.load(SeqCst));
}

fn gaps(runs: &[Instant]) -> Vec<u64> {
    runs.windows(2)
        .map(|w| (w[1] - w[0]).as_millis() as u64)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn requeue_after_requeues_and_done_stops() {
    let (c, rec) = scripted(|_, n| {
        Box::pin(async move {
            Ok(if n < 3 {
                Action::RequeueAfter(Duration::from_secs(10))
            } else {
                Action::Done
            })
        })
    });
    let r = start(c);
    r.handle.trigger(1);
    sleep(Duration::from_secs(3600)).await;
    let runs = rec.runs(1);
    assert_eq!(gaps(&runs), [10_000, 10_000, 10_000]);
    assert!(idle(r.handle.stats()));
}

#[tokio::test(start_paused = true)]
async fn errors_back_off_exponentially_and_reset_after_success() {
    let (c, rec) = scripted(|_, n| {
        Box::pin(async move {
            match n {
                0..=5 | 7 => Err(Failed("the node is unreachable")),
                6 => Ok(Action::RequeueAfter(Duration::from_secs(30))),
                _ => Ok(Action::Done),
            }
        })
    });
    let r = start(c.backoff(Duration::from_secs(1), Duration::from_secs(8)));
    r.handle.trigger(1);
    sleep(Duration::from_secs(3600)).await;
    let runs = rec.runs(1);
    assert_eq!(
        gaps(&runs),
        [1_000, 2_000, 4_000, 8_000, 8_000, 8_000, 30_000, 1_000]
    );
    let s = r.handle.stats();
    assert_eq!((s.reconciles, s.errors, s.panics), (9, 7, 0));
    assert!(idle(s));
}

#[tokio::test(start_paused = true)]
async fn a_trigger_cuts_a_back_off_short() {
    let (c, rec) = scripted(|_, n| {
        Box::pin(async move {
            if n == 0 {
                Err(Failed("not yet"))
            } else {
                Ok(Action::Done)
            }
        })
    });
    let r = start(c.backoff(Duration::from_secs(60), Duration::from_secs(60)));
    r.handle.trigger(1);
    wait_until("first run", || rec.count(1) == 1).await;
    sleep(Duration::from_secs(1)).await;
    r.handle.trigger(1);
    wait_until("idle", || idle(r.handle.stats())).await;
    assert!(gaps(&rec.runs(1))[0] < 2_000);
    sleep(Duration::from_secs(120)).await;
    assert_eq!(rec.count(1), 2, "the stale back-off deadline runs nothing");
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_an_error_not_a_dead_controller() {
    let (c, rec) = scripted(|key, n| {
        Box::pin(async move {
            if key == 0 && n == 0 {
                panic!("driver bug");
            }
            Ok(Action::Done)
        })
    });
    let r = start(c.backoff(Duration::from_secs(1), Duration::from_secs(1)));
    r.handle.trigger_all([0, 1]);
    wait_until("idle", || idle(r.handle.stats())).await;
    assert_eq!(
        (rec.count(0), rec.count(1)),
        (2, 1),
        "retried after the panic"
    );
    r.handle.trigger(2);
    wait_until("key 2 runs", || rec.count(2) == 1).await;
    let s = r.handle.stats();
    assert_eq!((s.reconciles, s.errors, s.panics), (4, 1, 1));
    assert!(!r.task.is_finished());
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_running_reconciles_and_takes_no_new_work() {
    let finished = Arc::new(AtomicUsize::new(0));
    let f = finished.clone();
    let (c, rec) = scripted(move |_, _| {
        let f = f.clone();
        Box::pin(async move {
            sleep(Duration::from_secs(5)).await;
            f.fetch_add(1, SeqCst);
            Ok(Action::RequeueAfter(Duration::ZERO))
        })
    });
    let r = start(c.concurrency(2));
    r.handle.trigger_all([0, 1, 2]);
    wait_until("two run", || rec.calls.lock().unwrap().len() == 2).await;
    let t0 = Instant::now();
    r.stop.send(true).unwrap();
    r.handle.trigger(3);
    r.task.await.unwrap();
    assert!(Instant::now() - t0 >= Duration::from_secs(4));
    assert_eq!(finished.load(SeqCst), 2, "running reconciles finished");
    assert_eq!(rec.calls.lock().unwrap().len(), 2, "nothing new started");
    assert_eq!(r.handle.stats().running, 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_shutdown_sender_stops_the_controller() {
    let (c, _rec) = scripted(|_, _| done());
    let r = start(c);
    drop(r.stop);
    tokio::time::timeout(Duration::from_secs(1), r.task)
        .await
        .expect("stopped")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn resync_reconciles_every_listed_key_every_interval() {
    let (c, rec) = scripted(|_, _| done());
    let r = start(c.resync(Duration::from_secs(60), || async {
        Ok::<_, Failed>(vec![0, 1, 2, 3, 4])
    }));
    sleep(Duration::from_secs(150)).await;
    for k in 0..5 {
        assert_eq!(rec.count(k), 3, "at 0 s, 60 s and 120 s");
    }
    assert_eq!(r.handle.stats().resyncs, 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_listing_is_retried_at_the_next_resync() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, rec) = scripted(|_, _| done());
    let r = start(c.resync(Duration::from_secs(60), move || {
        let n = calls.fetch_add(1, SeqCst);
        async move {
            if n == 0 {
                Err(Failed("database is down"))
            } else {
                Ok(vec![9])
            }
        }
    }));
    sleep(Duration::from_secs(30)).await;
    assert_eq!(rec.count(9), 0);
    sleep(Duration::from_secs(60)).await;
    assert_eq!(rec.count(9), 1);
    assert_eq!(r.handle.stats().resyncs, 1);
}

#[tokio::test(start_paused = true)]
async fn a_moving_counter_triggers_a_resync() {
    let counter = Arc::new(AtomicI64::new(5));
    let keys = Arc::new(Mutex::new(vec![0u32]));
    let (c, rec) = scripted(|_, _| done());
    let (k, n) = (keys.clone(), counter.clone());
    let r = start(
        c.resync(Duration::from_secs(3600), move || {
            let keys = k.lock().unwrap().clone();
            async move { Ok::<_, Failed>(keys) }
        })
        .resync_on_change(Duration::from_secs(1), move || {
            let v = n.load(SeqCst);
            async move { Ok::<_, Failed>(v) }
        }),
    );
    sleep(Duration::from_secs(10)).await;
    assert_eq!(
        r.handle.stats().resyncs,
        1,
        "no resync while the counter rests"
    );
    keys.lock().unwrap().push(1);
    counter.fetch_add(1, SeqCst);
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(rec.count(1), 1, "the other controller's change was noticed");
    assert_eq!(rec.count(0), 2);
    assert_eq!(r.handle.stats().resyncs, 2);
}

/// The real store's counter, on SQLite, in real time.
#[tokio::test]
async fn a_store_revision_bump_triggers_a_resync() {
    let t = nuage_store::testing::fresh("sqlite").await.unwrap();
    let db = t.db.clone();
    let keys = Arc::new(Mutex::new(vec![0u32]));
    let k = keys.clone();
    let (c, rec) = scripted(|_, _| done());
    let r = start(
        c.resync(Duration::from_secs(3600), move || {
            let keys = k.lock().unwrap().clone();
            async move { Ok::<_, Failed>(keys) }
        })
        .watch_store_revision(db.clone(), "runtime-test", Duration::from_millis(20)),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while rec.count(0) == 0 {
        assert!(Instant::now() < deadline, "no initial resync");
        sleep(Duration::from_millis(10)).await;
    }
    keys.lock().unwrap().push(1);
    let mut tx = db.begin().await.unwrap();
    nuage_store::Db::bump_revision(&mut tx, "runtime-test")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    while rec.count(1) == 0 {
        assert!(Instant::now() < deadline, "the bump was not noticed");
        sleep(Duration::from_millis(10)).await;
    }
    r.stop.send(true).unwrap();
    r.task.await.unwrap();
}
