//! The outbox's read side: what the relay claims, publishes and marks, and the backlog the
//! operations endpoints report. Rows are written in the section commit
//! ([`super::sections`]); this module never inserts.
//!
//! A claim is a transaction holding its rows `FOR UPDATE SKIP LOCKED`, so relays on several
//! nodes never take the same rows; it ends by [`OutboxClaim::mark_published`] (commit with
//! the rows marked) or [`OutboxClaim::release`] (commit, nothing marked). Dropping a claim
//! rolls it back, and its rows go to the next round.

use super::DbResult;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

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
}

/// Unpublished events held by one relay round (see module docs).
pub struct OutboxClaim {
    /// Holds the row locks until the claim ends.
    tx: Transaction<'static, Postgres>,
    /// The claimed events, in id order.
    pub events: Vec<OutboxEvent>,
}

/// Claim up to `limit` of the oldest unpublished events that no other relay holds.
pub async fn claim(pool: &PgPool, limit: i64) -> DbResult<OutboxClaim> {
    let mut tx = pool.begin().await?;
    let events: Vec<OutboxEvent> = sqlx::query_as(
        "SELECT id, event_id, routing_key, payload FROM outbox
          WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    Ok(OutboxClaim { tx, events })
}

impl OutboxClaim {
    /// Mark every claimed event published and commit.
    pub async fn mark_published(mut self) -> DbResult<()> {
        let ids: Vec<i64> = self.events.iter().map(|e| e.id).collect();
        sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *self.tx)
            .await?;
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
