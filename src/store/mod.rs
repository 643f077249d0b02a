//! PostgreSQL access. Every query of the server lives under this module; callers get plain
//! Rust types and a [`DbError`], never sqlx types.

pub mod audit;
pub mod catalog;
pub mod outbox;
pub mod ownership;
pub mod reports;
pub mod sections;
pub mod seed;
pub mod students;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

/// Why a query failed, in terms callers can act on.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint refused a duplicate; carries the constraint name.
    #[error("duplicate value violates {0}")]
    Duplicate(String),
    /// A referenced row does not exist; carries the constraint name.
    #[error("referenced row missing ({0})")]
    MissingReference(String),
    /// A CHECK constraint refused the values; carries the constraint name.
    #[error("value rejected by {0}")]
    Check(String),
    /// Anything else: connection lost, timeout, bug.
    #[error("database error: {0}")]
    Other(#[from] sqlx::Error),
}

impl DbError {
    /// Classify a sqlx error by its SQLSTATE.
    pub fn from_sqlx(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            let constraint = db.constraint().unwrap_or_default().to_string();
            match db.code().as_deref() {
                Some("23505") => return DbError::Duplicate(constraint),
                Some("23503") => return DbError::MissingReference(constraint),
                Some("23514") => return DbError::Check(constraint),
                _ => {}
            }
        }
        DbError::Other(err)
    }
}

/// Shorthand for store results.
pub type DbResult<T> = Result<T, DbError>;

/// Connect a pool of `size` connections.
pub async fn connect(url: &str, size: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(size.max(2))
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
}

/// Apply the embedded migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await
}
