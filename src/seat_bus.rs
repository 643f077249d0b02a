//! Seat counts across nodes, over Redis pub/sub: a client watching a section's seat stream
//! on one node keeps getting its counts while the section is decided on another node, and
//! after it moves to a third.
//!
//! Publishing is the mirror writer's job ([`crate::mirror`]): after a commit the owner's
//! counts are queued like its mirror write (never blocking the actor, coalesced per section,
//! retried with backoff) and published on the one channel `<prefix>:seats` by the same
//! guarded script that writes the hash, only if the hash held older counts. A
//! [`SeatMessage`] carries the section, its counts and their [`Version`].
//!
//! Every node runs one [`SeatSubscriber`] task on that channel. It hands each message to
//! the [`SeatFeed`], which keeps it only for a section someone watches on this node and
//! only if it is newer than what the watchers have: a delayed or reordered message (an old
//! owner's, say) never replaces newer counts. The node's own commits reach its watchers
//! directly ([`SeatFeed`] is their observer), so the copy that comes back from Redis is
//! ignored as not newer, and local watchers keep getting local commits while Redis is down.
//!
//! Pub/sub is at most once: messages sent while the subscriber is disconnected, or that it
//! could not keep up with, are lost. So after every (re)subscription, and whenever it fell
//! behind, the subscriber refreshes every watched section from PostgreSQL and from the
//! mirror (whose hashes carry their versions), through the same version check.

use crate::backoff::Backoff;
use crate::mirror::SeatMirror;
use crate::service::feed::{SeatCounts, SeatFeed};
use crate::shutdown::Shutdown;
use crate::store::catalog;
use fred::prelude::*;
use fred::types::Message;
use registrar_actors::{Counts, SectionId, Version};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

/// Most messages fred holds for the subscriber before it falls behind (and refreshes).
const BACKLOG: usize = 16_384;

/// Longest a Redis command (the subscription) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// The seat channel of the nodes sharing the Redis key prefix `prefix`.
pub fn channel(prefix: &str) -> String {
    format!("{prefix}:seats")
}

/// A section's counts as published after a commit (JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatMessage {
    /// The section.
    pub section: Uuid,
    /// The ownership epoch the counts were committed under.
    pub epoch: i64,
    /// The commit's stamp within the epoch (see [`Version`]).
    pub seq: u64,
    /// Seats taken.
    pub seats_taken: u32,
    /// Seats offered.
    pub capacity: u32,
    /// Students waiting.
    pub waitlist_length: u32,
    /// Waitlist places offered.
    pub waitlist_capacity: u32,
}

impl SeatMessage {
    /// The message for `section`'s `seats`.
    pub fn new(section: SectionId, seats: SeatCounts) -> Self {
        let c = seats.counts;
        Self {
            section: section.0,
            epoch: seats.version.epoch,
            seq: seats.version.seq,
            seats_taken: c.seats_taken,
            capacity: c.capacity,
            waitlist_length: c.waitlist_length,
            waitlist_capacity: c.waitlist_capacity,
        }
    }

    /// As sent on the channel.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a struct of numbers and a uuid serializes")
    }

    /// The section and its counts, from a message body; `None` if it is not one.
    pub fn decode(body: &[u8]) -> Option<(SectionId, SeatCounts)> {
        let m: SeatMessage = serde_json::from_slice(body).ok()?;
        let seats = SeatCounts {
            version: Version {
                epoch: m.epoch,
                seq: m.seq,
            },
            counts: Counts {
                seats_taken: m.seats_taken,
                capacity: m.capacity,
                waitlist_length: m.waitlist_length,
                waitlist_capacity: m.waitlist_capacity,
            },
        };
        Some((SectionId(m.section), seats))
    }
}

/// The node's subscriber to the seat channel (see module docs).
pub struct SeatSubscriber {
    /// Where Redis is (the mirror's configuration; the subscriber has its own connection).
    config: Config,
    /// The seat channel.
    channel: String,
    /// Where received counts go.
    feed: Arc<SeatFeed>,
    /// For refreshes of the watched sections.
    pool: PgPool,
}

impl SeatSubscriber {
    /// A subscriber to the channel `mirror` publishes on, feeding `feed`.
    pub fn new(mirror: &SeatMirror, feed: Arc<SeatFeed>, pool: PgPool) -> Arc<Self> {
        Arc::new(Self {
            config: mirror.redis_config(),
            channel: channel(mirror.prefix()),
            feed,
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

    /// Hand one message to the feed.
    fn deliver(&self, message: &Message) {
        let remote = &self.feed.remote;
        remote.received.fetch_add(1, Ordering::Relaxed);
        let decoded = message.value.as_bytes().and_then(SeatMessage::decode);
        let Some((section, seats)) = decoded else {
            tracing::debug!(channel = %message.channel, "not a seat message; ignored");
            return;
        };
        if self.feed.apply(section, seats) {
            remote.applied.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Bring every watched section up to date from PostgreSQL and the mirror (either may
    /// be the newer); messages lost meanwhile no longer matter.
    async fn refresh(&self) {
        let watched = self.feed.watched();
        self.feed.remote.refreshes.fetch_add(1, Ordering::Relaxed);
        if watched.is_empty() {
            return;
        }
        let ids: Vec<Uuid> = watched.iter().map(|s| s.0).collect();
        match catalog::section_counts(&self.pool, &ids).await {
            Ok(rows) => {
                for (section, version, counts) in rows {
                    self.feed.apply(section, SeatCounts { version, counts });
                }
            }
            Err(e) => tracing::debug!(error = %e, "seat refresh from PostgreSQL failed"),
        }
        if let Some(mirror) = &self.feed.mirror {
            match mirror.read_many(&watched).await {
                Ok(found) => {
                    for (section, seats) in found {
                        self.feed.apply(section, seats);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "seat refresh from the mirror failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_the_section_its_counts_and_their_version() {
        let section = SectionId::new_v4();
        let seats = SeatCounts {
            version: Version {
                epoch: 7,
                seq: 1_800_000_000_000_123,
            },
            counts: Counts {
                seats_taken: 3,
                capacity: 40,
                waitlist_length: 2,
                waitlist_capacity: 10,
            },
        };
        let body = SeatMessage::new(section, seats).encode();
        assert_eq!(SeatMessage::decode(body.as_bytes()), Some((section, seats)));
        assert_eq!(SeatMessage::decode(b"{\"section\":1}"), None);
    }
}
