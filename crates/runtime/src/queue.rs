//! The work queue: which keys are waiting, running or sleeping, without any I/O.
//!
//! All of the runtime's promises about a single key are kept here, in one
//! plain data structure that the controller guards with a mutex: a key is in
//! at most one of three states (queued, running, delayed), so it can never be
//! handed out twice at once; a trigger for a queued key is absorbed; a trigger
//! for a running key sets a `dirty` flag that earns it exactly one more run;
//! a delayed key (requeued or backing off) is woken by its deadline or by a
//! trigger, whichever comes first. Time is passed in by the caller, which
//! keeps this module deterministic and unit-testable.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

use crate::backoff::Backoff;

/// How a run of a key ended, as far as scheduling is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Success; nothing to do until the key is triggered again.
    Done,
    /// Success; run again after this long.
    RequeueAfter(Duration),
    /// Error or panic; run again after the back-off delay.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In `ready`, waiting for a free worker.
    Queued,
    /// Handed out by `pop_ready`, not yet `finish`ed.
    Running,
    /// Sleeping until the instant (an entry with this instant is in `delayed`).
    Delayed(Instant),
}

#[derive(Debug)]
struct Entry {
    state: State,
    /// Triggered while running: run once more as soon as it finishes.
    dirty: bool,
    /// Consecutive failures, for the back-off; zero after any success.
    failures: u32,
}

/// A deadline in the min-heap. Entries are never removed early: an entry
/// whose key has moved on (triggered, finished) no longer matches the key's
/// `State::Delayed(at)` and is skipped when it surfaces.
#[derive(Debug)]
struct Deadline<K> {
    at: Instant,
    seq: u64,
    key: K,
}

impl<K> PartialEq for Deadline<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<K> Eq for Deadline<K> {}
impl<K> PartialOrd for Deadline<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Deadline<K> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Keys known to the controller; a key that is done and untriggered is
/// forgotten, so the queue holds only work in progress.
#[derive(Debug)]
pub(crate) struct WorkQueue<K> {
    ready: VecDeque<K>,
    entries: HashMap<K, Entry>,
    delayed: BinaryHeap<Deadline<K>>,
    seq: u64,
    closed: bool,
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    pub(crate) fn new() -> Self {
        WorkQueue {
            ready: VecDeque::new(),
            entries: HashMap::new(),
            delayed: BinaryHeap::new(),
            seq: 0,
            closed: false,
        }
    }

    /// Asks for `key` to be reconciled as soon as possible. Returns whether a
    /// key became ready (so a worker should be woken).
    pub(crate) fn trigger(&mut self, key: K) -> bool {
        if self.closed {
            return false;
        }
        match self.entries.get_mut(&key) {
            None => {
                self.entries.insert(
                    key.clone(),
                    Entry {
                        state: State::Queued,
                        dirty: false,
                        failures: 0,
                    },
                );
                self.ready.push_back(key);
                true
            }
            Some(e) => match e.state {
                State::Queued => false,
                State::Running => {
                    e.dirty = true;
                    false
                }
                State::Delayed(_) => {
                    e.state = State::Queued;
                    self.ready.push_back(key);
                    true
                }
            },
        }
    }

    /// Stops accepting triggers (shutdown); work already handed out may
    /// still be `finish`ed.
    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    /// Moves every key whose deadline is at or before `now` to the ready queue.
    pub(crate) fn promote_due(&mut self, now: Instant) {
        while let Some(top) = self.delayed.peek() {
            if top.at > now {
                break;
            }
            let Some(d) = self.delayed.pop() else { break };
            if let Some(e) = self.entries.get_mut(&d.key) {
                if e.state == State::Delayed(d.at) {
                    e.state = State::Queued;
                    self.ready.push_back(d.key);
                }
            }
        }
    }

    /// The earliest live deadline, to sleep until; stale entries on top of
    /// the heap are dropped on the way.
    pub(crate) fn next_due(&mut self) -> Option<Instant> {
        while let Some(top) = self.delayed.peek() {
            let live = self
                .entries
                .get(&top.key)
                .is_some_and(|e| e.state == State::Delayed(top.at));
            if live {
                return Some(top.at);
            }
            self.delayed.pop();
        }
        None
    }

    /// Hands out the next ready key and marks it running.
    pub(crate) fn pop_ready(&mut self) -> Option<K> {
        while let Some(key) = self.ready.pop_front() {
            if let Some(e) = self.entries.get_mut(&key) {
                if e.state == State::Queued {
                    e.state = State::Running;
                    e.dirty = false;
                    return Some(key);
                }
            }
        }
        None
    }

