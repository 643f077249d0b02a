//! What happens after each committed batch, off the actor's path: counters for `/metrics`,
//! the live seat feed behind `GET /sections/{id}/seats/stream`, the Redis mirror (queued,
//! written by its own task) and a wake-up for the outbox relay.
//!
//! The feed is one `tokio::sync::watch` channel per watched section: a subscriber always
//! sees the latest counts, a slow subscriber skips intermediate values instead of slowing
//! anyone down, and publishing costs the actor one non-blocking store.
//!
//! Streams need no login, so the feed caps how many are open on the node at once: each
//! [`Subscription`] holds a slot, given back when it is dropped (the client went away,
//! or the server shut the stream).

use crate::mirror::SeatMirror;
use dashmap::DashMap;
use registrar_actors::{Change, ChangeKind, CommitObserver, Counts, SectionId, Version};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// Streams open now, shared with their [`Subscription`]s, which give their slot back.
    subscribers: Arc<AtomicUsize>,
    /// Most streams open at once.
    max_subscribers: usize,
    /// Counters for `/metrics`.
    pub stats: CommitStats,
    /// The Redis mirror, when enabled.
    pub mirror: Option<Arc<SeatMirror>>,
    /// Woken after each commit so the relay publishes without polling delay.
    pub relay_wake: Arc<Notify>,
}

impl SeatFeed {
    /// A feed that also records into `mirror` and serves at most `max_subscribers`
    /// streams at once.
    pub fn new(mirror: Option<Arc<SeatMirror>>, max_subscribers: usize) -> Self {
        Self {
            channels: DashMap::new(),
            subscribers: Arc::new(AtomicUsize::new(0)),
            max_subscribers,
            stats: CommitStats::default(),
            mirror,
            relay_wake: Arc::new(Notify::new()),
        }
    }

    /// Take a slot for one stream; `Err(FeedFull)` when the node already serves its most
    /// streams. Taken before any other work, so a refused stream costs nothing more.
    pub fn reserve(&self) -> Result<Slot, FeedFull> {
        let max = self.max_subscribers;
        self.subscribers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| FeedFull)?;
        Ok(Slot(self.subscribers.clone()))
    }

    /// Subscribe to a section's counts, starting from `current`, in the stream `slot`.
    pub fn subscribe(&self, slot: Slot, section: SectionId, current: Counts) -> Subscription {
        let counts = self
            .channels
            .entry(section)
            .or_insert_with(|| watch::channel(current).0)
            .subscribe();
        Subscription {
            counts,
            _slot: slot,
        }
    }

    /// Streams open now.
    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::Acquire)
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

/// The node serves as many seat streams as it may (`sse_max_subscribers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many seat streams open on this node")]
pub struct FeedFull;

/// One open seat stream: the section's counts, and the stream's slot under the node's cap
/// (given back on drop).
pub struct Subscription {
    /// The latest committed counts of the section.
    pub counts: watch::Receiver<Counts>,
    _slot: Slot,
}

/// A place under the node's stream cap; dropping it gives the place back.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl CommitObserver for SeatFeed {
    fn committed(&self, section: SectionId, _version: Version, counts: Counts, changes: &[Change]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> Counts {
        Counts {
            seats_taken: 0,
            capacity: 1,
            waitlist_length: 0,
            waitlist_capacity: 0,
        }
    }

    #[test]
    fn the_cap_holds_and_a_dropped_subscription_gives_its_slot_back() {
        let feed = SeatFeed::new(None, 2);
        let (a, b) = (SectionId::new_v4(), SectionId::new_v4());
        let first = feed.subscribe(feed.reserve().unwrap(), a, counts());
        let _second = feed.subscribe(feed.reserve().unwrap(), b, counts());
        assert_eq!(feed.reserve().err(), Some(FeedFull));
        assert_eq!(feed.subscribers(), 2);
        drop(first);
        assert_eq!(feed.subscribers(), 1);
        assert!(feed.reserve().is_ok());
    }
}
