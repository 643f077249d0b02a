//! Pruning of the tables that grow with traffic: published outbox rows, the audit trail
//! (`registration_attempts`) and stored idempotency answers. Each call deletes at most
//! `batch` rows older than a cutoff, picked through an index on the timestamp, so each
//! statement is short and holds few locks; the caller repeats until a call deletes fewer.
//!
//! Several nodes may prune at once: each statement locks the rows it picks with
//! `FOR UPDATE SKIP LOCKED`, so two pruners take different rows, and a row deleted by one
//! is simply not found by the other. Unpublished outbox rows never match (`published_at
//! < cutoff` is false for NULL), and a row the relay marks published meanwhile gets a
//! `published_at` of now, which is after any cutoff.

use super::DbResult;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Delete up to `batch` outbox rows published before `cutoff`; the number deleted.
pub async fn prune_outbox(pool: &PgPool, cutoff: DateTime<Utc>, batch: i64) -> DbResult<u64> {
    Ok(sqlx::query(
        "DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox WHERE published_at < $1
              ORDER BY published_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(cutoff)
    .bind(batch)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Delete up to `batch` audit rows recorded before `cutoff`; the number deleted.
pub async fn prune_attempts(pool: &PgPool, cutoff: DateTime<Utc>, batch: i64) -> DbResult<u64> {
    Ok(sqlx::query(
        "DELETE FROM registration_attempts WHERE id IN (
             SELECT id FROM registration_attempts WHERE created_at < $1
              ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(cutoff)
    .bind(batch)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Delete up to `batch` stored idempotency answers given before `cutoff`; the number
/// deleted.
pub async fn prune_idempotency_keys(
    pool: &PgPool,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> DbResult<u64> {
    Ok(sqlx::query(
        "DELETE FROM idempotency_keys k USING (
             SELECT student_id, key FROM idempotency_keys WHERE created_at < $1
              ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED) old
          WHERE k.student_id = old.student_id AND k.key = old.key",
    )
    .bind(cutoff)
    .bind(batch)
    .execute(pool)
    .await?
    .rows_affected())
}
