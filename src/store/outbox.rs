//! The outbox's read side: what the relay claims, publishes and passes, and the backlog the
//! operations endpoints report. Rows are written in the section commit
//! ([`super::sections`]); this module never inserts an event.
//!
//! Publication is tracked by a watermark, not by a mark per row. Each outbox row carries
//! the id of the transaction that wrote it (`txid`), and the one row of `outbox_cursor`
//! says how far, in (txid, id) order, the events have been published. A claim reads the
//! events past the cursor whose transaction is older than every transaction still running
//! (`pg_snapshot_xmin` of the claim's own snapshot): those have all committed or aborted,
//! so no event can ever appear below that point later, and moving the cursor over them
//! never skips one. A transaction still committing holds the cursor back; it does not
//! lose its events. Publishing a round costs one cursor update, where a mark per row cost
//! an UPDATE (a new row version, non-HOT, and its index entries) per event.
//!
//! A claim is a transaction holding the cursor row `FOR UPDATE SKIP LOCKED`, so the relays
//! of several nodes take turns and never publish the same events in normal running (a
//! relay that finds the cursor taken has nothing to do this round). It ends by
//! [`OutboxClaim::finish`] (commit, the cursor moved) or [`OutboxClaim::release`]
//! (commit, nothing moved). Dropping a claim rolls it back, and its events go to the next
//! round; so does a relay's crash (its connection closes). A relay that stops without
//! closing its connection (a paused process, a node cut off the network) would hold the
//! cursor for as long as PostgreSQL keeps the connection, so a claim also ends
//! PostgreSQL-side once its transaction has been idle for [`CLAIM_IDLE_TIMEOUT`].
//!
//! An event the broker returned as unroutable is passed by the cursor like the others but
//! recorded in `outbox_retries`: [`OutboxClaim::finish`] puts it off with an exponential
//! delay (1 s, 2 s, 4 s, ... at most [`MAX_RETRY_DELAY_SECS`]), and later claims take it
//! from there once it is due, until the broker routes it. Such events count in the
//! backlog and are never pruned while they wait.

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
    /// Row id: within a transaction, publishing follows it.
    pub id: i64,
    /// The writing transaction: publishing follows it first, so one section's events
    /// leave in the order they were committed.
    pub txid: i64,
    /// Unique event id; sent as the message id so consumers can dedupe redeliveries.
    pub event_id: Uuid,
    /// Routing key on the events exchange, also sent as the message type.
    pub routing_key: String,
    /// The event body, sent as JSON.
    pub payload: serde_json::Value,
    /// Times the broker returned it as unroutable so far (0: taken past the cursor).
    pub attempts: i32,
}

/// Events held by one relay round (see module docs).
pub struct OutboxClaim {
    /// Holds the cursor row until the claim ends.
    tx: Transaction<'static, Postgres>,
    /// The claimed events: those due for a retry, then those past the cursor in order.
    pub events: Vec<OutboxEvent>,
    /// Where the cursor goes when the claim finishes: the last event taken past it.
    advance_to: Option<(i64, i64)>,
}