    /// Records how the run of `key` ended and schedules what follows.
    /// Returns the back-off delay when the run failed.
    pub(crate) fn finish(
        &mut self,
        key: &K,
        outcome: Outcome,
        now: Instant,
        backoff: &Backoff,
    ) -> Option<Duration> {
        let e = self.entries.get_mut(key)?;
        if e.state != State::Running {
            return None;
        }
        let (after, retry) = match outcome {
            Outcome::Done => {
                e.failures = 0;
                (None, None)
            }
            Outcome::RequeueAfter(d) => {
                e.failures = 0;
                (Some(d), None)
            }
            Outcome::Failed => {
                e.failures = e.failures.saturating_add(1);
                let d = backoff.delay(e.failures);
                (Some(d), Some(d))
            }
        };
        if e.dirty && !self.closed {
            // Something changed while it ran: one more run, now.
            e.dirty = false;
            e.state = State::Queued;
            self.ready.push_back(key.clone());
        } else if let (Some(d), false) = (after, self.closed) {
            let at = now + d;
            e.state = State::Delayed(at);
            self.seq += 1;
            self.delayed.push(Deadline {
                at,
                seq: self.seq,
                key: key.clone(),
            });
        } else {
            self.entries.remove(key);
        }
        retry
    }

    /// Keys waiting for a worker or for a deadline.
    pub(crate) fn pending(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.state != State::Running)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> WorkQueue<&'static str> {
        WorkQueue::new()
    }

    #[test]
    fn queued_triggers_coalesce() {
        let mut q = q();
        assert!(q.trigger("a"));
        assert!(!q.trigger("a"));
        assert!(q.trigger("b"));
        assert_eq!(q.pop_ready(), Some("a"));
        assert_eq!(q.pop_ready(), Some("b"));
        assert_eq!(q.pop_ready(), None);
    }

    #[test]
    fn running_key_is_not_handed_out_twice_and_dirty_runs_once_more() {
        let mut q = q();
        let now = Instant::now();
        let b = Backoff::default();
        q.trigger("a");
        assert_eq!(q.pop_ready(), Some("a"));
        assert!(!q.trigger("a"));
        assert!(!q.trigger("a"));
        assert_eq!(q.pop_ready(), None, "never concurrently with itself");
        q.finish(&"a", Outcome::Done, now, &b);
        assert_eq!(q.pop_ready(), Some("a"), "exactly one more run");
        q.finish(&"a", Outcome::Done, now, &b);
        assert_eq!(q.pop_ready(), None);
        assert_eq!(q.pending(), 0, "done keys are forgotten");
    }

    #[test]
    fn deadlines_and_triggers_race_to_one_run() {
        let mut q = q();
        let now = Instant::now();
        let b = Backoff::default();
        q.trigger("a");
        q.pop_ready();
        q.finish(&"a", Outcome::RequeueAfter(Duration::from_secs(5)), now, &b);
        assert_eq!(q.next_due(), Some(now + Duration::from_secs(5)));
        q.promote_due(now + Duration::from_secs(4));
        assert_eq!(q.pop_ready(), None);
        // A trigger wins over the deadline; the stale deadline then does nothing.
        assert!(q.trigger("a"));
        assert_eq!(q.next_due(), None);
        q.promote_due(now + Duration::from_secs(6));
        assert_eq!(q.pop_ready(), Some("a"));
        assert_eq!(q.pop_ready(), None);
    }

    #[test]
    fn failures_back_off_and_reset_on_success() {
        let mut q = q();
        let now = Instant::now();
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(3),
        };
        q.trigger("a");
        let mut delays = vec![];
        for _ in 0..4 {
            assert_eq!(q.pop_ready(), Some("a"));
            delays.push(q.finish(&"a", Outcome::Failed, now, &b));
            q.promote_due(now + Duration::from_secs(10));
        }
        let secs: Vec<u64> = delays.iter().flatten().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [1, 2, 3, 3]);
        q.pop_ready();
        q.finish(&"a", Outcome::RequeueAfter(Duration::ZERO), now, &b);
        q.promote_due(now);
        q.pop_ready();
        assert_eq!(
            q.finish(&"a", Outcome::Failed, now, &b),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn closed_queue_takes_no_new_work() {
        let mut q = q();
        let now = Instant::now();
        q.trigger("a");
        q.pop_ready();
        q.close();
        assert!(!q.trigger("b"));
        assert!(!q.trigger("a"));
        q.finish(
            &"a",
            Outcome::RequeueAfter(Duration::ZERO),
            now,
            &Backoff::default(),
        );
        q.promote_due(now);
        assert_eq!(q.pop_ready(), None);
    }
}
