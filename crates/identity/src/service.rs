//! The identity service's operations. Each takes the caller's principal (or
//! the credentials it presents) and checks policy before touching the store.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use nuage_model::id;
use nuage_model::identity::{
    AccessKey, Actor, Assignment, Domain, Group, Principal, Project, Quota, Role, Target, User,
    DEFAULT_DOMAIN_ID, QUOTA_RESOURCES, ROLE_ADMIN, ROLE_MEMBER, ROLE_READER,
};
use nuage_store::{now_ms, Db, StoreError};

use crate::cache::{Cache, KeyEntry, Scoped, AREA};
use crate::error::{IdentityError, IdentityResult};
use crate::hasher::{HashPool, HashPoolConfig};
use crate::policy::{authorize, implied, Rule};
use crate::repo;
pub use crate::repo::AssignmentFilter;
use crate::sigv4::{self, SignedRequest};
use crate::throttle::{Lockout, Record, Subject, Throttle, ThrottleConfig};
use crate::token::{Claims, Method, TokenKey};

/// Settings of the identity service.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// How long a token lives (Keystone's default: one hour).
    pub token_ttl: Duration,
    /// How often to look for changes made by other controllers.
    pub refresh_every: Duration,
    /// The password hashing pool (how many hashes at once, how long to wait).
    pub hashing: HashPoolConfig,
    /// Failed-login throttling.
    pub throttle: ThrottleConfig,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            token_ttl: Duration::from_secs(3600),
            refresh_every: Duration::from_secs(1),
            hashing: HashPoolConfig::default(),
            throttle: ThrottleConfig::default(),
        }
    }
}

/// The identity service; cheap to clone.
#[derive(Clone)]
pub struct Identity {
    db: Db,
    key: TokenKey,
    cache: Arc<Cache>,
    cfg: IdentityConfig,
    hasher: Arc<HashPool>,
    throttle: Throttle,
    /// Checked instead of a stored hash for users that do not exist or have
    /// no password, so every failed login costs one hash.
    dummy_hash: Arc<str>,
}

/// A user or project as a client names it: by id only, or by id or name
/// within a domain (id or name; the Default domain when `None`).
#[derive(Debug, Clone, Copy)]
pub struct Ref<'a> {
    pub key: &'a str,
    pub domain: Option<&'a str>,
    pub id_only: bool,
}

impl<'a> Ref<'a> {
    pub fn id(id: &'a str) -> Ref<'a> {
        Ref {
            key: id,
            domain: None,
            id_only: true,
        }
    }

    /// An id or a name; with `domain`, a name in that domain only.
    pub fn any(key: &'a str, domain: Option<&'a str>) -> Ref<'a> {
        Ref {
            key,
            domain,
            id_only: false,
        }
    }

    /// The throttle's key for a user nobody has: what the client typed,
    /// bounded so that a long name cannot make an entry large.
    fn unknown_key(&self) -> String {
        let bounded = |s: &str| s.chars().take(255).collect::<String>();
        match (self.id_only, self.domain) {
            (true, _) => format!("id:{}", bounded(self.key)),
            (false, d) => format!(
                "{}/{}",
                bounded(d.unwrap_or(DEFAULT_DOMAIN_ID)),
                bounded(self.key)
            ),
        }
    }
}

/// A password login as a front door receives it. `source` is the client's
/// address, for per-address throttling (`None` when unknown).
pub struct Login<'a> {
    pub user: Ref<'a>,
    pub password: &'a str,
    /// The project to scope the token to; the user's default when `None`.
    pub project: Option<Ref<'a>>,
    pub source: Option<IpAddr>,
}

const WRONG_PASSWORD: &str = "the user name or password is wrong";
/// One answer for a project that does not exist, is disabled, or that the
/// user holds no role on, so a login reveals nothing about other projects.
const NO_PROJECT_ACCESS: &str = "the user has no access to that project";

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("cfg", &self.cfg).finish()
    }
}

/// What the first start creates.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    /// The admin's password; generated when `None`.
    pub admin_password: Option<String>,
    /// The admin's access key id and secret; generated when `None`. Callers
    /// that must write credentials down before committing them (so a crash
    /// can't lose them) generate both up front.
    pub access_key: Option<(String, String)>,
}

/// The result of [`Identity::bootstrap`]; secrets are present only when this
/// call created them, since they are never stored in the clear (passwords) or
/// never shown again.
#[derive(Debug, Clone)]
pub struct BootstrapOutcome {
    pub created: bool,
    pub admin_user_id: String,
    pub admin_project_id: String,
    pub admin_password: Option<String>,
    pub access_key: Option<AccessKey>,
}

/// Fields of a new project.
#[derive(Debug, Clone, Default)]
pub struct NewProject {
    pub name: String,
    pub domain_id: Option<String>,
    pub description: String,
    pub enabled: bool,
}

/// Changes to a project; `None` leaves a field as it is. `expected_version`,
/// when given, must match the stored version.
#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub expected_version: Option<i64>,
}

/// Fields of a new user.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub name: String,
    pub domain_id: Option<String>,
    pub password: Option<String>,
    pub email: Option<String>,
    pub default_project_id: Option<String>,
    pub enabled: bool,
}

/// Changes to a user; see [`ProjectPatch`].
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub name: Option<String>,
    pub password: Option<String>,
    pub email: Option<Option<String>>,
    pub default_project_id: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub expected_version: Option<i64>,
}

const TOKEN_KEY_SECRET: &str = "identity.token_key";

/// Expired `login_failures` rows deleted per sweep: small, so that a sweep
/// riding on a failed login stays one short statement.
const PRUNE_BATCH: i64 = 64;
/// Sweeps the refresher runs at most in one go (the rest waits its turn).
const PRUNE_SWEEPS: usize = 64;
/// The most entries the admins' lockout list shows (locked ones first).
const LOCKOUT_LIST_LIMIT: i64 = 1000;

fn check_name(kind: &str, name: &str, max: usize) -> IdentityResult<()> {
    if name.trim().is_empty() {
        return Err(IdentityError::invalid(format!(
            "{kind} name must not be empty"
        )));
    }
    if name.chars().count() > max {
        return Err(IdentityError::invalid(format!(
            "{kind} name must be at most {max} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(IdentityError::invalid(format!(
            "{kind} name must not contain control characters"
        )));
    }
    Ok(())
}

fn check_description(d: &str) -> IdentityResult<()> {
    if d.chars().count() > 1024 {
        return Err(IdentityError::invalid(
            "description must be at most 1024 characters",
        ));
    }
    Ok(())
}

fn not_found(what: impl Into<String>) -> IdentityError {
    IdentityError::Store(StoreError::not_found(what))
}

fn conflict(what: impl Into<String>) -> IdentityError {
    IdentityError::Store(StoreError::Conflict { what: what.into() })
}

