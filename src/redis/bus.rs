//! Seat counts across nodes, over Redis pub/sub: a client watching a section's seat stream
//! on one node keeps getting its counts while the section is decided on another node, and
//! after it moves to a third.
//!
//! Publishing is the mirror writer's job ([`super::mirror`]): after a commit the owner's
//! counts are queued like its mirror write (never blocking the actor, coalesced per section,
//! retried with backoff) and published on the one channel `<prefix>:seats` by the same
//! guarded script that writes the hash, only if the hash held older counts. A
//! [`SeatMessage`] carries the section, its counts and their
//! [`Version`](registrar_actors::Version).
//!
//! Every node runs one [`SeatSubscriber`] task on that channel. It hands each message to
//! the [`SeatSink`] it was given at startup (the node's seat feed), which keeps it only for
//! a section someone watches on this node and only if it is newer than what the watchers
//! have: a delayed or reordered message (an old owner's, say) never replaces newer counts.
//! The node's own commits reach its watchers directly (the commit fan-out startup builds
//! hands them to the feed), so the copy that comes back from Redis is ignored as not newer,
//! and local watchers keep getting local commits while Redis is down. The sink is a trait
//! so this module knows nothing of the service layer that implements it.
//!
//! Pub/sub is at most once: messages sent while the subscriber is disconnected, or that it
//! could not keep up with, are lost. So after every (re)subscription, and whenever it fell
//! behind, the subscriber refreshes every watched section from PostgreSQL and from the
//! mirror (whose hashes carry their versions), through the same version check.

use super::mirror::SeatMirror;
use super::wire::{SeatCounts, SeatMessage, channel};
use crate::backoff::Backoff;
use crate::shutdown::Shutdown;
use crate::store::catalog;
use fred::prelude::*;
use fred::types::Message;
use registrar_actors::SectionId;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

/// Most messages fred holds for the subscriber before it falls behind (and refreshes).
const BACKLOG: usize = 16_384;

/// Longest a Redis command (the subscription) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// Where the subscriber delivers the counts it hears (the node's seat feed). Must not
/// block: it is called on the subscriber's task for every message.
pub trait SeatSink: Send + Sync + 'static {
    /// Move `section`'s watchers on to `seats` if someone watches it here and `seats` is
    /// newer than what they have; whether it moved.
    fn apply(&self, section: SectionId, seats: SeatCounts) -> bool;

    /// The sections someone watches on this node (refreshed after lost messages).
    fn watched(&self) -> Vec<SectionId>;
}

/// Counts received from other nodes through Redis pub/sub.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Messages received (every node's commits, this node's own included).
    pub received: AtomicU64,
    /// Messages that moved a watched section's counts on.
    pub applied: AtomicU64,
    /// Refreshes of every watched section (after a (re)subscription or lost messages).
    pub refreshes: AtomicU64,
}

/// The node's subscriber to the seat channel (see module docs).
pub struct SeatSubscriber {
    /// Where Redis is (the mirror's configuration; the subscriber has its own connection).
    config: Config,
    /// The seat channel.
    channel: String,
    /// Where received counts go.
    sink: Arc<dyn SeatSink>,
    /// Counted here, read by `/metrics` and tests.
    stats: Arc<BusStats>,
    /// The mirror, whose hashes refresh the watched sections with PostgreSQL.
    mirror: Arc<SeatMirror>,
    /// For refreshes of the watched sections.
    pool: PgPool,
}

impl SeatSubscriber {
    /// A subscriber to the channel `mirror` publishes on, delivering to `sink` and
    /// counting in `stats`.
    pub fn new(
        mirror: Arc<SeatMirror>,
        sink: Arc<dyn SeatSink>,
        stats: Arc<BusStats>,
        pool: PgPool,
    ) -> Arc<Self> {
        Arc::new(Self {
            config: mirror.redis_config(),
            channel: channel(mirror.prefix()),
            sink,
            stats,
            mirror,
            pool,
        })
    }

    /// Listen until `shutdown`, subscribing again after every reconnection.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let client = match Builder::from_config(self.config.clone())
            .with_performance_config(|p| {
                p.default_command_timeout = COMMAND_TIMEOUT;
                p.broadcast_channel_capacity = BACKLOG;
            })
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(1);
                c.internal_command_timeout = Duration::from_secs(1);
                c.max_command_attempts = 1;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build()
        {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "seat channel subscriber cannot be built");
                return;
            }
        };
        let mut messages = client.message_rx();
        let mut reconnects = client.reconnect_rx();
        let _connection = client.connect();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut subscribed = false;
        loop {
            if !subscribed {
                match client.subscribe(self.channel.as_str()).await {
                    Ok(()) => {
                        subscribed = true;
                        backoff.reset();
                        tracing::debug!(channel = %self.channel, "subscribed to the seat channel");
                        self.refresh().await;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "seat channel subscription failed; retrying");
                        if shutdown.sleep(backoff.next_delay()).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.recv() => break,
                reconnected = reconnects.recv() => {
                    // A new connection has no subscription (a lagging notice means the same).
                    if matches!(reconnected, Err(RecvError::Closed)) {
                        break;
                    }
                    subscribed = false;
                }
                message = messages.recv() => match message {
                    Ok(message) => self.deliver(&message),
                    Err(RecvError::Lagged(lost)) => {
                        tracing::warn!(lost, "seat channel subscriber fell behind; refreshing watched sections");
                        self.refresh().await;
                    }
                    Err(RecvError::Closed) => break,
                },
            }
        }
        let _ = client.quit().await;
    }

    /// Hand one message to the sink.
    fn deliver(&self, message: &Message) {
        let remote = &self.stats;
        remote.received.fetch_add(1, Ordering::Relaxed);
        let decoded = message.value.as_bytes().and_then(SeatMessage::decode);
        let Some((section, seats)) = decoded else {
            tracing::debug!(channel = %message.channel, "not a seat message; ignored");
            return;
        };
        if self.sink.apply(section, seats) {
            remote.applied.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Bring every watched section up to date from PostgreSQL and the mirror (either may
    /// be the newer); messages lost meanwhile no longer matter.
    async fn refresh(&self) {
        let watched = self.sink.watched();
        self.stats.refreshes.fetch_add(1, Ordering::Relaxed);
        if watched.is_empty() {
            return;
        }
        let ids: Vec<Uuid> = watched.iter().map(|s| s.0).collect();
        match catalog::section_counts(&self.pool, &ids).await {
            Ok(rows) => {
                for (section, version, counts) in rows {
                    self.sink.apply(section, SeatCounts { version, counts });
                }
            }
            Err(e) => tracing::debug!(error = %e, "seat refresh from PostgreSQL failed"),
        }
        match self.mirror.read_many(&watched).await {
            Ok(found) => {
                for (section, seats) in found {
                    self.sink.apply(section, seats);
                }
            }
            Err(e) => tracing::debug!(error = %e, "seat refresh from the mirror failed"),
        }
    }
}
