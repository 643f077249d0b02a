//! What happens after each committed batch, off the actor's path: counters for `/metrics`,
//! the live seat feed behind `GET /sections/{id}/seats/stream`, the Redis mirror (queued,
//! written by its own task) and a wake-up for the outbox relay.
//!
//! The feed is one `tokio::sync::watch` channel per watched section: a subscriber always
//! sees the latest counts, a slow subscriber skips intermediate values instead of slowing
//! anyone down, and publishing costs the actor one non-blocking store.

use crate::mirror::SeatMirror;
use dashmap::DashMap;
use registrar_actors::{Change, ChangeKind, CommitObserver, Counts, SectionId};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Notify, watch};

/// Counters since start.
#[derive(Default)]
pub struct CommitStats {
    /// Batches committed.
    pub batches: AtomicU64,
    /// Changes committed (= outbox rows written).
    pub changes: AtomicU64,
    /// Seats taken.
    pub enrolled: AtomicU64,
    /// Waitlist entries added.
    pub waitlisted: AtomicU64,
    /// Drops.
    pub dropped: AtomicU64,
    /// Waitlist promotions.
    pub promoted: AtomicU64,
}

/// Publishes committed counts (see module docs).
pub struct SeatFeed {
    channels: DashMap<SectionId, watch::Sender<Counts>>,
    /// Counters for `/metrics`.
    pub stats: CommitStats,
    /// The Redis mirror, when enabled.
    pub mirror: Option<Arc<SeatMirror>>,
    /// Woken after each commit so the relay publishes without polling delay.
    pub relay_wake: Arc<Notify>,
}

impl SeatFeed {
    /// A feed that also records into `mirror`.
    pub fn new(mirror: Option<Arc<SeatMirror>>) -> Self {
        Self {
            channels: DashMap::new(),
            stats: CommitStats::default(),
            mirror,
            relay_wake: Arc::new(Notify::new()),
        }
    }

    /// Subscribe to a section's counts, starting from `current`.
    pub fn subscribe(&self, section: SectionId, current: Counts) -> watch::Receiver<Counts> {
        self.channels
            .entry(section)
            .or_insert_with(|| watch::channel(current).0)
            .subscribe()
    }

    /// End every open stream (shutdown): dropping the senders ends the subscribers' loops.
    pub fn close(&self) {
        self.channels.clear();
    }

    /// Forget channels nobody listens to any more.
    pub fn prune(&self) {
        self.channels.retain(|_, tx| tx.receiver_count() > 0);
    }
}

impl CommitObserver for SeatFeed {
    fn committed(&self, section: SectionId, counts: Counts, changes: &[Change]) {
        let s = &self.stats;
        s.batches.fetch_add(1, Ordering::Relaxed);
        s.changes.fetch_add(changes.len() as u64, Ordering::Relaxed);
        for c in changes {
            let counter = match c.kind {
                ChangeKind::Enrolled { .. } => &s.enrolled,
                ChangeKind::Waitlisted { .. } => &s.waitlisted,
                ChangeKind::Dropped { .. } => &s.dropped,
                ChangeKind::Promoted { .. } => &s.promoted,
                ChangeKind::CapacityChanged { .. } => continue,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(tx) = self.channels.get(&section) {
            tx.send_replace(counts);
        }
        if let Some(mirror) = &self.mirror {
            mirror.record(section, counts);
        }
        if !changes.is_empty() {
            self.relay_wake.notify_one();
        }
    }
}
