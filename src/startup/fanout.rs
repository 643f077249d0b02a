//! The commit fan-out: what happens after each committed batch, off the actor's path, as
//! one [`CommitObserver`] assembled here from the parts that each do one thing: the
//! counters for `/metrics`, the seat feed (this node's watchers get the counts at once, no
//! Redis round trip), the Redis mirror (queued; its writer also publishes the counts to the
//! other nodes) and a wake-up for the outbox relay. Built at startup, the one place that
//! knows every part, so none of them imports another to reach it.

use crate::metrics::CommitStats;
use crate::redis::{SeatCounts, SeatMirror};
use crate::service::feed::SeatFeed;
use registrar_actors::{Change, CommitObserver, Counts, SectionId, Version};
use std::sync::Arc;
use tokio::sync::Notify;

/// The node's observer of committed batches (see module docs).
pub(super) struct CommitFanOut {
    /// Counted first, so `/metrics` never shows counts ahead of the batches behind them.
    pub(super) commits: Arc<CommitStats>,
    /// Local watchers of the section.
    pub(super) feed: Arc<SeatFeed>,
    /// The Redis mirror, when enabled.
    pub(super) mirror: Option<Arc<SeatMirror>>,
    /// The outbox relay's wake-up: a batch with changes wrote outbox rows.
    pub(super) relay_wake: Arc<Notify>,
    /// Decisions a promotion made ("drop if enrolled"), for this node to carry out.
    pub(super) promotions: tokio::sync::mpsc::UnboundedSender<registrar_actors::DecisionId>,
}

impl CommitObserver for CommitFanOut {
    fn committed(&self, section: SectionId, version: Version, counts: Counts, changes: &[Change]) {
        self.commits.count(changes);
        let seats = SeatCounts { version, counts };
        self.feed.apply(section, seats);
        if let Some(mirror) = &self.mirror {
            mirror.record(section, seats);
        }
        if !changes.is_empty() {
            self.relay_wake.notify_one();
        }
        for change in changes {
            if let registrar_actors::ChangeKind::PromotedHeld { decision, .. } = change.kind {
                // Closed only at shutdown; the finisher carries out what it missed.
                let _ = self.promotions.send(decision);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registrar_actors::{ChangeKind, RequestId, StudentId};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    fn counts(taken: u32) -> Counts {
        Counts {
            seats_taken: taken,
            capacity: 10,
            waitlist_length: 0,
            waitlist_capacity: 0,
            reserved_seats_left: 0,
        }
    }

    #[tokio::test]
    async fn a_commit_is_counted_reaches_the_watchers_and_wakes_the_relay() {
        let feed = Arc::new(SeatFeed::new(None, 4));
        let fan_out = CommitFanOut {
            commits: Arc::default(),
            feed: feed.clone(),
            mirror: None,
            relay_wake: Arc::new(Notify::new()),
            promotions: tokio::sync::mpsc::unbounded_channel().0,
        };
        let section = SectionId::new_v4();
        let start = SeatCounts {
            version: Version { epoch: 1, seq: 0 },
            counts: counts(0),
        };
        let mut watcher = feed.subscribe(feed.reserve().unwrap(), section, start);
        let enrolled = Change {
            kind: ChangeKind::Enrolled {
                student: StudentId::new_v4(),
            },
            request: RequestId::new_v4(),
            counts: counts(1),
            pool: None,
            permits: Vec::new(),
            over_capacity: false,
        };
        let version = Version { epoch: 1, seq: 5 };
        fan_out.committed(section, version, counts(1), &[enrolled]);

        assert_eq!(fan_out.commits.batches.load(Ordering::Relaxed), 1);
        assert_eq!(fan_out.commits.changes.load(Ordering::Relaxed), 1);
        assert_eq!(fan_out.commits.enrolled.load(Ordering::Relaxed), 1);
        let seen = *watcher.counts.borrow_and_update();
        assert_eq!((seen.version, seen.counts.seats_taken), (version, 1));
        // The relay was woken (the permit is stored, so a later wait returns at once).
        tokio::time::timeout(Duration::from_secs(1), fan_out.relay_wake.notified())
            .await
            .expect("the relay was woken");

        // A batch with no changes is counted but wakes no one.
        fan_out.committed(section, Version { epoch: 1, seq: 6 }, counts(1), &[]);
        assert_eq!(fan_out.commits.batches.load(Ordering::Relaxed), 2);
        let woken =
            tokio::time::timeout(Duration::from_millis(50), fan_out.relay_wake.notified()).await;
        assert!(woken.is_err(), "an empty batch woke the relay");
    }
}
