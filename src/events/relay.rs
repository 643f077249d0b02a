//! The outbox relay: publishes committed `outbox` events to RabbitMQ in commit order, as
//! persistent JSON messages with publisher confirms, and moves the outbox cursor past them
//! only after the broker confirmed them. Resumes from the cursor after a restart. Several
//! relays can run (one per node): each round holds the cursor row (`FOR UPDATE SKIP
//! LOCKED`), so the relays take turns and two never publish the same events in normal
//! running, and a relay that died or stalled mid-round leaves its events to the others
//! (see [`crate::store::outbox`]).
//!
//! Messages are published `mandatory`: an event no queue is bound to receive comes back
//! with its confirm (RabbitMQ would otherwise confirm it and drop it). Such an event is
//! NOT counted as published: it is put off for a retry with a growing delay (see
//! [`crate::store::outbox`]) and is counted and logged, so a missing binding delays
//! events instead of losing them. The other events of the round pass as usual.
//! A crash between the confirm and the commit republishes a round: consumers dedupe on
//! `event_id`. A broker outage only grows the backlog; the relay reconnects with backoff.
//! The claim, the cursor and the backlog count are queries in [`crate::store::outbox`].

use super::amqp::{self, Link};
use crate::backoff::Backoff;
use crate::shutdown::Shutdown;
/// Rows not yet confirmed by the broker (re-exported for the relay bench).
pub use crate::store::outbox::backlog;
use crate::store::{DbError, outbox};
use lapin::BasicProperties;
use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Longest a publish round may take before the link is considered dead.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);
// A claim must outlive the round that publishes it.
const _: () = assert!(ROUND_TIMEOUT.as_secs() < outbox::CLAIM_IDLE_TIMEOUT.as_secs());
/// How often to look for rows other nodes committed (own commits wake the relay at once).
const POLL: Duration = Duration::from_millis(250);

/// Default of the oldest backlog figure `/readyz` and `/metrics` may report.
pub const BACKLOG_MAX_AGE: Duration = Duration::from_secs(2);

/// The outbox backlog as the operations endpoints report it: counted at most once per
/// `max_age` whatever the number of probes and scrapes (a count over a large backlog is
/// not free), by whichever caller finds the figure stale; the others wait for that count
/// rather than start their own.
pub struct BacklogGauge {
    /// How old a reported figure may be.
    max_age: Duration,
    /// The last count and when it was taken.
    last: tokio::sync::Mutex<Option<(Instant, i64)>>,
}

impl Default for BacklogGauge {
    fn default() -> Self {
        Self::new(BACKLOG_MAX_AGE)
    }
}

impl BacklogGauge {
    /// A gauge reporting figures at most `max_age` old.
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// Unpublished outbox rows, at most `max_age` old; `None` if the database cannot say.
    pub async fn get(&self, pool: &PgPool) -> Option<i64> {
        let mut last = self.last.lock().await;
        if let Some((at, n)) = *last
            && at.elapsed() < self.max_age
        {
            return Some(n);
        }
        let n = backlog(pool).await.ok()?;
        *last = Some((Instant::now(), n));
        Some(n)
    }
}

/// Relay figures for `/metrics` and `/readyz`.
#[derive(Default)]
pub struct RelayStats {
    /// Events confirmed by the broker and passed by the cursor.
    pub published: AtomicU64,
    /// Whether the relay currently holds a working broker link.
    pub connected: AtomicBool,
    /// Publishes the broker returned as unroutable (no queue bound); each stays in the
    /// outbox and is retried.
    pub unroutable: AtomicU64,
    /// The outbox backlog, cached (kept here so that nodes without a relay report it too).
    pub backlog: BacklogGauge,
}

/// Why a round failed.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("broker refused (nack) an event")]
    Nacked,
    #[error("broker did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// How a round ended.
enum Round {
    /// Events were claimed and published (or put off): there may be more.
    Published,
    /// Nothing to publish.
    Idle,
    /// Another relay holds the cursor.
    CursorTaken,
}

/// The relay (see module docs).
#[derive(Clone)]
pub struct OutboxRelay {
    pool: PgPool,
    url: String,
    exchange: String,
    batch: i64,
    wake: Arc<Notify>,
    stats: Arc<RelayStats>,
}

