//! The event consumers shipped with registrar, each on its own durable queue bound to every
//! routing key, each applying an event at most once: the event id goes into
//! `consumed_events` in the same transaction as the effect, and the message is acked after
//! that commit (a redelivery finds the id and is just acked).
//!
//! - `notify`: one notification per student-facing event ("Promoted from the waitlist to
//!   CS101-02"), read at `GET /api/v1/students/me/notifications`.
//! - `analytics`: per-section counts (enrolled, waitlisted, dropped, promoted), time to
//!   fill, and enrollments per minute per term, read at `GET /api/v1/analytics/terms/{id}`.
//!
//! A message a consumer can never apply is not requeued forever: each consumer queue is
//! declared with a dead-letter exchange (`<exchange>.dlx`, direct) that routes what it
//! rejects to `<queue>.dead`. An undecodable message is rejected at once; an event whose
//! effect the database refuses ([`sqlx::Error::Database`]) is requeued and tried again,
//! up to [`ConsumerConfig::max_attempts`] times, then rejected. Tries are counted per
//! event id in memory (a classic queue has no delivery count), so a restart or a
//! redelivery to another node starts counting again: a poison event may be tried a few
//! more times, never forever. A database that cannot be reached (pool timeout, I/O) is
//! not the event's fault: those failures are retried without counting.
//!
//! Also the operators' `registrar events tail`, which prints events as they arrive.

use super::amqp;
use super::payload::{Event, EventKind};
use crate::backoff::Backoff;
use crate::shutdown::Shutdown;
use chrono::{DurationRound, TimeDelta};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// Most event ids whose failed tries are remembered; beyond it the count starts afresh
/// (a bound on memory if many events fail at once, at the cost of a few extra tries).
const MAX_TRACKED: usize = 10_000;

/// Which consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerKind {
    /// Student notifications.
    Notify,
    /// Registration figures.
    Analytics,
}

impl ConsumerKind {
    /// Name (queue suffix and `consumed_events.consumer`).
    pub fn name(self) -> &'static str {
        match self {
            ConsumerKind::Notify => "notify",
            ConsumerKind::Analytics => "analytics",
        }
    }
}

/// Where a consumer reads from.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Broker URL.
    pub url: String,
    /// Exchange to bind to.
    pub exchange: String,
    /// Durable queue name; its dead letters go to `<queue>.dead`.
    pub queue: String,
    /// Tries of an event the database refuses before it is dead-lettered (at least 1).
    pub max_attempts: u32,
}

impl ConsumerConfig {
    /// The configuration of `kind`'s consumer from the node's settings.
    pub fn of(kind: ConsumerKind, events: &crate::config::EventSettings) -> Self {
        Self {
            url: events.amqp_url.clone(),
            exchange: events.events_exchange.clone(),
            queue: format!("{}.{}", events.queue_prefix, kind.name()),
            max_attempts: events.consumer_max_attempts,
        }
    }

    /// The dead-letter exchange of the consumers of `exchange`.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.exchange)
    }

    /// The queue this consumer's dead letters land in.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.queue)
    }
}

/// Failed tries per event id, across reconnections of one consumer.
#[derive(Default)]
struct Tries(HashMap<Uuid, u32>);

impl Tries {
    /// Count one more failed try of `event`; the count so far.
    fn failed(&mut self, event: Uuid) -> u32 {
        if self.0.len() >= MAX_TRACKED && !self.0.contains_key(&event) {
            self.0.clear();
        }
        let n = self.0.entry(event).or_insert(0);
        *n += 1;
        *n
    }

    /// Forget `event` (applied, or dead-lettered).
    fn forget(&mut self, event: &Uuid) {
        self.0.remove(event);
    }
}

/// Consume until `shutdown`, reconnecting with backoff.
pub async fn run(kind: ConsumerKind, pool: PgPool, config: ConsumerConfig, mut shutdown: Shutdown) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut tries = Tries::default();
    while !shutdown.is_shutdown() {
        match consume(
            kind,
            &pool,
            &config,
            &mut shutdown,
            &mut backoff,
            &mut tries,
        )
        .await
        {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(consumer = kind.name(), error = %e, "consumer lost the broker; reconnecting");
                if shutdown.sleep(backoff.next_delay()).await {
                    break;
                }
            }
        }
    }
}

