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

mod apply;

pub use apply::apply;

use super::amqp;
use crate::backoff::Backoff;
use crate::event_schema::Event;
use crate::shutdown::Shutdown;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use sqlx::PgPool;
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
    tracing::info!(%exchange, %binding, queue = %queue.name(), "tailing events");
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
