//! Failed-login throttling, after Keystone's `lockout_failure_attempts` and
//! `lockout_duration`, per user and per source address: the rules, as pure
//! functions over the stored rows (`login_failures`, see ADR 15).
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
//! The counting itself is one atomic upsert in the store (`repo`), so that
//! every controller sharing the database sees the same counts and a restart
//! forgives nothing; this module decides what a count means.

use std::net::IpAddr;
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
    /// A subject with no failure for this long starts again from zero, and
    /// its row may be pruned once it is not locked either.
    pub forget_after: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            user_attempts: 5,
            source_attempts: 30,
            lock: Duration::from_secs(60),
            max_lock: Duration::from_secs(3600),
            forget_after: Duration::from_secs(3600),
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

impl Subject {
    /// The stored `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::User(_) => KIND_USER,
            Subject::Source(_) => KIND_SOURCE,
        }
    }

    /// The stored `subject` column.
    pub fn key(&self) -> String {
        match self {
            Subject::User(u) => u.clone(),
            Subject::Source(a) => a.to_string(),
        }
    }
}

pub(crate) const KIND_USER: &str = "user";
pub(crate) const KIND_SOURCE: &str = "source";

/// One stored row of `login_failures`, as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: String,
    pub subject: String,
    pub failures: u32,
    pub last_failure_ms: i64,
    /// 0 when never locked.
    pub locked_until_ms: i64,
}

impl Record {
    /// True when this is `s`'s row.
    pub fn is(&self, s: &Subject) -> bool {
        self.kind == s.kind() && self.subject == s.key()
    }
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

/// The rules; see the module documentation.
#[derive(Debug, Clone)]
pub struct Throttle {
    cfg: ThrottleConfig,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Throttle {
        Throttle { cfg }
    }

    /// How long the longest lock among `records` still lasts, if any.
    pub fn locked(&self, records: &[Record], now_ms: i64) -> Option<Duration> {
        records
            .iter()
            .map(|r| r.locked_until_ms.saturating_sub(now_ms))
            .filter(|left| *left > 0)
            .max()
            .map(|left| Duration::from_millis(u64::try_from(left).unwrap_or(0)))
    }

    /// A failure counted before this instant is forgotten: the next one
    /// counts from 1 again.
    pub fn forgotten_before(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(ms(self.cfg.forget_after))
    }

    /// Until when a row written now must be kept (unless locked longer).
    pub fn keep_until(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(ms(self.cfg.forget_after))
    }

    /// The lock that the `failures`-th failure in a row of a subject of
    /// `kind` earns, if any: `lock` at the threshold, doubling after it, up
    /// to `max_lock`. Concurrent failures each get their own count from the
    /// store, so applying the longest of their locks gives the serial answer.
    pub fn lock_after(&self, kind: &str, failures: u32) -> Option<Duration> {
        let threshold = if kind == KIND_USER {
            self.cfg.user_attempts
        } else {
            self.cfg.source_attempts
        };
        if failures < threshold {
            return None;
        }
        let doublings = (failures - threshold).min(30);
        let lock = ms(self.cfg.lock)
            .saturating_mul(1i64 << doublings)
            .min(ms(self.cfg.max_lock));
        Some(Duration::from_millis(u64::try_from(lock).unwrap_or(0)))
    }

    /// `r` as admins see it at `now_ms`.
    pub fn lockout(&self, r: Record, now_ms: i64) -> Lockout {
        Lockout {
            kind: if r.kind == KIND_USER {
                KIND_USER
            } else {
                KIND_SOURCE
            },
            subject: r.subject,
            failures: r.failures,
            locked_until: (r.locked_until_ms > now_ms).then_some(r.locked_until_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(ThrottleConfig {
            user_attempts: 3,
            source_attempts: 5,
            lock: Duration::from_secs(10),
            max_lock: Duration::from_secs(35),
            forget_after: Duration::from_secs(100),
        })
    }

    fn record(locked_until_ms: i64) -> Record {
        Record {
            kind: KIND_USER.into(),
            subject: "u".into(),
            failures: 3,
            last_failure_ms: 0,
            locked_until_ms,
        }
    }

    #[test]
    fn locks_at_the_threshold_and_doubles_up_to_the_cap() {
        let t = throttle();
        assert_eq!(t.lock_after(KIND_USER, 2), None);
        assert_eq!(t.lock_after(KIND_USER, 3), Some(Duration::from_secs(10)));
        assert_eq!(t.lock_after(KIND_USER, 4), Some(Duration::from_secs(20)));
        assert_eq!(
            t.lock_after(KIND_USER, 5),
            Some(Duration::from_secs(35)),
            "capped"
        );
        assert_eq!(
            t.lock_after(KIND_USER, u32::MAX),
            Some(Duration::from_secs(35))
        );
    }

    #[test]
    fn sources_have_their_own_threshold() {
        let t = throttle();
        assert_eq!(t.lock_after(KIND_SOURCE, 4), None);
        assert_eq!(t.lock_after(KIND_SOURCE, 5), Some(Duration::from_secs(10)));
    }

    #[test]
    fn the_longest_lock_still_running_wins() {
        let t = throttle();
        assert_eq!(t.locked(&[], 0), None);
        assert_eq!(t.locked(&[record(0), record(10_000)], 10_000), None);
        assert_eq!(
            t.locked(&[record(5_000), record(12_000)], 1_000),
            Some(Duration::from_secs(11))
        );
        let l = t.lockout(record(12_000), 1_000);
        assert_eq!((l.kind, l.locked_until), ("user", Some(12_000)));
        assert_eq!(t.lockout(record(12_000), 12_000).locked_until, None);
    }

    #[test]
    fn counts_are_forgotten_after_the_window() {
        let t = throttle();
        assert_eq!(t.forgotten_before(200_000), 100_000);
        assert_eq!(t.keep_until(200_000), 300_000);
        assert_eq!(t.forgotten_before(i64::MIN), i64::MIN);
    }
}
