//! Level triggering at scale: a fake world of 1,000 objects whose reconciler
//! fails 30% of the time converges, and so does one whose controller crashed
//! half-way (a new controller's resync finds everything that was left).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nuage_runtime::{Action, Controller, Handle, Reconciler};
use tokio::sync::watch;
use tokio::time::{sleep, Instant};

const KEYS: u32 = 1_000;

#[derive(Debug)]
struct Flaky;
impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the (fake) node did not answer")
    }
}
impl std::error::Error for Flaky {}

/// What a fake node reports for an object: still starting, or up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Observed {
    Starting(u32),
    Running(u32),
}

/// Desired state (the store) and actual state (the nodes).
#[derive(Default)]
struct World {
    desired: HashMap<u32, u32>,
    actual: HashMap<u32, Observed>,
}

impl World {
    fn converged(&self) -> bool {
        self.actual.len() == self.desired.len()
            && self
                .desired
                .iter()
                .all(|(k, v)| self.actual.get(k) == Some(&Observed::Running(*v)))
    }
    fn keys(&self) -> Vec<u32> {
        let all: BTreeSet<u32> = self
            .desired
            .keys()
            .chain(self.actual.keys())
            .copied()
            .collect();
        all.into_iter().collect()
    }
}

/// xorshift64: deterministic failures without a dependency.
struct Rng(AtomicU64);
impl Rng {
    fn percent(&self) -> u64 {
        let mut x = self.0.load(SeqCst);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.store(x, SeqCst);
        x % 100
    }
}

struct Fake {
    world: Arc<Mutex<World>>,
    rng: Arc<Rng>,
}

impl Reconciler for Fake {
    type Key = u32;
    type Error = Flaky;

    /// One idempotent step: start what is missing or wrong, report started
    /// objects as running, remove what is no longer wanted.
    async fn reconcile(&self, key: &u32) -> Result<Action, Flaky> {
        sleep(Duration::from_millis(20)).await; // a round trip to the node
        if self.rng.percent() < 30 {
            return Err(Flaky);
        }
        let mut w = self.world.lock().unwrap();
        let want = w.desired.get(key).copied();
        let have = w.actual.get(key).copied();
        Ok(match (want, have) {
            (Some(d), Some(Observed::Running(a))) if a == d => Action::Done,
            (Some(d), Some(Observed::Starting(a))) if a == d => {
                w.actual.insert(*key, Observed::Running(d));
                Action::Done
            }
            (Some(d), _) => {
                w.actual.insert(*key, Observed::Starting(d));
                Action::RequeueAfter(Duration::from_secs(2))
            }
            (None, Some(_)) => {
                w.actual.remove(key);
                Action::Done
            }
            (None, None) => Action::Done,
        })
    }
}

fn world() -> Arc<Mutex<World>> {
    let mut w = World::default();
    for k in 0..KEYS {
        w.desired.insert(k, k * 7);
    }
    // Drift: wrong versions running, and leftovers nobody wants.
    for k in (0..KEYS).step_by(10) {
        w.actual.insert(k, Observed::Running(1));
    }
    for k in KEYS..KEYS + 100 {
        w.actual.insert(k, Observed::Running(0));
    }
    Arc::new(Mutex::new(w))
}

fn controller(world: &Arc<Mutex<World>>, seed: u64) -> Controller<Fake> {
    let list_world = world.clone();
    Controller::new(
        "fake",
        Fake {
            world: world.clone(),
            rng: Arc::new(Rng(AtomicU64::new(seed))),
        },
    )
    .concurrency(16)
    .backoff(Duration::from_millis(100), Duration::from_secs(5))
    .resync(Duration::from_secs(30), move || {
        let keys = list_world.lock().unwrap().keys();
        async move { Ok::<_, Flaky>(keys) }
    })
}

async fn converge(world: &Arc<Mutex<World>>, handle: &Handle<u32>) -> Duration {
    let t0 = Instant::now();
    while !world.lock().unwrap().converged() {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "not converged after 10 minutes: {:?}",
            handle.stats()
        );
        sleep(Duration::from_secs(1)).await;
    }
    t0.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_flaky_world_of_a_thousand_keys_converges() {
    let world = world();
    let c = controller(&world, 0x9E37_79B9_7F4A_7C15);
    let handle = c.handle();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(c.run(rx));

    sleep(Duration::from_secs(3)).await;
    // The API changes 100 objects and triggers them, mid-flight.
    {
        let mut w = world.lock().unwrap();
        for k in 0..100 {
            w.desired.insert(k, 42);
        }
        w.desired.remove(&999);
    }
    handle.trigger_all((0..100).chain([999]));

    let took = converge(&world, &handle).await;
    let s = handle.stats();
    assert!(s.errors > 300, "the world was flaky: {s:?}");
    assert!(took < Duration::from_secs(120), "took {took:?}: {s:?}");
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn after_a_crash_a_new_controller_leaves_no_key_behind() {
    let world = world();
    let first = controller(&world, 7);
    let handle = first.handle();
    let (_stop, rx) = watch::channel(false);
    let task = tokio::spawn(first.run(rx));
    while handle.stats().reconciles < 400 {
        sleep(Duration::from_millis(10)).await;
    }
    // kill -9: reconciles in flight are dropped mid-way.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(
        !world.lock().unwrap().converged(),
        "crashed too late to matter"
    );
    // Changes committed while no controller runs: their triggers are lost.
    {
        let mut w = world.lock().unwrap();
        for k in 500..550 {
            w.desired.insert(k, 1234);
        }
        w.desired.insert(5_000, 1);
    }

    let second = controller(&world, 11);
    let handle = second.handle();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(second.run(rx));
    converge(&world, &handle).await;
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn after_a_graceful_shutdown_a_new_controller_finishes_the_job() {
    let world = world();
    let first = controller(&world, 3);
    let handle = first.handle();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(first.run(rx));
    while handle.stats().reconciles < 300 {
        sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(handle.stats().running, 0);
    assert!(!world.lock().unwrap().converged());

    let second = controller(&world, 5);
    let handle = second.handle();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(second.run(rx));
    converge(&world, &handle).await;
    stop.send(true).unwrap();
    task.await.unwrap();
}
