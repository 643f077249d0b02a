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

/// The tables that are pruned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrunedTable {
    /// Published outbox rows (by `published_at`).
    Outbox,
    /// The audit trail, `registration_attempts` (by `created_at`).
    Attempts,
    /// Stored idempotency answers (by `created_at`).
    IdempotencyKeys,
}

impl PrunedTable {
    /// Every pruned table.
    pub const ALL: [PrunedTable; 3] = [Self::Outbox, Self::Attempts, Self::IdempotencyKeys];

    /// The table's name (for logs).
    pub fn name(self) -> &'static str {
        match self {
            Self::Outbox => "outbox",
            Self::Attempts => "registration_attempts",
            Self::IdempotencyKeys => "idempotency_keys",
        }
    }

    /// Deletes up to `$2` rows older than `$1`, oldest first, skipping locked rows.
    fn delete(self) -> &'static str {
        match self {
            Self::Outbox => {
                "DELETE FROM outbox WHERE id IN (
                     SELECT id FROM outbox WHERE published_at < $1
                      ORDER BY published_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
            }
            Self::Attempts => {
                "DELETE FROM registration_attempts WHERE id IN (
                     SELECT id FROM registration_attempts WHERE created_at < $1
                      ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
            }
            Self::IdempotencyKeys => {
                "DELETE FROM idempotency_keys k USING (
                     SELECT student_id, key FROM idempotency_keys WHERE created_at < $1
                      ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED) old
                  WHERE k.student_id = old.student_id AND k.key = old.key"
            }
        }
    }
}

/// Delete up to `batch` rows of `table` older than `cutoff`; the number deleted.
pub async fn prune(
    pool: &PgPool,
    table: PrunedTable,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> DbResult<u64> {
    Ok(sqlx::query(table.delete())
        .bind(cutoff)
        .bind(batch)
        .execute(pool)
        .await?
        .rows_affected())
}
