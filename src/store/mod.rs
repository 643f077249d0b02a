//! PostgreSQL access: every query of the API, the hot path and the background tasks
//! lives under this module; callers get plain Rust types and a [`DbError`], never sqlx
//! types. Two self-contained tools keep their SQL beside their logic instead: the event
//! consumers (`events::consumers`, whose effect and dedupe row share a transaction) and
//! the invariant checker (`verify`).

pub mod audit;
pub mod cart;
pub mod catalog;
pub mod cluster;
pub mod decisions;
pub mod enrollment_options;
pub mod idempotency;
pub mod import;
pub mod outbox;
pub mod permits;
pub mod reports;
pub mod retention;
pub mod sections;
pub mod seed;
pub mod students;
pub mod swaps;
mod text_enum;
pub mod tickets;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Why a query failed, in terms callers can act on. There is one way from a sqlx error to
/// a `DbError` (its `From`), so a plain `?` keeps the classification.
#[derive(Clone, Debug, thiserror::Error)]
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
    /// The database cannot be reached or is shutting down; nothing was recorded.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug in a query, a type mismatch (the cause, for the log).
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for DbError {
    /// Classify by SQLSTATE (constraint violations, shutdown) or by the kind of failure.
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) => {
                let constraint = db.constraint().unwrap_or_default().to_string();
                match db.code().as_deref() {
                    Some("23505") => return DbError::Duplicate(constraint),
                    Some("23503") => return DbError::MissingReference(constraint),
                    Some("23514") => return DbError::Check(constraint),
                    // Class 08 (connection exception), 57P01-57P03 (shutting down,
                    // cannot connect now), 53300 (too many connections: every node
                    // reconnecting at once to a new primary), 25006 (a write on a read-only
                    // server: a standby, or a primary being demoted in a failover).
                    Some(c)
                        if c.starts_with("08")
                            || c.starts_with("57P")
                            || c == "53300"
                            || c == "25006" =>
                    {
                        return DbError::Unavailable(err.to_string());
                    }
                    _ => {}
                }
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                return DbError::Unavailable(err.to_string());
            }
            _ => {}
        }
        DbError::Other(err.to_string())
    }
}

/// Whether a failed COMMIT may still have committed. No answer (the connection failed)
/// may hide a commit, and so may an error that ends the session: a primary shut down or
/// terminated (57P01-57P03, a failover's demotion) while its COMMIT waited for the
/// synchronous standby has committed locally, and the standby may already hold it. Only
/// an error the server answered for the transaction itself (a deferred check, a
/// serialization failure) means it was rolled back.
pub fn commit_outcome_unknown(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
        _ => true,
    }
}

/// Shorthand for store results.
pub type DbResult<T> = Result<T, DbError>;

/// Connect a pool of `size` connections (tools: migrate, seed, verify; no timeouts).
pub async fn connect(url: &str, size: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(size.max(2))
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
}

/// The pools of a serving node: one for reads and activations, one of its own for the
/// committer, both with server-side statement and idle-transaction timeouts and generic plans.
#[derive(Clone, Debug)]
pub struct NodePools {
    /// Reads, activations, admin writes.
    pub reads: PgPool,
    /// The node-wide committer only.
    pub commits: PgPool,
}

/// Connect the pools of a serving node (see [`NodePools`]).
pub async fn connect_node(db: &crate::config::DatabaseSettings) -> Result<NodePools, sqlx::Error> {
    connect_node_as(db, None).await
}

