//! Failed-login throttling, after Keystone's `lockout_failure_attempts` and
//! `lockout_duration`, per user and per source address.
//!
//! Each subject (a user, or a name no user has, so that unknown and known
//! users behave alike; or a source address) counts its failed password
//! checks. At the threshold it is locked for `lock`, doubling with every
//! further failure up to `max_lock`; while locked every login for it is
//! refused before any hash is computed, even with the right password. A
//! success clears the user's count (not the address's: one good account
//! must not reset an attacker's address); admins see and clear entries.
//! Counts are forgotten after `forget_after` without failures.
//!
//! The state is in memory, per controller (see ADR 15 for why), and bounded
//! to `max_entries` subjects: when full, unlocked entries go first, oldest
//! failure first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Settings of the throttle.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failures after which a user (or user name) is locked.
    pub user_attempts: u32,
    /// Failures after which a source address is locked; higher, since many
    /// users may share one address (a NAT, a proxy).
    pub source_attempts: u32,
    /// The first lock's length; each further failure doubles it.
    pub lock: Duration,
    pub max_lock: Duration,
    /// A subject with no failure for this long starts again from zero.
    pub forget_after: Duration,
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            user_attempts: 5,
            source_attempts: 30,
            lock: Duration::from_secs(60),
            max_lock: Duration::from_secs(3600),
            forget_after: Duration::from_secs(3600),
            max_entries: 100_000,
        }
    }
}

/// What failed logins are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A user by id, or for a name no user has, `domain/name` (or `id:...`)
    /// as the client gave it.
    User(String),
    Source(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure_ms: i64,
    locked_until_ms: i64,
}

/// One throttled subject as admins see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Lockout {
    /// `user` or `source`.
    pub kind: &'static str,
    /// The user id (or unknown name), or the address.
    pub subject: String,
    pub failures: u32,
    /// When the lock ends (ms since the epoch); absent when not locked.
    pub locked_until: Option<i64>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Throttle {
    cfg: ThrottleConfig,
    entries: Mutex<HashMap<Subject, Entry>>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Throttle {
        Throttle {
            cfg,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Subject, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long the longest lock among `subjects` still lasts, if any.
    pub fn locked(&self, subjects: &[&Subject], now_ms: i64) -> Option<Duration> {
        let entries = self.lock();
        subjects
            .iter()
            .filter_map(|s| entries.get(*s))
            .map(|e| e.locked_until_ms - now_ms)
            .filter(|left| *left > 0)
            .max()
            .map(|left| Duration::from_millis(u64::try_from(left).unwrap_or(0)))
    }

    /// Counts a failed password check against `subject`.
    pub fn fail(&self, subject: Subject, now_ms: i64) {
        let threshold = match subject {
            Subject::User(_) => self.cfg.user_attempts,
            Subject::Source(_) => self.cfg.source_attempts,
        };
        let mut entries = self.lock();
        if !entries.contains_key(&subject) && entries.len() >= self.cfg.max_entries {
            Self::evict(&mut entries, now_ms);
        }
        let e = entries.entry(subject).or_insert(Entry {
            failures: 0,
            last_failure_ms: now_ms,
            locked_until_ms: 0,
        });
        if now_ms - e.last_failure_ms > ms(self.cfg.forget_after) {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure_ms = now_ms;
        if e.failures >= threshold {
            let doublings = (e.failures - threshold).min(30);
            let lock = ms(self.cfg.lock)
                .saturating_mul(1i64 << doublings)
                .min(ms(self.cfg.max_lock));
            e.locked_until_ms = now_ms + lock;
        }
    }

    /// Makes room for one entry: expired ones first, then unlocked ones,
    /// then whichever failed longest ago.
    fn evict(entries: &mut HashMap<Subject, Entry>, now_ms: i64) {
        let victim = entries
            .iter()
            .min_by_key(|(_, e)| (e.locked_until_ms > now_ms, e.last_failure_ms))
            .map(|(s, _)| s.clone());
        if let Some(v) = victim {
            entries.remove(&v);
        }
    }

    /// Forgets `subject`'s failures (a success, or an admin). True when
    /// there was something to forget.
    pub fn clear(&self, subject: &Subject) -> bool {
        self.lock().remove(subject).is_some()
    }

    /// Every subject with failures not yet forgotten, locked ones first.
    pub fn list(&self, now_ms: i64) -> Vec<Lockout> {
        let forget = ms(self.cfg.forget_after);
        let mut out: Vec<(Subject, Entry)> = self
            .lock()
            .iter()
            .filter(|(_, e)| now_ms - e.last_failure_ms <= forget || e.locked_until_ms > now_ms)
            .map(|(s, e)| (s.clone(), *e))
            .collect();
        out.sort_by(|a, b| {
            (b.1.locked_until_ms > now_ms)
                .cmp(&(a.1.locked_until_ms > now_ms))
                .then(a.0.cmp(&b.0))
        });
        out.into_iter()
            .map(|(s, e)| {
                let (kind, subject) = match s {
                    Subject::User(u) => ("user", u),
                    Subject::Source(a) => ("source", a.to_string()),
                };
                Lockout {
                    kind,
                    subject,
                    failures: e.failures,
                    locked_until: (e.locked_until_ms > now_ms).then_some(e.locked_until_ms),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max_entries: usize) -> Throttle {
        Throttle::new(ThrottleConfig {
            user_attempts: 3,
            source_attempts: 5,
            lock: Duration::from_secs(10),
            max_lock: Duration::from_secs(35),
            forget_after: Duration::from_secs(100),
            max_entries,
        })
    }

    #[test]
    fn locks_at_the_threshold_and_doubles_up_to_the_cap() {
        let t = throttle(10);
        let u = Subject::User("u".into());
        for _ in 0..2 {
            t.fail(u.clone(), 0);
        }
        assert_eq!(t.locked(&[&u], 0), None);
        t.fail(u.clone(), 0);
        assert_eq!(t.locked(&[&u], 1_000), Some(Duration::from_secs(9)));
        assert_eq!(t.locked(&[&u], 10_000), None, "the lock ends");
        t.fail(u.clone(), 10_000);
        assert_eq!(t.locked(&[&u], 10_000), Some(Duration::from_secs(20)));
        t.fail(u.clone(), 30_000);
        assert_eq!(
            t.locked(&[&u], 30_000),
            Some(Duration::from_secs(35)),
            "capped"
        );
        assert!(t.clear(&u));
        assert_eq!(t.locked(&[&u], 30_000), None);
        assert!(!t.clear(&u));
    }

    #[test]
    fn sources_have_their_own_threshold_and_counts_are_forgotten() {
        let t = throttle(10);
        let s = Subject::Source("127.0.0.9".parse().expect("ip"));
        for _ in 0..4 {
            t.fail(s.clone(), 0);
        }
        assert_eq!(t.locked(&[&s], 0), None);
        // Long after, the count starts again.
        t.fail(s.clone(), 200_000);
        assert_eq!(t.locked(&[&s], 200_000), None);
        assert_eq!(t.list(200_000)[0].failures, 1);
    }

    #[test]
    fn bounded_and_locked_entries_are_kept() {
        let t = throttle(3);
        let locked = Subject::User("locked".into());
        for _ in 0..3 {
            t.fail(locked.clone(), 0);
        }
        for i in 0..100 {
            t.fail(Subject::User(format!("n{i}")), i);
        }
        let list = t.list(100);
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].subject, "locked");
        assert!(list[0].locked_until.is_some());
    }
}
