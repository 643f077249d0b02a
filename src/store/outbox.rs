//! The outbox's read side: what the relay claims, publishes and marks, and the backlog the
//! operations endpoints report. Rows are written in the section commit
//! ([`super::sections`]); this module never inserts.
//!
//! A claim is a transaction holding its rows `FOR UPDATE SKIP LOCKED`, so relays on several
//! nodes never take the same rows; it ends by [`OutboxClaim::finish`] (commit with
//! the rows marked) or [`OutboxClaim::release`] (commit, nothing marked). Dropping a claim
//! rolls it back, and its rows go to the next round; so does a relay's crash (its
//! connection closes). A relay that stops without closing its connection (a paused
//! process, a node cut off the network) would hold its rows for as long as PostgreSQL
//! keeps the connection, so a claim also ends PostgreSQL-side once its transaction has been
//! idle for [`CLAIM_IDLE_TIMEOUT`], and another relay takes the rows.
//!
//! An event the broker returned as unroutable stays unpublished: [`OutboxClaim::finish`]
//! puts it off with an exponential delay (1 s, 2 s, 4 s, ... at most
//! [`MAX_RETRY_DELAY_SECS`]), and claims skip it until then, without scanning it (the
//! claim reads two partial indexes: rows due for a retry, rows never tried).

use super::DbResult;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// Longest delay before an unroutable event is published again: an hour, so that a
/// deployment whose events nobody receives (no consumer queue declared yet) re-sends its
/// held events at most hourly (see docs/operations.md to release them at once).
pub const MAX_RETRY_DELAY_SECS: i64 = 3600;

/// Longest a claim's transaction may sit idle (the relay publishing its rows) before
/// PostgreSQL ends it; well above the relay's longest round.
pub const CLAIM_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One unpublished event, as the relay sends it.
#[derive(Debug, sqlx::FromRow)]
pub struct OutboxEvent {
    /// Row id: publishing follows it, so events leave in commit order.
    pub id: i64,
    /// Unique event id; sent as the message id so consumers can dedupe redeliveries.
    pub event_id: Uuid,
    /// Routing key on the events exchange, also sent as the message type.
    pub routing_key: String,
    /// The event body, sent as JSON.
    pub payload: serde_json::Value,
    /// Times the broker returned it as unroutable so far.
    pub attempts: i32,
}

/// Unpublished events held by one relay round (see module docs).
pub struct OutboxClaim {
    /// Holds the row locks until the claim ends.
    tx: Transaction<'static, Postgres>,
    /// The claimed events, in id order.
    pub events: Vec<OutboxEvent>,
}

/// Claim up to `limit` unpublished events that no other relay holds: first those due for
/// a retry, then the oldest never tried; in id order.
pub async fn claim(pool: &PgPool, limit: i64) -> DbResult<OutboxClaim> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('idle_in_transaction_session_timeout', $1, true)")
        .bind(format!("{}ms", CLAIM_IDLE_TIMEOUT.as_millis()))
        .execute(&mut *tx)
        .await?;
    // Two statements, each served by its own partial index, so rows put off for later
    // are never scanned (see the migrations adding `outbox_retry` and `outbox_fresh`).
    let mut events: Vec<OutboxEvent> = sqlx::query_as(
        "SELECT id, event_id, routing_key, payload, attempts FROM outbox
          WHERE published_at IS NULL AND next_attempt_at IS NOT NULL AND next_attempt_at <= now()
          ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let room = limit - events.len() as i64;
    if room > 0 {
        let fresh: Vec<OutboxEvent> = sqlx::query_as(
            "SELECT id, event_id, routing_key, payload, attempts FROM outbox
              WHERE published_at IS NULL AND next_attempt_at IS NULL
              ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(room)
        .fetch_all(&mut *tx)
        .await?;
        events.extend(fresh);
    }
    events.sort_unstable_by_key(|e| e.id);
    Ok(OutboxClaim { tx, events })
}

impl OutboxClaim {
    /// Mark the events `published` (row ids) published, put the `unroutable` ones off
    /// until their next attempt (see module docs), and commit.
    pub async fn finish(mut self, published: &[i64], unroutable: &[i64]) -> DbResult<()> {
        if !published.is_empty() {
            sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
                .bind(published)
                .execute(&mut *self.tx)
                .await?;
        }
        if !unroutable.is_empty() {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1,
                        next_attempt_at = now() + make_interval(secs =>
                            least($2::float8, power(2, least(attempts, 30))::float8))
                  WHERE id = ANY($1)",
            )
            .bind(unroutable)
            .bind(MAX_RETRY_DELAY_SECS as f64)
            .execute(&mut *self.tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }

    /// End the claim without marking anything (nothing was claimed, say).
    pub async fn release(self) -> DbResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// Events not yet confirmed by the broker.
pub async fn backlog(pool: &PgPool) -> DbResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(pool)
            .await?,
    )
}
