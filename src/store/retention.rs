//! Pruning of the tables that grow with traffic: published outbox rows, the audit trail
//! (`registration_attempts`) and stored idempotency answers. Each call deletes at most
//! `batch` rows older than a cutoff, picked through an index on the timestamp, so each
//! statement is short and holds few locks; the caller repeats until a call deletes fewer.
//!
//! Several nodes may prune at once: each statement locks the rows it picks with
//! `FOR UPDATE SKIP LOCKED`, so two pruners take different rows, and a row deleted by one
//! is simply not found by the other. Unpublished outbox rows never match: an outbox row
//! goes only once its transaction is wholly behind the publication cursor and it waits
//! for no retry (see [`super::outbox`]).

use super::DbResult;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// The tables that are pruned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrunedTable {
    /// Published outbox rows (by `created_at`, behind the publication cursor).
    Outbox,
    /// The audit trail, `registration_attempts` (by `created_at`).
    Attempts,
    /// Stored idempotency answers (by `created_at`).
    IdempotencyKeys,
    /// Finished decisions over several sections (by `created_at`; never one still being
    /// carried out), kept as long as the audit trail.
    Decisions,
}

impl PrunedTable {
    /// Every pruned table.
    pub const ALL: [PrunedTable; 4] = [
        Self::Outbox,
        Self::Attempts,
        Self::IdempotencyKeys,
        Self::Decisions,
    ];

    /// The table's name (for logs).
    pub fn name(self) -> &'static str {
        match self {
            Self::Outbox => "outbox",
            Self::Attempts => "registration_attempts",
            Self::IdempotencyKeys => "idempotency_keys",
            Self::Decisions => "decisions",
        }
    }

    /// Deletes up to `$2` rows older than `$1`, oldest first, skipping locked rows.
    fn delete(self) -> &'static str {
        match self {
            // Events of transactions wholly behind the cursor (the cursor's own
            // transaction may continue past it) that wait for no retry, walked from the
            // oldest: the first `$2` of them, of which those older than `$1` go. The
            // walk follows the writing transactions, roughly the time order, so a head
            // without rows past retention means there are none further on either. Rows
            // from before the cursor existed (txid NULL) go by `published_at` as before.
            Self::Outbox => {
                "WITH head AS (
                     SELECT o.id, o.created_at FROM outbox o
                      WHERE o.txid < (SELECT txid FROM outbox_cursor)
                        AND NOT EXISTS (SELECT 1 FROM outbox_retries r WHERE r.id = o.id)
                      ORDER BY o.txid, o.id LIMIT $2 FOR UPDATE OF o SKIP LOCKED),
                 legacy AS (
                     SELECT id FROM outbox WHERE txid IS NULL AND published_at < $1
                      ORDER BY published_at LIMIT $2 FOR UPDATE SKIP LOCKED)
                 DELETE FROM outbox WHERE id IN (
                     SELECT id FROM head WHERE created_at < $1
                     UNION ALL SELECT id FROM legacy)"
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
            Self::Decisions => {
                "DELETE FROM decisions WHERE id IN (
                     SELECT id FROM decisions WHERE created_at < $1 AND finished_at IS NOT NULL
                      ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
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