impl Identity {
    /// Opens the identity service on `db`, creating the token signing key on
    /// first use. The key lives in the store so every controller sharing the
    /// database validates the same tokens.
    pub async fn open(db: Db, cfg: IdentityConfig) -> IdentityResult<Identity> {
        let key = match repo::get_secret(db.reader(), TOKEN_KEY_SECRET).await? {
            Some(k) => k,
            None => {
                let fresh: [u8; 32] = rand::random();
                let mut tx = db.begin().await?;
                let k = repo::put_secret_once(&mut tx, TOKEN_KEY_SECRET, &fresh, now_ms()).await?;
                tx.commit().await.map_err(StoreError::from)?;
                k
            }
        };
        let cache = Arc::new(Cache::new());
        cache.refresh(&db).await?;
        Ok(Identity {
            db,
            key: TokenKey::new(&key),
            cache,
            hasher: Arc::new(HashPool::new(&cfg.hashing)?),
            throttle: Throttle::new(cfg.throttle.clone()),
            dummy_hash: crate::password::dummy_hash().into(),
            cfg,
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// How long a token lives; front doors that show a token's issue time
    /// (Keystone's `issued_at`) derive it from the expiry with this.
    pub fn token_ttl(&self) -> Duration {
        self.cfg.token_ttl
    }

    /// Starts the task that follows changes made by other controllers and
    /// purges expired revocations. It ends when the runtime shuts down.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.cfg.refresh_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                n += 1;
                if let Err(e) = this.cache.refresh(&this.db).await {
                    tracing::warn!(error = %e, "identity cache refresh failed");
                }
                if n.is_multiple_of(600) {
                    if let Err(e) = repo::purge_revocations(this.db.writer(), now_ms()).await {
                        tracing::warn!(error = %e, "purging expired revocations failed");
                    }
                    for _ in 0..PRUNE_SWEEPS {
                        match repo::prune_login_failures(this.db.writer(), now_ms(), PRUNE_BATCH)
                            .await
                        {
                            Ok(n) if n < PRUNE_BATCH as u64 => break,
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "pruning expired login failures failed");
                                break;
                            }
                        }
                    }
                }
            }
        })
    }

    /// Hashes a new password on the hashing pool.
    async fn hash_password(&self, password: &str) -> IdentityResult<String> {
        let pw = password.to_string();
        self.hasher
            .run(move |scratch| crate::password::hash_in(&pw, scratch))
            .await?
    }

    /// Checks `password` against `stored` (the dummy hash when `None`, so
    /// the answer takes as long either way) on the hashing pool.
    async fn check_password(&self, password: &str, stored: Option<String>) -> IdentityResult<bool> {
        let pw = password.to_string();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        self.hasher
            .run(move |scratch| crate::password::verify_in(&pw, &stored, scratch))
            .await
    }

    /// Commits `tx` after announcing an identity change, then brings this
    /// controller's cache up to date before answering.
    async fn commit(&self, mut tx: nuage_store::Tx) -> IdentityResult<()> {
        Db::bump_revision(&mut tx, AREA).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.cache.refresh(&self.db).await?;
        Ok(())
    }

    // ---------------------------------------------------------------- bootstrap

    /// True once [`Identity::bootstrap`] has created the admin user.
    pub async fn is_bootstrapped(&self) -> IdentityResult<bool> {
        Ok(
            repo::find_user_by_name(self.db.reader(), DEFAULT_DOMAIN_ID, "admin")
                .await?
                .is_some(),
        )
    }

    /// Creates the Default domain, the `admin` project and user, the roles
    /// and an access key for the admin, unless they exist. Idempotent: a
    /// second call reports `created: false` and changes nothing.
    pub async fn bootstrap(&self, b: Bootstrap) -> IdentityResult<BootstrapOutcome> {
        if let Some(u) =
            repo::find_user_by_name(self.db.reader(), DEFAULT_DOMAIN_ID, "admin").await?
        {
            let p =
                repo::find_project_by_name(self.db.reader(), DEFAULT_DOMAIN_ID, "admin").await?;
            return Ok(BootstrapOutcome {
                created: false,
                admin_user_id: u.id,
                admin_project_id: p.map(|p| p.id).unwrap_or_default(),
                admin_password: None,
                access_key: None,
            });
        }
        let now = now_ms();
        let password = b.admin_password.unwrap_or_else(|| id::secret(24));
        let hash = self.hash_password(&password).await?;
        let mut tx = self.db.begin().await?;
        if repo::find_domain(&mut *tx, DEFAULT_DOMAIN_ID)
            .await?
            .is_none()
        {
            repo::insert_domain(
                &mut *tx,
                &Domain {
                    id: DEFAULT_DOMAIN_ID.into(),
                    name: "Default".into(),
                    description: "The default domain".into(),
                    enabled: true,
                    version: 1,
                },
                now,
            )
            .await?;
        }
        let mut admin_role_id = String::new();
        for (name, description) in [
            (ROLE_ADMIN, "Everything, in every project"),
            (ROLE_MEMBER, "Read and change the resources of a project"),
            (ROLE_READER, "Read the resources of a project"),
        ] {
            let role = match repo::find_role(&mut *tx, name).await? {
                Some(r) => r,
                None => {
                    let r = Role {
                        id: id::hex32(),
                        name: name.into(),
                        description: description.into(),
                    };
                    repo::insert_role(&mut *tx, &r, now).await?;
                    r
                }
            };
            if name == ROLE_ADMIN {
                admin_role_id = role.id;
            }
        }
        let project = match repo::find_project_by_name(&mut *tx, DEFAULT_DOMAIN_ID, "admin").await?
        {
            Some(p) => p,
            None => {
                let p = Project {
                    id: id::hex32(),
                    name: "admin".into(),
                    domain_id: DEFAULT_DOMAIN_ID.into(),
                    description: "Bootstrap project for the cloud's administrators".into(),
                    enabled: true,
                    version: 1,
                };
                repo::insert_project(&mut *tx, &p, now).await?;
                p
            }
        };
        let user = User {
            id: id::hex32(),
            name: "admin".into(),
            domain_id: DEFAULT_DOMAIN_ID.into(),
            default_project_id: Some(project.id.clone()),
            email: None,
            enabled: true,
            version: 1,
        };
        repo::insert_user(&mut *tx, &user, Some(&hash), now).await?;
        repo::insert_assignment(
            &mut *tx,
            &Assignment {
                actor: Actor::User(user.id.clone()),
                target: Target::Project(project.id.clone()),
                role_id: admin_role_id,
            },
            now,
        )
        .await?;
        let (access_key_id, secret) = b
            .access_key
            .unwrap_or_else(|| (id::access_key_id(), id::secret(40)));
        let key = AccessKey {
            access_key_id,
            secret: Some(secret.clone()),
            user_id: user.id.clone(),
            project_id: project.id.clone(),
            created_at: now,
        };
        repo::insert_access_key(&mut *tx, &key, &secret).await?;
        self.commit(tx).await?;
        tracing::info!(user_id = %user.id, project_id = %project.id, "bootstrapped identity");
        Ok(BootstrapOutcome {
            created: true,
            admin_user_id: user.id,
            admin_project_id: project.id,
            admin_password: Some(password),
            access_key: Some(key),
        })
    }

    // ---------------------------------------------------------- authentication

    async fn scoped(&self, user_id: &str, project_id: &str) -> IdentityResult<Arc<Scoped>> {
        if let Some(s) = self.cache.scoped(user_id, project_id) {
            return Ok(s);
        }
        let rev = self.cache.revision();
        let db = self.db.reader();
        let user = repo::get_user(db, user_id).await?;
        let project = repo::get_project(db, project_id).await?;
        let s = match (user, project) {
            (Some(u), Some(p)) => {
                let names = repo::user_project_roles(db, user_id, project_id).await?;
                let mut roles: Vec<String> = Vec::new();
                for n in &names {
                    for r in implied(n) {
                        if !roles.iter().any(|x| x == r) {
                            roles.push((*r).to_string());
                        }
                    }
                    if implied(n).is_empty() && !roles.contains(n) {
                        roles.push(n.clone());
                    }
                }
                Scoped {
                    user_name: u.name,
                    domain_id: u.domain_id,
                    project_name: p.name,
                    project_domain_id: p.domain_id,
                    roles,
                    active: u.enabled && p.enabled,
                }
            }
            _ => Scoped {
                user_name: String::new(),
                domain_id: String::new(),
                project_name: String::new(),
                project_domain_id: String::new(),
                roles: Vec::new(),
                active: false,
            },
        };
        let s = Arc::new(s);
        self.cache.put_scoped(rev, user_id, project_id, s.clone());
        Ok(s)
    }

    fn principal(claims: &Claims, s: &Scoped, method: &str) -> Principal {
        Principal {
            user_id: claims.user_id.clone(),
            user_name: s.user_name.clone(),
            domain_id: s.domain_id.clone(),
            project_id: claims.project_id.clone(),
            project_name: s.project_name.clone(),
            project_domain_id: s.project_domain_id.clone(),
            roles: s.roles.clone(),
            method: method.to_string(),
            audit_id: claims.audit_id.clone(),
            expires_at: claims.expires_at,
        }
    }

    /// Issues a token. A token traded for another (`parent`) keeps the
    /// parent's expiry and chain, as Keystone's audit chain: it can outlive
    /// neither the parent's lifetime nor the revocation of the chain's first
    /// token.
    async fn issue(
        &self,
        user_id: &str,
        project_id: &str,
        method: Method,
        parent: Option<&Claims>,
    ) -> IdentityResult<(String, Principal)> {
        let s = self.scoped(user_id, project_id).await?;
        if !s.active || s.roles.is_empty() {
            return Err(IdentityError::Unauthenticated(NO_PROJECT_ACCESS));
        }
        let now = now_ms();
        let audit_id = id::hex32();
        let (expires_at, chain_id) = match parent {
            Some(p) => (p.expires_at, p.chain_id.clone()),
            None => (
                now + self.cfg.token_ttl.as_millis() as i64,
                audit_id.clone(),
            ),
        };
        let claims = Claims {
            user_id: user_id.to_string(),
            project_id: project_id.to_string(),
            issued_at: now,
            expires_at,
            audit_id,
            chain_id,
            method,
        };
        let token = self
            .key
            .issue(&claims)
            .ok_or(IdentityError::Unauthenticated(
                "the user or project id cannot be put in a token",
            ))?;
        Ok((token, Self::principal(&claims, &s, method.as_str())))
    }

    /// Resolves a user by id, or by name within a domain (id or name).
    pub async fn find_user(
        &self,
        id_or_name: &str,
        domain: Option<&str>,
    ) -> IdentityResult<Option<User>> {
        let db = self.db.reader();
        if domain.is_none() {
            if let Some(u) = repo::get_user(db, id_or_name).await? {
                return Ok(Some(u));
            }
        }
        let domain = match repo::find_domain(db, domain.unwrap_or(DEFAULT_DOMAIN_ID)).await? {
            Some(d) => d,
            None => return Ok(None),
        };
        Ok(repo::find_user_by_name(db, &domain.id, id_or_name).await?)
    }

    /// Resolves a project by id, or by name within a domain (id or name).
    pub async fn find_project(
        &self,
        id_or_name: &str,
        domain: Option<&str>,
    ) -> IdentityResult<Option<Project>> {
        let db = self.db.reader();
        if domain.is_none() {
            if let Some(p) = repo::get_project(db, id_or_name).await? {
                return Ok(Some(p));
            }
        }
        let domain = match repo::find_domain(db, domain.unwrap_or(DEFAULT_DOMAIN_ID)).await? {
            Some(d) => d,
            None => return Ok(None),
        };
        Ok(repo::find_project_by_name(db, &domain.id, id_or_name).await?)
    }

    async fn resolve_user(&self, r: &Ref<'_>) -> IdentityResult<Option<User>> {
        if r.id_only {
            return Ok(repo::get_user(self.db.reader(), r.key).await?);
        }
        self.find_user(r.key, r.domain).await
    }

    async fn resolve_project(&self, r: &Ref<'_>) -> IdentityResult<Option<Project>> {
        if r.id_only {
            return Ok(repo::get_project(self.db.reader(), r.key).await?);
        }
        self.find_project(r.key, r.domain).await
    }

    /// Loads the failed-login rows of `subjects` (one indexed read) and
    /// refuses at once while one of them is locked.
    async fn check_throttle(&self, subjects: &[&Subject]) -> IdentityResult<Vec<Record>> {
        let records = repo::login_failures(self.db.reader(), subjects).await?;
        match self.throttle.locked(&records, now_ms()) {
            Some(retry_after) => Err(IdentityError::Throttled { retry_after }),
            None => Ok(records),
        }
    }

    /// Counts a failed password check against `s` in the store and locks
    /// it when the count says so. A new row sweeps a few expired ones, so
    /// the table holds what the forget window holds and no more.
    async fn count_failure(&self, s: &Subject, now: i64) -> IdentityResult<()> {
        let db = self.db.writer();
        let failures = repo::count_login_failure(
            db,
            s,
            now,
            self.throttle.forgotten_before(now),
            self.throttle.keep_until(now),
        )
        .await?;
        if let Some(lock) = self.throttle.lock_after(s.kind(), failures) {
            let until = now.saturating_add(i64::try_from(lock.as_millis()).unwrap_or(i64::MAX));
            repo::lock_login_subject(db, s, until).await?;
            tracing::warn!(subject = ?s, failures, lock_secs = lock.as_secs(), "login subject locked");
        }
        if failures == 1 {
            repo::prune_login_failures(db, now, PRUNE_BATCH).await?;
        }
        Ok(())
    }

    /// Clears `s`'s failures after a success, when [`Self::check_throttle`]
    /// found a row for it: a success with nothing to forget writes nothing.
    async fn forget_failures(&self, records: &[Record], s: &Subject) -> IdentityResult<()> {
        if records.iter().any(|r| r.is(s)) {
            repo::clear_login_failures(self.db.writer(), s).await?;
        }
        Ok(())
    }

    /// Password login by user id or name (in `domain`, default Default) and
    /// project id or name; [`Identity::login_with`] without a source address.
    pub async fn login(
        &self,
        user: &str,
        domain: Option<&str>,
        password: &str,
        project: Option<&str>,
        project_domain: Option<&str>,
    ) -> IdentityResult<(String, Principal)> {
        self.login_with(Login {
            user: Ref::any(user, domain),
            password,
            project: project.map(|p| Ref::any(p, project_domain.or(domain))),
            source: None,
        })
        .await
    }

    /// Password login: the one entry every front door uses. Refused at once
    /// while the user (or name) or the source address is locked; otherwise
    /// the password is checked on the hashing pool, against the dummy hash
    /// when the user does not exist, so an unknown user and a wrong password
    /// get the same answer in the same time. A project that does not exist
    /// answers as one the user may not use.
    pub async fn login_with(&self, l: Login<'_>) -> IdentityResult<(String, Principal)> {
        let user = self.resolve_user(&l.user).await?;
        let user_subject = Subject::User(match &user {
            Some(u) => u.id.clone(),
            None => l.user.unknown_key(),
        });
        let source = l.source.map(Subject::Source);
        let subjects: Vec<&Subject> = std::iter::once(&user_subject).chain(&source).collect();
        let records = self.check_throttle(&subjects).await.inspect_err(|e| {
            if e.retry_after().is_some() {
                tracing::info!(subject = ?user_subject, source = ?l.source, "login refused: too many failures");
            }
        })?;
        let stored = match &user {
            Some(u) => repo::password_hash(self.db.reader(), &u.id).await?,
            None => None,
        };
        let ok = self.check_password(l.password, stored).await?;
        let user = match user {
            Some(u) if ok => u,
            found => {
                let now = now_ms();
                tracing::info!(
                    subject = ?user_subject,
                    source = ?l.source,
                    unknown_user = found.is_none(),
                    "password authentication failed"
                );
                self.count_failure(&user_subject, now).await?;
                if let Some(s) = &source {
                    self.count_failure(s, now).await?;
                }
                return Err(IdentityError::Unauthenticated(WRONG_PASSWORD));
            }
        };
        self.forget_failures(&records, &user_subject).await?;
        if !user.enabled {
            return Err(IdentityError::Unauthenticated("the user is disabled"));
        }
        let project_id = match &l.project {
            Some(r) => match self.resolve_project(r).await? {
                Some(p) => p.id,
                None => return Err(IdentityError::Unauthenticated(NO_PROJECT_ACCESS)),
            },
            None => user
                .default_project_id
                .clone()
                .ok_or(IdentityError::Unauthenticated(
                    "no project scope given and the user has no default project",
                ))?,
        };
        self.issue(&user.id, &project_id, Method::Password, None)
            .await
    }

    /// Exchanges a valid token for a new one, possibly scoped to another
    /// project on which the user has a role. The new token expires with the
    /// old one and is revoked with it (they share the audit id).
    pub async fn authenticate_token(
        &self,
        token: &str,
        project: Option<Ref<'_>>,
    ) -> IdentityResult<(String, Principal)> {
        let p = self.validate(token).await?;
        let parent = self
            .key
            .open(token)
            .ok_or(IdentityError::Unauthenticated("the token is invalid"))?;
        let project_id = match &project {
            Some(r) => match self.resolve_project(r).await? {
                Some(found) => found.id,
                None => return Err(IdentityError::Unauthenticated(NO_PROJECT_ACCESS)),
            },
            None => p.project_id.clone(),
        };
        self.issue(&p.user_id, &project_id, Method::Token, Some(&parent))
            .await
    }

    /// The users, names and addresses with failed logins, locked ones first.
    pub async fn list_lockouts(&self, caller: &Principal) -> IdentityResult<Vec<Lockout>> {
        authorize(caller, "identity:list_lockouts", Rule::Admin)?;
        let now = now_ms();
        let rows = repo::list_login_failures(self.db.reader(), now, LOCKOUT_LIST_LIMIT).await?;
        Ok(rows
            .into_iter()
            .map(|r| self.throttle.lockout(r, now))
            .collect())
    }

    /// Forgets the failed logins of a user (by id or name, or the key an
    /// unknown name is listed under) or of an address. True when there were
    /// some.
    pub async fn clear_lockout(
        &self,
        caller: &Principal,
        user: Option<&str>,
        source: Option<IpAddr>,
    ) -> IdentityResult<bool> {
        authorize(caller, "identity:clear_lockout", Rule::Admin)?;
        let mut cleared = false;
        if let Some(u) = user {
            let key = match self.find_user(u, None).await? {
                Some(found) => found.id,
                None => u.to_string(),
            };
            cleared |= repo::clear_login_failures(self.db.writer(), &Subject::User(key)).await?;
        }
        if let Some(a) = source {
            cleared |= repo::clear_login_failures(self.db.writer(), &Subject::Source(a)).await?;
        }
        if cleared {
            tracing::info!(user, source = ?source, "login lockout cleared by an admin");
        }
        Ok(cleared)
    }

    /// Checks a token and returns who holds it. This runs on every request and
    /// touches no database while the cache is warm.
    pub async fn validate(&self, token: &str) -> IdentityResult<Principal> {
        let claims = self
            .key
            .open(token)
            .ok_or(IdentityError::Unauthenticated("the token is invalid"))?;
        if claims.expires_at <= now_ms() {
            return Err(IdentityError::Unauthenticated("the token has expired"));
        }
        let revoked = |audit_id: &str| {
            self.cache
                .is_revoked(audit_id, &claims.user_id, claims.issued_at)
        };
        if revoked(&claims.audit_id) || revoked(&claims.chain_id) {
            return Err(IdentityError::Unauthenticated("the token has been revoked"));
        }
        let s = self.scoped(&claims.user_id, &claims.project_id).await?;
        if !s.active || s.roles.is_empty() {
            return Err(IdentityError::Unauthenticated(
                "the token's user no longer has access to its project",
            ));
        }
        Ok(Self::principal(&claims, &s, claims.method.as_str()))
    }

    /// A token's Keystone `audit_ids`: its own audit id, then, for a token
    /// traded from another, the audit id of its chain's first token (so
    /// auditors can follow the chain, as in Keystone). `None` for a string
    /// that is not a token of this cloud; it does not check revocation.
    pub fn audit_ids(&self, token: &str) -> Option<Vec<String>> {
        let c = self.key.open(token)?;
        Some(if c.chain_id == c.audit_id {
            vec![c.audit_id]
        } else {
            vec![c.audit_id, c.chain_id]
        })
    }

    /// Validates someone's token on behalf of `caller` (Keystone's
    /// `GET /v3/auth/tokens`): a user may inspect its own tokens, an admin
    /// anyone's.
    pub async fn inspect_token(
        &self,
        caller: &Principal,
        token: &str,
    ) -> IdentityResult<Principal> {
        let target = self.validate(token).await?;
        authorize(
            caller,
            "identity:validate_token",
            Rule::SelfOrAdmin(&target.user_id),
        )?;
        Ok(target)
    }

    /// Revokes `token`. A user may revoke its own tokens; an admin any token.
    pub async fn revoke_token(&self, caller: &Principal, token: &str) -> IdentityResult<()> {
        let target = self.validate(token).await?;
        authorize(
            caller,
            "identity:revoke_token",
            Rule::SelfOrAdmin(&target.user_id),
        )?;
        let mut tx = self.db.begin().await?;
        repo::revoke_token(&mut *tx, &target.audit_id, target.expires_at, now_ms()).await?;
        self.commit(tx).await?;
        tracing::info!(audit_id = %target.audit_id, "token revoked");
        Ok(())
    }

    /// Verifies an AWS Signature Version 4 request. `Ok(None)` when the
    /// request carries no signature (anonymous); an error when it carries a
    /// bad one.
    pub async fn authenticate_sigv4(
        &self,
        req: &SignedRequest<'_>,
    ) -> IdentityResult<Option<(Principal, sigv4::SigV4Auth)>> {
        Ok(self
            .authenticate_sigv4_keyed(req)
            .await?
            .map(|(p, auth, _)| (p, auth)))
    }

    /// [`Identity::authenticate_sigv4`], also giving the signing key the
    /// signature was checked with: S3's aws-chunked uploads chain every
    /// chunk's signature from it. The key is scoped to one day, region and
    /// service; it is never logged.
    pub async fn authenticate_sigv4_keyed(
        &self,
        req: &SignedRequest<'_>,
    ) -> IdentityResult<Option<(Principal, sigv4::SigV4Auth, [u8; 32])>> {
        let Some(auth) = sigv4::parse(req)? else {
            return Ok(None);
        };
        let key = self
            .access_key_entry(&auth.credential.access_key_id)
            .await?;
        let c = &auth.credential;
        let signing = sigv4::signing_key(&key.secret, &c.date, &c.region, &c.service);
        sigv4::verify_with_key(req, &auth, &signing, chrono::Utc::now())?;
        let s = self.scoped(&key.user_id, &key.project_id).await?;
        if !s.active || s.roles.is_empty() {
            return Err(IdentityError::Unauthenticated(
                "the access key's user no longer has access to its project",
            ));
        }
        let claims = Claims {
            user_id: key.user_id.clone(),
            project_id: key.project_id.clone(),
            issued_at: 0,
            expires_at: i64::MAX,
            audit_id: String::new(),
            chain_id: String::new(),
            method: Method::Token,
        };
        Ok(Some((Self::principal(&claims, &s, "sigv4"), auth, signing)))
    }

    async fn access_key_entry(&self, access_key_id: &str) -> IdentityResult<Arc<KeyEntry>> {
        if let Some(k) = self.cache.key(access_key_id) {
            return Ok(k);
        }
        let rev = self.cache.revision();
        let k = repo::get_access_key(self.db.reader(), access_key_id)
            .await?
            .ok_or(sigv4::SigV4Error::UnknownAccessKey)?;
        let entry = Arc::new(KeyEntry {
            secret: k.secret.unwrap_or_default(),
            user_id: k.user_id,
            project_id: k.project_id,
        });
        self.cache.put_key(rev, access_key_id, entry.clone());
        Ok(entry)
    }

    // ------------------------------------------------------------------ domains

    pub async fn list_domains(&self, caller: &Principal) -> IdentityResult<Vec<Domain>> {
        let all = repo::list_domains(self.db.reader()).await?;
        if caller.is_admin() {
            return Ok(all);
        }
        Ok(all
            .into_iter()
            .filter(|d| d.id == caller.domain_id || d.id == caller.project_domain_id)
            .collect())
    }

    pub async fn get_domain(&self, caller: &Principal, id_or_name: &str) -> IdentityResult<Domain> {
        let d = repo::find_domain(self.db.reader(), id_or_name)
            .await?
            .ok_or_else(|| not_found(format!("domain {id_or_name}")))?;
        if !caller.is_admin() && d.id != caller.domain_id && d.id != caller.project_domain_id {
            return Err(not_found(format!("domain {id_or_name}")));
        }
        Ok(d)
    }

    pub async fn create_domain(
        &self,
        caller: &Principal,
        name: &str,
        description: &str,
    ) -> IdentityResult<Domain> {
        authorize(caller, "identity:create_domain", Rule::Admin)?;
        check_name("domain", name, 64)?;
        check_description(description)?;
        let d = Domain {
            id: id::hex32(),
            name: name.into(),
            description: description.into(),
            enabled: true,
            version: 1,
        };
        let mut tx = self.db.begin().await?;
        repo::insert_domain(&mut *tx, &d, now_ms()).await?;
        self.commit(tx).await?;
        Ok(d)
    }

    async fn resolve_domain(&self, domain: Option<&str>) -> IdentityResult<String> {
        let d = domain.unwrap_or(DEFAULT_DOMAIN_ID);
        Ok(repo::find_domain(self.db.reader(), d)
            .await?
            .ok_or_else(|| IdentityError::invalid(format!("domain {d} does not exist")))?
            .id)
    }

    // ----------------------------------------------------------------- projects

    pub async fn create_project(
        &self,
        caller: &Principal,
        new: NewProject,
    ) -> IdentityResult<Project> {
        authorize(caller, "identity:create_project", Rule::Admin)?;
        check_name("project", &new.name, 64)?;
        check_description(&new.description)?;
        let domain_id = self.resolve_domain(new.domain_id.as_deref()).await?;
        let p = Project {
            id: id::hex32(),
            name: new.name,
            domain_id,
            description: new.description,
            enabled: new.enabled,
            version: 1,
        };
        let mut tx = self.db.begin().await?;
        repo::insert_project(&mut *tx, &p, now_ms()).await?;
        self.commit(tx).await?;
        tracing::info!(project_id = %p.id, name = %p.name, "project created");
        Ok(p)
    }

    /// Admins see every project; others the projects they have a role on.
    pub async fn list_projects(
        &self,
        caller: &Principal,
        name: Option<&str>,
        domain_id: Option<&str>,
    ) -> IdentityResult<Vec<Project>> {
        if caller.is_admin() {
            return Ok(repo::list_projects(self.db.reader(), name, domain_id).await?);
        }
        Ok(repo::list_user_projects(self.db.reader(), &caller.user_id)
            .await?
            .into_iter()
            .filter(|p| name.is_none_or(|n| p.name == n))
            .filter(|p| domain_id.is_none_or(|d| p.domain_id == d))
            .collect())
    }

    /// The projects `user_id` holds a role on.
    pub async fn list_user_projects(
        &self,
        caller: &Principal,
        user_id: &str,
    ) -> IdentityResult<Vec<Project>> {
        authorize(
            caller,
            "identity:list_user_projects",
            Rule::SelfOrAdmin(user_id),
        )?;
        Ok(repo::list_user_projects(self.db.reader(), user_id).await?)
    }

    /// A project's name, for owner fields that dialects render (S3's
    /// DisplayName); `None` if it is gone.
    pub async fn project_name(&self, id: &str) -> Option<String> {
        repo::get_project(self.db.reader(), id)
            .await
            .ok()
            .flatten()
            .map(|p| p.name)
    }

    pub async fn get_project(&self, caller: &Principal, id: &str) -> IdentityResult<Project> {
        let p = repo::get_project(self.db.reader(), id)
            .await?
            .ok_or_else(|| not_found(format!("project {id}")))?;
        if !caller.is_admin() && p.id != caller.project_id {
            // A member of several projects may read the others it belongs to.
            let mine = repo::user_project_roles(self.db.reader(), &caller.user_id, &p.id).await?;
            if mine.is_empty() {
                return Err(not_found(format!("project {id}")));
            }
        }
        Ok(p)
    }

    pub async fn update_project(
        &self,
        caller: &Principal,
        id: &str,
        patch: ProjectPatch,
    ) -> IdentityResult<Project> {
        authorize(caller, "identity:update_project", Rule::Admin)?;
        let mut p = repo::get_project(self.db.reader(), id)
            .await?
            .ok_or_else(|| not_found(format!("project {id}")))?;
        if let Some(v) = patch.expected_version {
            if v != p.version {
                return Err(conflict(format!("project {id}")));
            }
        }
        if let Some(n) = patch.name {
            check_name("project", &n, 64)?;
            p.name = n;
        }
        if let Some(d) = patch.description {
            check_description(&d)?;
            p.description = d;
        }
        if let Some(e) = patch.enabled {
            p.enabled = e;
        }
        let mut tx = self.db.begin().await?;
        repo::update_project(&mut *tx, &p, now_ms()).await?;
        self.commit(tx).await?;
        p.version += 1;
        Ok(p)
    }

    pub async fn delete_project(&self, caller: &Principal, id: &str) -> IdentityResult<()> {
        authorize(caller, "identity:delete_project", Rule::Admin)?;
        if id == caller.project_id {
            return Err(IdentityError::Conflict(
                "cannot delete the project your token is scoped to; use a token scoped to another project".into(),
            ));
        }
        let mut tx = self.db.begin().await?;
        if !repo::delete_project(&mut tx, id).await? {
            return Err(not_found(format!("project {id}")));
        }
        self.commit(tx).await?;
        tracing::info!(project_id = %id, "project deleted");
        Ok(())
    }

    // -------------------------------------------------------------------- users

    pub async fn create_user(&self, caller: &Principal, new: NewUser) -> IdentityResult<User> {
        authorize(caller, "identity:create_user", Rule::Admin)?;
        check_name("user", &new.name, 255)?;
        let domain_id = self.resolve_domain(new.domain_id.as_deref()).await?;
        if let Some(p) = &new.default_project_id {
            if repo::get_project(self.db.reader(), p).await?.is_none() {
                return Err(IdentityError::invalid(format!(
                    "default project {p} does not exist"
                )));
            }
        }
        let hash = match new.password {
            Some(pw) => {
                crate::password::check_strength(&pw)?;
                Some(self.hash_password(&pw).await?)
            }
            None => None,
        };
        let u = User {
            id: id::hex32(),
            name: new.name,
            domain_id,
            default_project_id: new.default_project_id,
            email: new.email,
            enabled: new.enabled,
            version: 1,
        };
        let mut tx = self.db.begin().await?;
        repo::insert_user(&mut *tx, &u, hash.as_deref(), now_ms()).await?;
        self.commit(tx).await?;
        tracing::info!(user_id = %u.id, name = %u.name, "user created");
        Ok(u)
    }

    pub async fn list_users(
        &self,
        caller: &Principal,
        name: Option<&str>,
        domain_id: Option<&str>,
    ) -> IdentityResult<Vec<User>> {
        let all = repo::list_users(self.db.reader(), name, domain_id).await?;
        if caller.is_admin() {
            return Ok(all);
        }
        Ok(all.into_iter().filter(|u| u.id == caller.user_id).collect())
    }

    pub async fn get_user(&self, caller: &Principal, id: &str) -> IdentityResult<User> {
        if !caller.is_admin() && id != caller.user_id {
            return Err(not_found(format!("user {id}")));
        }
        repo::get_user(self.db.reader(), id)
            .await?
            .ok_or_else(|| not_found(format!("user {id}")))
    }

    /// Changes a user; needs admin. Setting one's own password here is
    /// refused: [`Identity::change_password`] asks for the original one, so
    /// a stolen token cannot take the account over. A password change or
    /// disabling revokes the user's tokens.
    pub async fn update_user(
        &self,
        caller: &Principal,
        id: &str,
        patch: UserPatch,
    ) -> IdentityResult<User> {
        if patch.password.is_some() && id == caller.user_id {
            return Err(IdentityError::Forbidden {
                action: "identity:update_user".into(),
                reason: "changing your own password needs your original password".into(),
            });
        }
        self.apply_user_patch(caller, id, patch).await
    }

    async fn apply_user_patch(
        &self,
        caller: &Principal,
        id: &str,
        patch: UserPatch,
    ) -> IdentityResult<User> {
        let only_password = patch.name.is_none()
            && patch.email.is_none()
            && patch.default_project_id.is_none()
            && patch.enabled.is_none();
        if only_password {
            authorize(caller, "identity:update_user", Rule::SelfOrAdmin(id))?;
        } else {
            authorize(caller, "identity:update_user", Rule::Admin)?;
        }
        let mut u = repo::get_user(self.db.reader(), id)
            .await?
            .ok_or_else(|| not_found(format!("user {id}")))?;
        if let Some(v) = patch.expected_version {
            if v != u.version {
                return Err(conflict(format!("user {id}")));
            }
        }
        if let Some(n) = patch.name {
            check_name("user", &n, 255)?;
            u.name = n;
        }
        if let Some(e) = patch.email {
            u.email = e;
        }
        if let Some(p) = patch.default_project_id {
            if let Some(p) = &p {
                if repo::get_project(self.db.reader(), p).await?.is_none() {
                    return Err(IdentityError::invalid(format!(
                        "default project {p} does not exist"
                    )));
                }
            }
            u.default_project_id = p;
        }
        let disabling = patch.enabled == Some(false) && u.enabled;
        if let Some(e) = patch.enabled {
            u.enabled = e;
        }
        let hash = match patch.password {
            Some(pw) => {
                crate::password::check_strength(&pw)?;
                Some(self.hash_password(&pw).await?)
            }
            None => None,
        };
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        repo::update_user(&mut *tx, &u, hash.as_deref(), now).await?;
        if hash.is_some() || disabling {
            repo::revoke_user_tokens(&mut *tx, id, now).await?;
        }
        self.commit(tx).await?;
        u.version += 1;
        Ok(u)
    }

    /// A user changes its own password, proving it knows the current one (as
    /// Keystone's `POST /v3/users/{id}/password` requires). Its tokens are
    /// revoked, as with any password change.
    pub async fn change_password(
        &self,
        caller: &Principal,
        user_id: &str,
        original: &str,
        new: &str,
    ) -> IdentityResult<()> {
        authorize(
            caller,
            "identity:change_password",
            Rule::SelfOrAdmin(user_id),
        )?;
        // Guessing the original password is throttled like logins.
        let subject = Subject::User(user_id.to_string());
        let records = self.check_throttle(&[&subject]).await?;
        let stored = repo::password_hash(self.db.reader(), user_id).await?;
        if !self.check_password(original, stored).await? {
            tracing::info!(user_id, "password change refused: wrong original password");
            self.count_failure(&subject, now_ms()).await?;
            return Err(IdentityError::Unauthenticated(
                "the original password is wrong",
            ));
        }
        self.forget_failures(&records, &subject).await?;
        self.apply_user_patch(
            caller,
            user_id,
            UserPatch {
                password: Some(new.to_string()),
                ..UserPatch::default()
            },
        )
        .await?;
        Ok(())
    }

    pub async fn delete_user(&self, caller: &Principal, id: &str) -> IdentityResult<()> {
        authorize(caller, "identity:delete_user", Rule::Admin)?;
        if id == caller.user_id {
            return Err(IdentityError::Conflict(
                "cannot delete your own user; another admin must do it".into(),
            ));
        }
        let mut tx = self.db.begin().await?;
        if !repo::delete_user(&mut tx, id).await? {
            return Err(not_found(format!("user {id}")));
        }
        self.commit(tx).await?;
        tracing::info!(user_id = %id, "user deleted");
        Ok(())
    }

    // ------------------------------------------------------------------- groups

    pub async fn create_group(
        &self,
        caller: &Principal,
        name: &str,
        domain: Option<&str>,
        description: &str,
    ) -> IdentityResult<Group> {
        authorize(caller, "identity:create_group", Rule::Admin)?;
        check_name("group", name, 64)?;
        check_description(description)?;
        let g = Group {
            id: id::hex32(),
            name: name.into(),
            domain_id: self.resolve_domain(domain).await?,
            description: description.into(),
            version: 1,
        };
        let mut tx = self.db.begin().await?;
        repo::insert_group(&mut *tx, &g, now_ms()).await?;
        self.commit(tx).await?;
        Ok(g)
    }

    pub async fn list_groups(
        &self,
        caller: &Principal,
        name: Option<&str>,
    ) -> IdentityResult<Vec<Group>> {
        authorize(caller, "identity:list_groups", Rule::Admin)?;
        Ok(repo::list_groups(self.db.reader(), name).await?)
    }

    pub async fn get_group(&self, caller: &Principal, id: &str) -> IdentityResult<Group> {
        authorize(caller, "identity:get_group", Rule::Admin)?;
        repo::get_group(self.db.reader(), id)
            .await?
            .ok_or_else(|| not_found(format!("group {id}")))
    }

    pub async fn delete_group(&self, caller: &Principal, id: &str) -> IdentityResult<()> {
        authorize(caller, "identity:delete_group", Rule::Admin)?;
        let mut tx = self.db.begin().await?;
        if !repo::delete_group(&mut tx, id).await? {
            return Err(not_found(format!("group {id}")));
        }
        self.commit(tx).await
    }

    pub async fn add_user_to_group(
        &self,
        caller: &Principal,
        group_id: &str,
        user_id: &str,
    ) -> IdentityResult<()> {
        authorize(caller, "identity:add_user_to_group", Rule::Admin)?;
        if repo::get_group(self.db.reader(), group_id).await?.is_none() {
            return Err(not_found(format!("group {group_id}")));
        }
        if repo::get_user(self.db.reader(), user_id).await?.is_none() {
            return Err(not_found(format!("user {user_id}")));
        }
        let mut tx = self.db.begin().await?;
        repo::add_member(&mut *tx, group_id, user_id).await?;
        self.commit(tx).await
    }

    pub async fn remove_user_from_group(
        &self,
        caller: &Principal,
        group_id: &str,
        user_id: &str,
    ) -> IdentityResult<()> {
        authorize(caller, "identity:remove_user_from_group", Rule::Admin)?;
        let mut tx = self.db.begin().await?;
        if !repo::remove_member(&mut *tx, group_id, user_id).await? {
            return Err(not_found(format!("user {user_id} in group {group_id}")));
        }
        self.commit(tx).await
    }

    pub async fn list_group_users(
        &self,
        caller: &Principal,
        group_id: &str,
    ) -> IdentityResult<Vec<User>> {
        authorize(caller, "identity:list_group_users", Rule::Admin)?;
        Ok(repo::group_users(self.db.reader(), group_id).await?)
    }

    // -------------------------------------------------------------------- roles

    pub async fn create_role(
        &self,
        caller: &Principal,
        name: &str,
        description: &str,
    ) -> IdentityResult<Role> {
        authorize(caller, "identity:create_role", Rule::Admin)?;
        check_name("role", name, 64)?;
        check_description(description)?;
        let r = Role {
            id: id::hex32(),
            name: name.into(),
            description: description.into(),
        };
        let mut tx = self.db.begin().await?;
        repo::insert_role(&mut *tx, &r, now_ms()).await?;
        self.commit(tx).await?;
        Ok(r)
    }

    /// Any authenticated caller may list roles: their names are not secret
    /// and users need them to read their own assignments.
    pub async fn list_roles(
        &self,
        _caller: &Principal,
        name: Option<&str>,
    ) -> IdentityResult<Vec<Role>> {
        Ok(repo::list_roles(self.db.reader(), name).await?)
    }

    pub async fn get_role(&self, _caller: &Principal, id_or_name: &str) -> IdentityResult<Role> {
        repo::find_role(self.db.reader(), id_or_name)
            .await?
            .ok_or_else(|| not_found(format!("role {id_or_name}")))
    }

    pub async fn delete_role(&self, caller: &Principal, id: &str) -> IdentityResult<()> {
        authorize(caller, "identity:delete_role", Rule::Admin)?;
        let role = self.get_role(caller, id).await?;
        if [ROLE_ADMIN, ROLE_MEMBER, ROLE_READER].contains(&role.name.as_str()) {
            return Err(IdentityError::Conflict(format!(
                "role {} is built in and cannot be deleted",
                role.name
            )));
        }
        let mut tx = self.db.begin().await?;
        repo::delete_role(&mut *tx, &role.id).await?;
        self.commit(tx).await
    }

    // -------------------------------------------------------------- assignments

    /// The assignment with its role named by id (callers may give a name).
    async fn with_role_id(&self, a: &Assignment) -> IdentityResult<Assignment> {
        let role = repo::find_role(self.db.reader(), &a.role_id)
            .await?
            .ok_or_else(|| not_found(format!("role {}", a.role_id)))?;
        Ok(Assignment {
            role_id: role.id,
            ..a.clone()
        })
    }

    async fn check_assignment_parts(&self, a: &Assignment) -> IdentityResult<()> {
        let db = self.db.reader();
        match &a.actor {
            Actor::User(u) if repo::get_user(db, u).await?.is_none() => {
                return Err(not_found(format!("user {u}")))
            }
            Actor::Group(g) if repo::get_group(db, g).await?.is_none() => {
                return Err(not_found(format!("group {g}")))
            }
            _ => {}
        }
        match &a.target {
            Target::Project(p) if repo::get_project(db, p).await?.is_none() => {
                return Err(not_found(format!("project {p}")))
            }
            Target::Domain(d) if repo::find_domain(db, d).await?.is_none() => {
                return Err(not_found(format!("domain {d}")))
            }
            _ => {}
        }
        Ok(())
    }

    pub async fn grant(&self, caller: &Principal, a: &Assignment) -> IdentityResult<()> {
        authorize(caller, "identity:create_grant", Rule::Admin)?;
        let a = &self.with_role_id(a).await?;
        self.check_assignment_parts(a).await?;
        let mut tx = self.db.begin().await?;
        repo::insert_assignment(&mut *tx, a, now_ms()).await?;
        self.commit(tx).await?;
        tracing::info!(assignment = ?a, "role granted");
        Ok(())
    }

    pub async fn revoke_grant(&self, caller: &Principal, a: &Assignment) -> IdentityResult<()> {
        authorize(caller, "identity:revoke_grant", Rule::Admin)?;
        let a = &self.with_role_id(a).await?;
        let mut tx = self.db.begin().await?;
        if !repo::delete_assignment(&mut *tx, a).await? {
            return Err(not_found("role assignment"));
        }
        self.commit(tx).await?;
        tracing::info!(assignment = ?a, "role revoked");
        Ok(())
    }

    /// True when the exact assignment exists.
    pub async fn check_grant(&self, caller: &Principal, a: &Assignment) -> IdentityResult<bool> {
        if let Actor::User(u) = &a.actor {
            authorize(caller, "identity:check_grant", Rule::SelfOrAdmin(u))?;
        } else {
            authorize(caller, "identity:check_grant", Rule::Admin)?;
        }
        let a = &self.with_role_id(a).await?;
        let found = repo::list_assignments(
            self.db.reader(),
            &AssignmentFilter {
                actor: Some(a.actor.clone()),
                target: Some(a.target.clone()),
                role_id: Some(a.role_id.clone()),
            },
        )
        .await?;
        Ok(!found.is_empty())
    }

    /// Lists assignments. With `effective`, group assignments are expanded
    /// into one per member user, as Keystone's `?effective` does. Non-admins
    /// see only their own.
    pub async fn list_assignments(
        &self,
        caller: &Principal,
        mut filter: AssignmentFilter,
        effective: bool,
    ) -> IdentityResult<Vec<Assignment>> {
        if !caller.is_admin() {
            match &filter.actor {
                Some(Actor::User(u)) if *u == caller.user_id => {}
                None => filter.actor = Some(Actor::User(caller.user_id.clone())),
                _ => {
                    authorize(caller, "identity:list_role_assignments", Rule::Admin)?;
                }
            }
        }
        let db = self.db.reader();
        if !effective {
            return Ok(repo::list_assignments(db, &filter).await?);
        }
        let user_filter = filter.actor.clone();
        filter.actor = None;
        let mut out = Vec::new();
        for a in repo::list_assignments(db, &filter).await? {
            match &a.actor {
                Actor::User(_) => out.push(a),
                Actor::Group(g) => {
                    for u in repo::group_users(db, g).await? {
                        out.push(Assignment {
                            actor: Actor::User(u.id),
                            target: a.target.clone(),
                            role_id: a.role_id.clone(),
                        });
                    }
                }
            }
        }
        if let Some(actor) = user_filter {
            out.retain(|a| a.actor == actor);
        }
        out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        out.dedup();
        Ok(out)
    }

    // -------------------------------------------------------------- access keys

    /// Creates an access key for `user_id` on `project_id`. A user may make
    /// keys for itself on projects it has a role on; the secret is returned.
    pub async fn create_access_key(
        &self,
        caller: &Principal,
        user_id: &str,
        project_id: &str,
    ) -> IdentityResult<AccessKey> {
        authorize(
            caller,
            "identity:ec2_create_credential",
            Rule::SelfOrAdmin(user_id),
        )?;
        if repo::get_user(self.db.reader(), user_id).await?.is_none() {
            return Err(not_found(format!("user {user_id}")));
        }
        if repo::get_project(self.db.reader(), project_id)
            .await?
            .is_none()
        {
            return Err(not_found(format!("project {project_id}")));
        }
        if repo::user_project_roles(self.db.reader(), user_id, project_id)
            .await?
            .is_empty()
        {
            return Err(IdentityError::Forbidden {
                action: "identity:ec2_create_credential".into(),
                reason: "the user has no role on that project".into(),
            });
        }
        let secret = id::secret(40);
        let key = AccessKey {
            access_key_id: id::access_key_id(),
            secret: Some(secret.clone()),
            user_id: user_id.into(),
            project_id: project_id.into(),
            created_at: now_ms(),
        };
        let mut tx = self.db.begin().await?;
        repo::insert_access_key(&mut *tx, &key, &secret).await?;
        self.commit(tx).await?;
        tracing::info!(access_key_id = %key.access_key_id, user_id, project_id, "access key created");
        Ok(key)
    }

    /// The access keys of `user_id`, or of everyone for an admin asking with
    /// `None`. Secrets are included only for the owner and admins, as the
    /// OS-EC2 API does.
    pub async fn list_access_keys(
        &self,
        caller: &Principal,
        user_id: Option<&str>,
    ) -> IdentityResult<Vec<AccessKey>> {
        match user_id {
            Some(u) => authorize(
                caller,
                "identity:ec2_list_credentials",
                Rule::SelfOrAdmin(u),
            )?,
            None => authorize(caller, "identity:ec2_list_credentials", Rule::Admin)?,
        }
        Ok(repo::list_access_keys(self.db.reader(), user_id).await?)
    }

    pub async fn get_access_key(
        &self,
        caller: &Principal,
        access_key_id: &str,
    ) -> IdentityResult<AccessKey> {
        let k = repo::get_access_key(self.db.reader(), access_key_id)
            .await?
            .ok_or_else(|| not_found(format!("access key {access_key_id}")))?;
        if authorize(
            caller,
            "identity:ec2_get_credential",
            Rule::SelfOrAdmin(&k.user_id),
        )
        .is_err()
        {
            return Err(not_found(format!("access key {access_key_id}")));
        }
        Ok(k)
    }

    pub async fn delete_access_key(
        &self,
        caller: &Principal,
        access_key_id: &str,
    ) -> IdentityResult<()> {
        let k = self.get_access_key(caller, access_key_id).await?;
        let mut tx = self.db.begin().await?;
        repo::delete_access_key(&mut *tx, &k.access_key_id).await?;
        self.commit(tx).await?;
        tracing::info!(access_key_id, "access key deleted");
        Ok(())
    }

    // ------------------------------------------------------------------- quotas

    /// A project's quotas, defaults filled in for resources never set.
    pub async fn quotas(&self, caller: &Principal, project_id: &str) -> IdentityResult<Vec<Quota>> {
        authorize(caller, "identity:get_quotas", Rule::ProjectRead(project_id))?;
        if repo::get_project(self.db.reader(), project_id)
            .await?
            .is_none()
        {
            return Err(not_found(format!("project {project_id}")));
        }
        let set = repo::list_quotas(self.db.reader(), project_id).await?;
        Ok(QUOTA_RESOURCES
            .iter()
            .map(|(r, default)| Quota {
                project_id: project_id.into(),
                resource: (*r).into(),
                limit: set
                    .iter()
                    .find(|q| q.resource == *r)
                    .map(|q| q.limit)
                    .unwrap_or(*default),
            })
            .collect())
    }

    /// One quota limit, for services that enforce it; no policy check since
    /// the service has already authorised the action it is counting.
    pub async fn quota_limit(&self, project_id: &str, resource: &str) -> IdentityResult<i64> {
        let set = repo::list_quotas(self.db.reader(), project_id).await?;
        if let Some(q) = set.into_iter().find(|q| q.resource == resource) {
            return Ok(q.limit);
        }
        QUOTA_RESOURCES
            .iter()
            .find(|(r, _)| *r == resource)
            .map(|(_, d)| *d)
            .ok_or_else(|| IdentityError::invalid(format!("unknown quota resource {resource}")))
    }

    pub async fn set_quota(
        &self,
        caller: &Principal,
        project_id: &str,
        resource: &str,
        limit: i64,
    ) -> IdentityResult<Quota> {
        let mut set = self
            .set_quotas(caller, project_id, &[(resource.to_string(), limit)])
            .await?;
        set.pop()
            .ok_or_else(|| IdentityError::invalid("no quota given"))
    }

    /// Sets several of a project's quotas at once: every name and limit is
    /// checked first, then all are written in one transaction, so a
    /// refusal or a crash leaves none of them changed.
    pub async fn set_quotas(
        &self,
        caller: &Principal,
        project_id: &str,
        limits: &[(String, i64)],
    ) -> IdentityResult<Vec<Quota>> {
        authorize(caller, "identity:set_quota", Rule::Admin)?;
        for (resource, limit) in limits {
            if !QUOTA_RESOURCES.iter().any(|(r, _)| r == resource) {
                let known: Vec<_> = QUOTA_RESOURCES.iter().map(|(r, _)| *r).collect();
                return Err(IdentityError::invalid(format!(
                    "unknown quota resource {resource}; known: {}",
                    known.join(", ")
                )));
            }
            if *limit < -1 {
                return Err(IdentityError::invalid(
                    "a quota limit is -1 (unlimited) or at least 0",
                ));
            }
        }
        let set: Vec<Quota> = limits
            .iter()
            .map(|(resource, limit)| Quota {
                project_id: project_id.into(),
                resource: resource.clone(),
                limit: *limit,
            })
            .collect();
        let mut tx = self.db.begin().await?;
        for q in &set {
            repo::set_quota(&mut *tx, q).await?;
        }
        self.commit(tx).await?;
        Ok(set)
    }
}