/// [`connect_node`] for node `node`: every connection says so in its `application_name`
/// ([`application_name`]), so the coordinator can tell a dead node's backends from the
/// others' (and end those that hold its locks).
pub async fn connect_node_as(
    db: &crate::config::DatabaseSettings,
    node: Option<&str>,
) -> Result<NodePools, sqlx::Error> {
    let mut options = PgConnectOptions::from_str(&db.database_url)?;
    if let Some(node) = node {
        options = options.application_name(&application_name(node));
    }
    let options = options.options([
        ("statement_timeout", db.statement_timeout_ms.to_string()),
        (
            "idle_in_transaction_session_timeout",
            db.idle_in_transaction_timeout_ms.to_string(),
        ),
        // Plan each prepared statement once per connection. The hot path's statements
        // take arrays (`= ANY($1)`, `unnest($1)`), whose length the generic plan does not
        // know, so PostgreSQL would otherwise plan every execution again; planning was a
        // fifth of its CPU on three nodes (docs/benchmarks.md).
        ("plan_cache_mode", "force_generic_plan".to_string()),
    ]);
    let pool = |size: u32| {
        PgPoolOptions::new()
            .max_connections(size.max(2))
            .acquire_timeout(Duration::from_millis(db.acquire_timeout_ms.max(1)))
            .after_connect(|conn, _| Box::pin(refuse_read_only(conn)))
    };
    let reads = pool(db.db_pool_size).connect_with(options.clone()).await?;
    // Lazy: a node starts even if its committer's first connection is slow to come.
    let commits = pool(db.commit_pool_size).connect_lazy_with(options);
    Ok(NodePools { reads, commits })
}

/// The pool of the read replica for browsing (`database_read_url`), if one is set: lazy,
/// so a node starts while the replica is down, with the statement timeout of the node's
/// other pools and half their size.
pub fn browse_pool(db: &crate::config::DatabaseSettings) -> Result<Option<PgPool>, sqlx::Error> {
    if db.database_read_url.is_empty() {
        return Ok(None);
    }
    let options = PgConnectOptions::from_str(&db.database_read_url)?
        .options([("statement_timeout", db.statement_timeout_ms.to_string())]);
    Ok(Some(
        PgPoolOptions::new()
            .max_connections((db.db_pool_size / 2).max(2))
            .acquire_timeout(Duration::from_millis(db.acquire_timeout_ms.max(1)))
            .connect_lazy_with(options),
    ))
}

/// The `application_name` of node `node`'s connections.
pub fn application_name(node: &str) -> String {
    format!("registrar/{node}")
}

/// A small pool of its own for the membership (heartbeats, the coordinator's lease and its
/// reassignment), with the connect options of `reads`: a busy shared pool, whose queries
/// wait for a connection, must never delay a lease renewal.
pub fn membership_pool(reads: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(MEMBERSHIP_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(|conn, _| Box::pin(refuse_read_only(conn)))
        .connect_lazy_with((*reads.connect_options()).clone())
}

/// Refuse a new connection to a server that cannot write (`after_connect` of a serving
/// node's pools), as libpq's `target_session_attrs=read-write` does: during a failover a
/// proxy or a DNS name may still lead to the old primary, demoted to a standby. The pool
/// drops the connection and tries again (with backoff, within its acquire timeout), so a
/// request meanwhile answers 503 `unavailable` and no node keeps a pooled connection to a
/// standby. One round trip per new connection, none per query.
async fn refuse_read_only(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
        .fetch_one(&mut *conn)
        .await?;
    if read_only == "on" {
        return Err(sqlx::Error::Protocol(
            "the server is read-only (a standby, or a primary being demoted); not pooled".into(),
        ));
    }
    Ok(())
}

/// The heartbeat, the coordinator's step, and one spare (a connection being replaced).
const MEMBERSHIP_CONNECTIONS: u32 = 3;

/// Whether PostgreSQL answers a trivial query (readiness).
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await
        .is_ok()
}

/// Apply the embedded migrations, then renumber the outbox if the database was restored
/// into another PostgreSQL cluster ([`outbox::renumber_after_restore`]).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await?;
    outbox::renumber_after_restore(pool).await.map_err(|e| {
        sqlx::migrate::MigrateError::Execute(sqlx::Error::Protocol(format!(
            "renumbering the outbox after a restore: {e}"
        )))
    })?;
    Ok(())
}