/// Claim up to `limit` events: first those due for a retry, then the next ones past the
/// cursor, in (txid, id) order. `None` while another relay holds the cursor.
pub async fn claim(pool: &PgPool, limit: i64) -> DbResult<Option<OutboxClaim>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('idle_in_transaction_session_timeout', $1, true)")
        .bind(format!("{}ms", CLAIM_IDLE_TIMEOUT.as_millis()))
        .execute(&mut *tx)
        .await?;
    let cursor: Option<(i64, i64)> =
        sqlx::query_as("SELECT txid, id FROM outbox_cursor FOR UPDATE SKIP LOCKED")
            .fetch_optional(&mut *tx)
            .await?;
    let Some((txid, id)) = cursor else {
        tx.commit().await?;
        return Ok(None);
    };
    // The cursor row serializes the relays: these reads need no row locks.
    let mut events: Vec<OutboxEvent> = sqlx::query_as(
        "SELECT o.id, o.txid, o.event_id, o.routing_key, o.payload, r.attempts
           FROM outbox_retries r JOIN outbox o ON o.id = r.id
          WHERE r.next_attempt_at <= now()
          ORDER BY r.next_attempt_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let room = limit - events.len() as i64;
    let mut advance_to = None;
    if room > 0 {
        let fresh: Vec<OutboxEvent> = sqlx::query_as(
            "SELECT id, txid, event_id, routing_key, payload, 0 AS attempts FROM outbox
              WHERE (txid, id) > ($1, $2)
                AND txid < (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint
              ORDER BY txid, id LIMIT $3",
        )
        .bind(txid)
        .bind(id)
        .bind(room)
        .fetch_all(&mut *tx)
        .await?;
        advance_to = fresh.last().map(|e| (e.txid, e.id));
        events.extend(fresh);
    }
    Ok(Some(OutboxClaim {
        tx,
        events,
        advance_to,
    }))
}

impl OutboxClaim {
    /// Move the cursor past the claimed events, forget the retries of the `published`
    /// ones (row ids), put the `unroutable` ones off until their next attempt (see module
    /// docs), and commit. Every claimed event must be one or the other.
    pub async fn finish(mut self, published: &[i64], unroutable: &[i64]) -> DbResult<()> {
        if let Some((txid, id)) = self.advance_to {
            sqlx::query("UPDATE outbox_cursor SET txid = $1, id = $2, updated_at = now()")
                .bind(txid)
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
        }
        let retried: Vec<i64> = self
            .events
            .iter()
            .filter(|e| e.attempts > 0 && published.contains(&e.id))
            .map(|e| e.id)
            .collect();
        if !retried.is_empty() {
            sqlx::query("DELETE FROM outbox_retries WHERE id = ANY($1)")
                .bind(&retried)
                .execute(&mut *self.tx)
                .await?;
        }
        if !unroutable.is_empty() {
            sqlx::query(
                "INSERT INTO outbox_retries (id, attempts, next_attempt_at)
                 SELECT id, 1, now() + interval '1 second' FROM unnest($1::int8[]) AS t(id)
                 ON CONFLICT (id) DO UPDATE SET attempts = outbox_retries.attempts + 1,
                        next_attempt_at = now() + make_interval(secs =>
                            least($2::float8, power(2, least(outbox_retries.attempts, 30))::float8))",
            )
            .bind(unroutable)
            .bind(MAX_RETRY_DELAY_SECS as f64)
            .execute(&mut *self.tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }

    /// End the claim without moving anything (nothing was claimed, say).
    pub async fn release(self) -> DbResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// After the database was restored into another PostgreSQL cluster, whose transaction
/// ids start lower than the ones the rows and the cursor carry, renumber the outbox so no
/// event is stranded below the cursor: the old cluster's events past the cursor get txid
/// 1 (published first), those behind it txid 0, and the cursor goes back to just below
/// txid 1; events of the new cluster's ids, all above 1, follow. Detected by the cursor
/// being ahead of every transaction id the server has handed out; run at every start,
/// after the migrations. Returns whether it renumbered.
pub async fn renumber_after_restore(pool: &PgPool) -> DbResult<bool> {
    // Without a lock first: a start must not wait for a relay round holding the cursor
    // (up to CLAIM_IDLE_TIMEOUT for a stalled one) just to find nothing to do.
    let (txid, _, next): (i64, i64, i64) = sqlx::query_as(
        "SELECT txid, id, (pg_snapshot_xmax(pg_current_snapshot())::text)::bigint
           FROM outbox_cursor",
    )
    .fetch_one(pool)
    .await?;
    if txid < next {
        return Ok(false);
    }
    let mut tx = pool.begin().await?;
    let (txid, id, next): (i64, i64, i64) = sqlx::query_as(
        "SELECT txid, id, (pg_snapshot_xmax(pg_current_snapshot())::text)::bigint
               FROM outbox_cursor FOR UPDATE",
    )
    .fetch_one(&mut *tx)
    .await?;
    if txid < next {
        tx.commit().await?;
        return Ok(false);
    }
    // Rows numbered beyond this cluster's ids are the old cluster's. Rows below could be
    // either (its early events, or this cluster's): they keep their ids, past the new
    // cursor, and are published again if they were already: a duplicate, never a loss.
    let moved = sqlx::query(
        "UPDATE outbox SET txid = CASE WHEN (txid, id) > ($1, $2) THEN 1 ELSE 0 END
          WHERE txid >= $3",
    )
    .bind(txid)
    .bind(id)
    .bind(next)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("UPDATE outbox_cursor SET txid = 0, id = $1, updated_at = now()")
        .bind(i64::MAX)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::warn!(
        cursor_txid = txid,
        events = moved,
        "the outbox cursor was ahead of this PostgreSQL's transaction ids (a restore into another cluster?): events renumbered"
    );
    Ok(true)
}

/// Events not yet confirmed by the broker: those past the cursor (committed ones; a
/// transaction still running is not counted until it commits) and those waiting for a
/// retry.
pub async fn backlog(pool: &PgPool) -> DbResult<i64> {
    // One snapshot for both reads (a round finishing in between would move events from
    // past the cursor to the retries, counted twice), and the cursor bound as values, so
    // the count is planned from the outbox's statistics for that range.
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let (txid, id): (i64, i64) = sqlx::query_as("SELECT txid, id FROM outbox_cursor")
        .fetch_one(&mut *tx)
        .await?;
    let count = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM outbox WHERE (txid, id) > ($1, $2))
              + (SELECT count(*) FROM outbox_retries)",
    )
    .bind(txid)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(count)
}
