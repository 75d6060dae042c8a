//! What token and signature validation needs, held in memory.
//!
//! Validation runs on every request, so it must not touch the database: this
//! cache holds each (user, project) pair's roles and names, the revoked
//! tokens and the access keys. It follows the store through the `identity`
//! revision counter: a local change refreshes it at once, and a background
//! task notices changes made by other controllers within a second.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use nuage_store::{sqlx, Db, StoreResult};

/// What a token scoped to one project of one user grants.
#[derive(Debug, Clone)]
pub(crate) struct Scoped {
    pub user_name: String,
    pub domain_id: String,
    pub project_name: String,
    pub project_domain_id: String,
    /// Effective roles, implied ones included; empty means no access.
    pub roles: Vec<String>,
    pub active: bool,
}

/// An access key's secret and owner.
#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    pub secret: String,
    pub user_id: String,
    pub project_id: String,
}

#[derive(Default)]
struct Inner {
    scoped: HashMap<(String, String), Arc<Scoped>>,
    keys: HashMap<String, Arc<KeyEntry>>,
    revoked: HashSet<String>,
    user_revoked: HashMap<String, i64>,
}

pub(crate) struct Cache {
    revision: AtomicI64,
    inner: RwLock<Inner>,
}

pub(crate) const AREA: &str = "identity";

impl Cache {
    pub fn new() -> Cache {
        Cache {
            revision: AtomicI64::new(-1),
            inner: RwLock::new(Inner::default()),
        }
    }

    pub fn revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps, still usable.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Reloads revocations and drops derived entries when the store moved on
    /// since the last look. Cheap when nothing changed: one indexed read.
    pub async fn refresh(&self, db: &Db) -> StoreResult<()> {
        let rev = db.revision(AREA).await?;
        if rev == self.revision() {
            return Ok(());
        }
        let now = nuage_store::now_ms();
        let revoked: Vec<(String,)> =
            sqlx::query_as("SELECT audit_id FROM revoked_tokens WHERE expires_at > $1")
                .bind(now)
                .fetch_all(db.reader())
                .await?;
        let user_revoked: Vec<(String, i64)> =
            sqlx::query_as("SELECT user_id, revoked_before FROM user_revocations")
                .fetch_all(db.reader())
                .await?;
        let mut inner = self.write();
        inner.scoped.clear();
        inner.keys.clear();
        inner.revoked = revoked.into_iter().map(|r| r.0).collect();
        inner.user_revoked = user_revoked.into_iter().collect();
        self.revision.store(rev, Ordering::Release);
        Ok(())
    }

    pub fn is_revoked(&self, audit_id: &str, user_id: &str, issued_at: i64) -> bool {
        let inner = self.read();
        inner.revoked.contains(audit_id)
            || inner
                .user_revoked
                .get(user_id)
                .is_some_and(|before| issued_at <= *before)
    }

    pub fn scoped(&self, user_id: &str, project_id: &str) -> Option<Arc<Scoped>> {
        self.read()
            .scoped
            .get(&(user_id.to_string(), project_id.to_string()))
            .cloned()
    }

    /// Remembers a lookup made at `revision`, unless the cache has moved on
    /// since (the entry might be stale then).
    pub fn put_scoped(&self, revision: i64, user_id: &str, project_id: &str, s: Arc<Scoped>) {
        let mut inner = self.write();
        if self.revision() == revision {
            inner
                .scoped
                .insert((user_id.to_string(), project_id.to_string()), s);
        }
    }

    pub fn key(&self, access_key_id: &str) -> Option<Arc<KeyEntry>> {
        self.read().keys.get(access_key_id).cloned()
    }

    pub fn put_key(&self, revision: i64, access_key_id: &str, k: Arc<KeyEntry>) {
        let mut inner = self.write();
        if self.revision() == revision {
            inner.keys.insert(access_key_id.to_string(), k);
        }
    }
}