async fn consume(
    kind: ConsumerKind,
    pool: &PgPool,
    config: &ConsumerConfig,
    shutdown: &mut Shutdown,
    backoff: &mut Backoff,
    tries: &mut Tries,
) -> Result<(), lapin::Error> {
    let link = amqp::connect(&config.url, &config.exchange).await?;
    let ch = &link.channel;
    declare_queues(ch, config).await?;
    ch.queue_bind(
        config.queue.as_str().into(),
        config.exchange.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.basic_qos(256, BasicQosOptions::default()).await?;
    let mut deliveries = ch
        .basic_consume(
            config.queue.as_str().into(),
            format!("registrar-{}", kind.name()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    backoff.reset();
    tracing::info!(consumer = kind.name(), queue = %config.queue, "consuming");
    loop {
        let delivery = tokio::select! {
            d = deliveries.next() => d,
            _ = shutdown.recv() => return Ok(()),
        };
        let Some(delivery) = delivery else {
            return Err(lapin::ErrorKind::InvalidChannelState(
                lapin::ChannelState::Closed,
                "consumer stream ended",
            )
            .into());
        };
        let delivery = delivery?;
        handle(kind, pool, config, &delivery, backoff, tries, shutdown).await?;
    }
}

/// Declare the dead-letter exchange, the dead-letter queue and the consumer's queue
/// (rejecting into the former). RabbitMQ refuses to redeclare a queue with other
/// arguments: a queue declared before dead-lettering existed must be deleted first (see
/// docs/operations.md).
async fn declare_queues(ch: &Channel, config: &ConsumerConfig) -> Result<(), lapin::Error> {
    let dlx = config.dead_letter_exchange();
    let dead = config.dead_letter_queue();
    ch.exchange_declare(
        dlx.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        dead.as_str().into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        dead.as_str().into(),
        dlx.as_str().into(),
        dead.as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(dlx.as_str().into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(dead.as_str().into()),
    );
    ch.queue_declare(
        config.queue.as_str().into(),
        QueueDeclareOptions::durable(),
        args,
    )
    .await?;
    Ok(())
}

/// Apply one delivery and settle it: ack when applied, requeue a try that may succeed
/// later, reject (dead-letter) what never will.
async fn handle(
    kind: ConsumerKind,
    pool: &PgPool,
    config: &ConsumerConfig,
    delivery: &Delivery,
    backoff: &mut Backoff,
    tries: &mut Tries,
    shutdown: &mut Shutdown,
) -> Result<(), lapin::Error> {
    let reject = BasicNackOptions {
        requeue: false,
        ..Default::default()
    };
    let requeue = BasicNackOptions {
        requeue: true,
        ..Default::default()
    };
    let event: Event = match serde_json::from_slice(&delivery.data) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(consumer = kind.name(), error = %e, dead_letter_queue = %config.dead_letter_queue(), "undecodable message; dead-lettering it");
            delivery.nack(reject).await?;
            return Ok(());
        }
    };
    match apply(kind, pool, &event).await {
        Ok(_) => {
            tries.forget(&event.event_id);
            backoff.reset();
            delivery.ack(BasicAckOptions::default()).await?;
            Ok(())
        }
        Err(e @ sqlx::Error::Database(_)) => {
            let n = tries.failed(event.event_id);
            if n >= config.max_attempts.max(1) {
                tracing::error!(consumer = kind.name(), event_id = %event.event_id, tries = n, error = %e, dead_letter_queue = %config.dead_letter_queue(), "the database refuses this event; dead-lettering it");
                tries.forget(&event.event_id);
                delivery.nack(reject).await?;
                return Ok(());
            }
            tracing::warn!(consumer = kind.name(), event_id = %event.event_id, tries = n, error = %e, "could not apply; requeueing");
            delivery.nack(requeue).await?;
            shutdown.sleep(backoff.next_delay()).await;
            Ok(())
        }
        Err(e) => {
            tracing::warn!(consumer = kind.name(), event_id = %event.event_id, error = %e, "database unreachable; requeueing");
            delivery.nack(requeue).await?;
            shutdown.sleep(backoff.next_delay()).await;
            Ok(())
        }
    }
}

/// Apply `event` once; false if it had been applied before.
pub async fn apply(kind: ConsumerKind, pool: &PgPool, event: &Event) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let fresh = sqlx::query(
        "INSERT INTO consumed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(kind.name())
    .bind(event.event_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if fresh {
        match kind {
            ConsumerKind::Notify => notify(&mut tx, event).await?,
            ConsumerKind::Analytics => analytics(&mut tx, event).await?,
        }
    }
    tx.commit().await?;
    Ok(fresh)
}

async fn notify(tx: &mut Transaction<'_, Postgres>, e: &Event) -> Result<(), sqlx::Error> {
    let Some(student) = e.student_id else {
        return Ok(());
    };
    let label: Option<String> =
        sqlx::query_scalar("SELECT course_code || '-' || section_code FROM sections WHERE id = $1")
            .bind(e.section_id)
            .fetch_optional(&mut **tx)
            .await?;
    let label = label.unwrap_or_else(|| e.section_id.to_string());
    let (kind, message) = match e.kind {
        EventKind::EnrollmentCreated => ("enrolled", format!("Enrolled in {label}")),
        EventKind::WaitlistAdded => match e.position {
            Some(p) => (
                "waitlisted",
                format!("Waitlisted for {label} at position {p}"),
            ),
            None => ("waitlisted", format!("Waitlisted for {label}")),
        },
        EventKind::WaitlistPromoted => {
            ("promoted", format!("Promoted from the waitlist to {label}"))
        }
        EventKind::EnrollmentDropped => ("dropped", format!("Dropped {label}")),
        EventKind::CapacityChanged => return Ok(()),
    };
    sqlx::query(
        "INSERT INTO notifications (student_id, event_id, kind, message, section_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(student)
    .bind(e.event_id)
    .bind(kind)
    .bind(message)
    .bind(e.section_id)
    .bind(e.occurred_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn analytics(tx: &mut Transaction<'_, Postgres>, e: &Event) -> Result<(), sqlx::Error> {
    let Some(term): Option<Uuid> = sqlx::query_scalar("SELECT term_id FROM sections WHERE id = $1")
        .bind(e.section_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(());
    };
    let column = match e.kind {
        EventKind::EnrollmentCreated => "enrolled",
        EventKind::WaitlistAdded => "waitlisted",
        EventKind::EnrollmentDropped => "dropped",
        EventKind::WaitlistPromoted => "promoted",
        EventKind::CapacityChanged => return Ok(()),
    };
    let takes_seat = matches!(column, "enrolled" | "promoted");
    let filled = takes_seat && e.capacity > 0 && e.seats_taken >= e.capacity;
    sqlx::query(
        "INSERT INTO section_stats (section_id, term_id, enrolled, waitlisted, dropped, promoted, first_event_at, filled_at)
         VALUES ($1, $2, ($3 = 'enrolled')::int, ($3 = 'waitlisted')::int, ($3 = 'dropped')::int, ($3 = 'promoted')::int, $4,
                 CASE WHEN $5 THEN $4 END)
         ON CONFLICT (section_id) DO UPDATE SET
             enrolled = section_stats.enrolled + ($3 = 'enrolled')::int,
             waitlisted = section_stats.waitlisted + ($3 = 'waitlisted')::int,
             dropped = section_stats.dropped + ($3 = 'dropped')::int,
             promoted = section_stats.promoted + ($3 = 'promoted')::int,
             first_event_at = LEAST(section_stats.first_event_at, EXCLUDED.first_event_at),
             filled_at = COALESCE(section_stats.filled_at, EXCLUDED.filled_at)",
    )
    .bind(e.section_id)
    .bind(term)
    .bind(column)
    .bind(e.occurred_at)
    .bind(filled)
    .execute(&mut **tx)
    .await?;
    if takes_seat {
        let minute = e
            .occurred_at
            .duration_trunc(TimeDelta::minutes(1))
            .unwrap_or(e.occurred_at);
        sqlx::query(
            "INSERT INTO enrollment_minutes (term_id, minute, enrolled) VALUES ($1, $2, 1)
             ON CONFLICT (term_id, minute) DO UPDATE SET enrolled = enrollment_minutes.enrolled + 1",
        )
        .bind(term)
        .bind(minute)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Print every event on `exchange` matching `binding` until `shutdown` (operators' tail).
pub async fn tail(
    url: &str,
    exchange: &str,
    binding: &str,
    mut shutdown: Shutdown,
) -> Result<(), lapin::Error> {
    let link = amqp::connect(url, exchange).await?;
    let ch = &link.channel;
    let queue = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    ch.queue_bind(
        queue.name().clone(),
        exchange.into(),
        binding.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let mut deliveries = ch
        .basic_consume(
            queue.name().clone(),
            "registrar-tail".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    loop {
        tokio::select! {
            d = deliveries.next() => match d {
                Some(Ok(d)) => println!("{} {}", d.routing_key, String::from_utf8_lossy(&d.data)),
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            _ = shutdown.recv() => return Ok(()),
        }
    }
}
