//! The live seat feed behind `GET /sections/{id}/seats/stream`: the counts of every section
//! someone watches on this node. It only keeps and hands out counts; the commit fan-out
//! startup assembles (counters, this feed, the Redis mirror, the relay's wake-up) is what
//! gives it the node's own commits, and the Redis subscriber ([`crate::redis::bus`]), for
//! which it is the [`SeatSink`], gives it the other nodes'.
//!
//! The feed is one `tokio::sync::watch` channel per watched section: a subscriber always
//! sees the latest counts, a slow subscriber skips intermediate values instead of slowing
//! anyone down, and publishing costs the actor one non-blocking store.
//!
//! Counts reach a channel from three places: this node's commits (at once, no Redis round
//! trip), other nodes' commits (through Redis pub/sub, [`crate::redis::bus`]) and reads from
//! PostgreSQL or the mirror (a new stream, a refresh after a lost connection). Each carries
//! the [`Version`](registrar_actors::Version) of its counts and a channel only ever moves
//! to a newer one, so a late or reordered message, from an old owner of the section say,
//! never replaces newer counts.
//!
//! Streams need no login, so the feed caps how many are open on the node at once: each
//! [`Subscription`] holds a slot, given back when it is dropped (the client went away,
//! or the server shut the stream).

use crate::redis::{BusStats, SeatCounts, SeatMirror, SeatSink};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use registrar_actors::SectionId;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::watch;

/// The counts of the watched sections (see module docs).
pub struct SeatFeed {
    channels: DashMap<SectionId, watch::Sender<SeatCounts>>,
    /// Streams open now, shared with their [`Subscription`]s, which give their slot back.
    subscribers: Arc<AtomicUsize>,
    /// Most streams open at once.
    max_subscribers: usize,
    /// Counters of the counts received from other nodes (kept by the Redis subscriber,
    /// which startup gives this handle).
    pub remote: Arc<BusStats>,
    /// The Redis mirror, when enabled: where a new stream's and a section read's counts
    /// are read from first (the feed itself never writes it).
    pub mirror: Option<Arc<SeatMirror>>,
}

impl SeatFeed {
    /// A feed serving at most `max_subscribers` streams at once, whose streams and section
    /// reads read `mirror` first.
    pub fn new(mirror: Option<Arc<SeatMirror>>, max_subscribers: usize) -> Self {
        Self {
            channels: DashMap::new(),
            subscribers: Arc::new(AtomicUsize::new(0)),
            max_subscribers,
            remote: Arc::default(),
            mirror,
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

    /// Subscribe to a section's counts in the stream `slot`, starting from `current` (read
    /// just now) or from the counts the section's channel already holds, whichever is newer.
    pub fn subscribe(&self, slot: Slot, section: SectionId, current: SeatCounts) -> Subscription {
        Subscription {
            counts: self.watch(section, current),
            _slot: slot,
        }
    }

    /// A receiver of a section's counts, starting from `current` or from the counts the
    /// section's channel already holds, whichever is newer. The caller holds the [`Slot`]
    /// (one slot covers every section of a multi-section stream).
    pub fn watch(&self, section: SectionId, current: SeatCounts) -> watch::Receiver<SeatCounts> {
        match self.channels.entry(section) {
            Entry::Occupied(tx) => {
                advance(tx.get(), current);
                tx.get().subscribe()
            }
            Entry::Vacant(place) => place.insert(watch::channel(current).0).subscribe(),
        }
    }

    /// Move `section`'s channel on to `seats` if someone watches the section here and
    /// `seats` is newer than what the channel holds; whether it moved.
    pub fn apply(&self, section: SectionId, seats: SeatCounts) -> bool {
        self.channels
            .get(&section)
            .is_some_and(|tx| advance(&tx, seats))
    }

    /// The sections someone watches on this node.
    pub fn watched(&self) -> Vec<SectionId> {
        self.channels.iter().map(|c| *c.key()).collect()
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

/// Replace the channel's counts by `seats` if they are newer; whether they were.
fn advance(tx: &watch::Sender<SeatCounts>, seats: SeatCounts) -> bool {
    tx.send_if_modified(|held| {
        let newer = seats.version > held.version;
        if newer {
            *held = seats;
        }
        newer
    })
}

/// The node serves as many seat streams as it may (`sse_max_subscribers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many seat streams open on this node")]
pub struct FeedFull;

/// One open seat stream: the section's counts, and the stream's slot under the node's cap
/// (given back on drop).
pub struct Subscription {
    /// The latest committed counts of the section.
    pub counts: watch::Receiver<SeatCounts>,
    _slot: Slot,
}

/// A place under the node's stream cap; dropping it gives the place back.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SeatSink for SeatFeed {
    fn apply(&self, section: SectionId, seats: SeatCounts) -> bool {
        SeatFeed::apply(self, section, seats)
    }

    fn watched(&self) -> Vec<SectionId> {
        SeatFeed::watched(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registrar_actors::{Counts, Version};

    fn counts() -> SeatCounts {
        seats(0, 0, 0)
    }

    /// `taken` seats of 10 at version (`epoch`, `seq`).
    fn seats(epoch: i64, seq: u64, taken: u32) -> SeatCounts {
        SeatCounts {
            version: Version { epoch, seq },
            counts: Counts {
                seats_taken: taken,
                capacity: 10,
                waitlist_length: 0,
                waitlist_capacity: 0,
                reserved_seats_left: 0,
            },
        }
    }

    #[test]
    fn a_channel_only_moves_to_newer_counts() {
        let feed = SeatFeed::new(None, 4);
        let section = SectionId::new_v4();
        let other = SectionId::new_v4();
        // Read from PostgreSQL while the shard was at epoch 2.
        let mut sub = feed.subscribe(feed.reserve().unwrap(), section, seats(2, 0, 3));
        // A late commit of the previous owner (epoch 1) changes nothing.
        assert!(!feed.apply(section, seats(1, u64::MAX, 1)));
        // The owner's commits do, in order; a reordered older one does not.
        assert!(feed.apply(section, seats(2, 10, 4)));
        assert!(!feed.apply(section, seats(2, 9, 2)));
        assert!(
            !feed.apply(section, seats(2, 10, 4)),
            "the same commit twice"
        );
        assert_eq!(sub.counts.borrow_and_update().counts.seats_taken, 4);
        // Through the sink the Redis subscriber holds, the same rule.
        let sink: &dyn SeatSink = &feed;
        assert!(sink.apply(section, seats(3, 1, 5)));
        assert!(!sink.apply(section, seats(2, 11, 6)));
        assert_eq!(sink.watched(), vec![section]);
        assert_eq!(
            sub.counts.borrow_and_update().version,
            Version { epoch: 3, seq: 1 }
        );
        // A second stream whose read is older joins at the newer counts it finds.
        let second = feed.subscribe(feed.reserve().unwrap(), section, seats(2, 0, 3));
        assert_eq!(second.counts.borrow().counts.seats_taken, 5);
        // Unwatched sections are not kept.
        assert!(!feed.apply(other, seats(9, 9, 9)));
        assert_eq!(feed.watched(), vec![section]);
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
