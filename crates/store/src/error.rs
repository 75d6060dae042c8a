use nuage_model::{ErrorKind, HasKind};

pub type StoreResult<T> = Result<T, StoreError>;

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    #[error("{what} was changed concurrently; read it again and retry")]
    Conflict { what: String },
    #[error("cannot open the database at {url}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("schema migration {version} ({name}) failed")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the database schema is at version {found}, newer than this nuage ({known}); upgrade nuage"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("database query failed")]
    Query(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Query(e)
    }
}

impl StoreError {
    /// Maps a unique-constraint violation onto [`StoreError::AlreadyExists`]
    /// naming `what`; any other error passes through.
    pub fn unique(e: sqlx::Error, what: impl Into<String>) -> StoreError {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::AlreadyExists { what: what.into() }
            }
            _ => StoreError::Query(e),
        }
    }

    pub fn not_found(what: impl Into<String>) -> StoreError {
        StoreError::NotFound { what: what.into() }
    }
}

impl HasKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound { .. } => ErrorKind::NotFound,
            StoreError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            StoreError::Conflict { .. } => ErrorKind::Conflict,
            StoreError::Open { .. } | StoreError::SchemaTooNew { .. } => ErrorKind::Unavailable,
            StoreError::Migration { .. } => ErrorKind::Internal,
            StoreError::Query(e) => match e {
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                    ErrorKind::Unavailable
                }
                _ => ErrorKind::Internal,
            },
        }
    }
}