impl OutboxRelay {
    /// A relay from `pool` to the broker at `url`, woken early by `wake`.
    pub fn new(
        pool: PgPool,
        url: String,
        exchange: String,
        batch: u32,
        wake: Arc<Notify>,
        stats: Arc<RelayStats>,
    ) -> Self {
        Self {
            pool,
            url,
            exchange,
            batch: i64::from(batch.max(1)),
            wake,
            stats,
        }
    }

    /// Relay until `shutdown` turns true.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut link: Option<Link> = None;
        loop {
            if shutdown.is_shutdown() {
                break;
            }
            let current = match link.take() {
                Some(l) => l,
                None => match self.open().await {
                    Ok(l) => {
                        tracing::info!(exchange = %self.exchange, "outbox relay connected to the broker");
                        self.stats.connected.store(true, Ordering::Relaxed);
                        backoff.reset();
                        l
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox relay cannot reach the broker; retrying");
                        if shutdown.sleep(backoff.next_delay()).await {
                            break;
                        }
                        continue;
                    }
                },
            };
            let round = tokio::time::timeout(ROUND_TIMEOUT, self.round(&current)).await;
            match round.unwrap_or(Err(RoundError::Timeout(ROUND_TIMEOUT))) {
                Ok(Round::Idle) => {
                    link = Some(current);
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(POLL) => {}
                        _ = shutdown.recv() => {}
                    }
                }
                Ok(Round::CursorTaken) => {
                    // The relay holding the cursor publishes this node's commits too:
                    // waking at each of them would only find the cursor taken again.
                    link = Some(current);
                    if shutdown.sleep(POLL).await {
                        break;
                    }
                }
                Ok(Round::Published) => {
                    link = Some(current);
                }
                Err(RoundError::Db(e)) => {
                    tracing::warn!(error = %e, "outbox relay: database error; retrying");
                    link = Some(current);
                    if shutdown.sleep(backoff.next_delay()).await {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay lost the broker; reconnecting");
                    self.stats.connected.store(false, Ordering::Relaxed);
                    let _ = current.connection.close(0, "reconnecting".into()).await;
                    if shutdown.sleep(backoff.next_delay()).await {
                        break;
                    }
                }
            }
        }
        self.stats.connected.store(false, Ordering::Relaxed);
    }

    async fn open(&self) -> Result<Link, RoundError> {
        let link = tokio::time::timeout(ROUND_TIMEOUT, amqp::connect(&self.url, &self.exchange))
            .await
            .map_err(|_| RoundError::Timeout(ROUND_TIMEOUT))??;
        link.channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(link)
    }

    /// Claim a batch of events, publish them, await every confirm, move the cursor past
    /// them and put off the unroutable ones.
    async fn round(&self, link: &Link) -> Result<Round, RoundError> {
        let Some(claim) = outbox::claim(&self.pool, self.batch).await? else {
            return Ok(Round::CursorTaken);
        };
        if claim.events.is_empty() {
            claim.release().await?;
            return Ok(Round::Idle);
        }
        let mut confirms = Vec::with_capacity(claim.events.len());
        for event in &claim.events {
            let body = serde_json::to_vec(&event.payload).unwrap_or_default();
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(event.event_id.to_string().into())
                .with_type(event.routing_key.as_str().into());
            let confirm = link
                .channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    event.routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &body,
                    properties,
                )
                .await?;
            confirms.push(confirm);
        }
        let mut published = Vec::with_capacity(confirms.len());
        let mut unroutable = Vec::new();
        for (event, confirm) in claim.events.iter().zip(confirms) {
            match confirm.await? {
                Confirmation::Ack(None) => published.push(event.id),
                Confirmation::Ack(Some(_returned)) => unroutable.push(event),
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    return Err(RoundError::Nacked);
                }
            }
        }
        if let Some(first) = unroutable.first() {
            // One line per round, not per event: a missing binding returns every event.
            let mut keys: Vec<&str> = unroutable.iter().map(|e| e.routing_key.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            tracing::warn!(
                exchange = %self.exchange,
                events = unroutable.len(),
                routing_keys = ?keys,
                first_event_id = %first.event_id,
                first_attempt = first.attempts + 1,
                "no queue is bound for these events; they stay in the outbox and will be retried"
            );
        }
        self.stats
            .unroutable
            .fetch_add(unroutable.len() as u64, Ordering::Relaxed);
        let unroutable: Vec<i64> = unroutable.iter().map(|e| e.id).collect();
        claim.finish(&published, &unroutable).await?;
        self.stats
            .published
            .fetch_add(published.len() as u64, Ordering::Relaxed);
        Ok(Round::Published)
    }
}
