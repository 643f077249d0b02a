//! The write-through boundary of a section actor: what it loads on activation, what it
//! commits per batch, and who hears about a commit. The server implements [`SectionStore`]
//! over PostgreSQL; `memory::MemoryStore` (feature `test-support`) implements it in memory.

use crate::attributes::Attribute;
use crate::ids::{PoolId, RequestId, SectionId, StudentId};
use crate::ledger::{Change, Counts, Outcome, Refusal, ReservePool, WaitlistEntry, WaitlistMode};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// The persisted state a section actor starts from.
#[derive(Clone, Debug)]
pub struct SectionSnapshot {
    /// Seats offered.
    pub capacity: u32,
    /// Waitlist places offered.
    pub waitlist_capacity: u32,
    /// Enrolled students with the request that enrolled each.
    pub enrolled: Vec<(StudentId, RequestId)>,
    /// The waitlist, any order (the seq orders it).
    pub waitlist: Vec<WaitlistEntry>,
    /// Seats held for decisions under way, with each hold's request.
    pub held: Vec<(StudentId, RequestId)>,
    /// Waitlisted students who leave another section when they get a seat here.
    pub replacing: Vec<(StudentId, SectionId)>,
    /// Reserved seat pools, with their release state as committed.
    pub reserves: Vec<ReservePool>,
    /// Seated students whose seat is a pool's.
    pub pooled: Vec<(StudentId, PoolId)>,
    /// Enrolled students seated beyond the capacity by a capacity permit (the capacity
    /// counts their seats).
    pub over_capacity: Vec<StudentId>,
    /// Waiting students skipped at promotion, with the code of the rule they fail.
    pub blocked: Vec<(StudentId, String)>,
    /// Waitlisted students' attributes (a freed reserved seat goes to one who matches).
    pub waiting_attrs: Vec<(StudentId, Vec<Attribute>)>,
    /// Seats offered (offer mode): student, their waitlist request, when the offer ends.
    pub offers: Vec<(StudentId, RequestId, DateTime<Utc>)>,
    /// How freed seats go to the waitlist.
    pub mode: WaitlistMode,
    /// The store's clock when the snapshot was read: pools are released at their time by
    /// this clock, measured on from here by the node's monotonic clock.
    pub clock: DateTime<Utc>,
    /// Greater than every waitlist seq ever issued for this section.
    pub next_waitlist_seq: i64,
    /// The ownership epoch this node writes under; a commit with a stale epoch is refused.
    pub epoch: i64,
    /// The shard the section belongs to.
    pub shard: u32,
    /// How many batches that changed something have committed for the section (the
    /// `after` of the next one: see [`CommitBatch::after`]).
    pub commit_seq: i64,
    /// Recently accepted decisions (newest first, at most
    /// [`RECENT_REQUESTS`](crate::ledger::RECENT_REQUESTS)), so that a request re-sent to a
    /// fresh activation (after a reload, a passivation, a move or a failover) is answered
    /// as it was the first time instead of being decided again: a drop retried by its
    /// request id recognises its own earlier commit.
    pub decided: Vec<(RequestId, Outcome)>,
}

/// The student's home node as the caller knew it when it took the student's request (see
/// [`AttemptRecord::home`]): the node, the student's shard and that shard's epoch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HomeClaim {
    /// The home node.
    pub node: String,
    /// The student's shard.
    pub shard: u32,
    /// Its epoch when the request was admitted.
    pub epoch: i64,
}

/// One decided command as recorded in the audit trail.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    /// The request.
    pub request: RequestId,
    /// The student concerned (none for capacity changes).
    pub student: Option<StudentId>,
    /// `enroll`, `drop`, `set_capacity`.
    pub action: &'static str,
    /// What was decided.
    pub outcome: Result<Outcome, Refusal>,
    /// The home node whose student rules admitted the command, if it came through one: the
    /// batch commits only while that node still owns the student's shard at that epoch,
    /// so a home that lost the student (failed over, or moved) cannot commit a decision its
    /// successor's rules never saw.
    pub home: Option<HomeClaim>,
}

/// Everything one batch persists, in one transaction.
#[derive(Clone, Debug)]
pub struct CommitBatch {
    /// The section.
    pub section: SectionId,
    /// The shard of the section.
    pub shard: u32,
    /// The epoch the actor was activated under (the fence).
    pub epoch: i64,
    /// When the batch was decided (timestamps of its rows).
    pub decided_at: DateTime<Utc>,
    /// Counters after the whole batch.
    pub counts: Counts,
    /// The changes, in decision order; each also yields one outbox event.
    pub changes: Vec<Change>,
    /// Every decided command, accepted or refused.
    pub attempts: Vec<AttemptRecord>,
    /// The section's commit count the batch was decided on, when it must be checked: the
    /// batch commits only if the stored count is still exactly this, so a batch decided
    /// while an earlier one was still committing never outlives that earlier one's
    /// failure. A batch with changes then moves the count on by one (it moves it on
    /// unchecked when this is `None`); one of refusals alone leaves it as it is.
    pub after: Option<i64>,
}

/// A batch's place in its section's commit order. A store must not check a batch against
/// the section's committed state (its [`CommitBatch::after`]) before the previous batch of
/// the section has taken its place ([`Turn::wait`]), and it passes the turn on
/// ([`Turn::pass`], or by dropping it) once this batch has taken its own: its section row
/// is locked in a transaction that will commit it, or the batch is settled. Batches in
/// flight one behind the other are so checked in the order they were decided.
#[derive(Debug, Default)]
pub struct Turn {
    /// Ready once the previous batch took its place (an error if it gave its turn up).
    before: Option<oneshot::Receiver<()>>,
    /// Tells the next batch that this one took its place.
    mine: Option<oneshot::Sender<()>>,
}

impl Turn {
    /// The turn of the batch after the one whose turn `previous` waits behind; returns it
    /// with what the batch after it will wait on.
    pub fn after(previous: Option<oneshot::Receiver<()>>) -> (Self, oneshot::Receiver<()>) {
        let (mine, next) = oneshot::channel();
        (
            Self {
                before: previous,
                mine: Some(mine),
            },
            next,
        )
    }

    /// Until the previous batch took its place or gave its turn up.
    pub async fn wait(&mut self) {
        if let Some(before) = self.before.take() {
            let _ = before.await;
        }
    }

    /// This batch took its place: the next may be checked.
    pub fn pass(&mut self) {
        if let Some(mine) = self.mine.take() {
            let _ = mine.send(());
        }
    }
}

/// A batch handed to [`SectionStore::submit`]: it resolves to the batch once committed.
pub type CommitFuture =
    Pin<Box<dyn Future<Output = Result<CommitBatch, StoreError>> + Send + 'static>>;

/// Why a load or a commit failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The section does not exist.
    #[error("section not found")]
    NotFound,
    /// This node no longer owns the section's shard (stale epoch): stop deciding for it.
    #[error("ownership epoch is stale")]
    Fenced,
    /// The database refused or could not be reached; nothing was recorded.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The commit may or may not have been recorded (it timed out, the connection failed
    /// at COMMIT, the writer failed holding it): the actor reloads from the store, and a
    /// request sent again is answered by what the store holds.
    #[error("commit outcome unknown: {0}")]
    Unknown(String),
}

/// Where a section actor loads from and writes through.
#[async_trait]
pub trait SectionStore: Send + Sync + 'static {
    /// Load a section's seats and waitlist, under this node's current epoch for its shard.
    async fn load(&self, section: SectionId) -> Result<SectionSnapshot, StoreError>;
    /// Persist a batch atomically: all of it or nothing.
    async fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError>;

    /// Persist `batch` in its section's commit order (`turn`), possibly while earlier
    /// batches of the section are still committing. A store that writes in the order of
    /// submission takes the batch in before it returns. By default each batch waits for the
    /// previous one to settle and then commits alone.
    fn submit(self: Arc<Self>, batch: CommitBatch, mut turn: Turn) -> CommitFuture {
        Box::pin(async move {
            turn.wait().await;
            let result = self.commit(&batch).await;
            turn.pass();
            result.map(|()| batch)
        })
    }
}

/// Orders the counts of one section across nodes, so that a copy of them (the Redis mirror,
/// a seat stream on another node) never takes older counts over newer ones, however late
/// or reordered they arrive. Compared epoch first: every commit of a later ownership
/// epoch is newer than every commit of an earlier one. Within an epoch one process writes
/// the section, and `seq` is its [commit clock](Version::committed), which grows across
/// the actor's passivations and reactivations (a per-actor counter would start again).
///
/// `seq` 0 is a read from PostgreSQL while the shard was at `epoch`
/// ([`Version::read_at`]): newer than every commit of older epochs (a move waits for
/// those, or fences them), older than every commit of `epoch` itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The shard's ownership epoch the counts were written (or read) under.
    pub epoch: i64,
    /// The commit clock's stamp, 0 for a read from PostgreSQL.
    pub seq: u64,
}

/// The last stamp of this process's commit clock.
static COMMIT_CLOCK: AtomicU64 = AtomicU64::new(0);

impl Version {
    /// Counts read from PostgreSQL while the section's shard was at `epoch`.
    pub fn read_at(epoch: i64) -> Self {
        Self { epoch, seq: 0 }
    }

    /// The version of a batch just committed under `epoch`: stamped by a clock that counts
    /// microseconds since the Unix epoch and never repeats or goes back within the process
    /// (strictly greater than its previous stamp), so it also grows across a restart that
    /// keeps the epoch unless the wall clock went back by more than the restart took.
    pub fn committed(epoch: i64) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let previous = COMMIT_CLOCK
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or_else(|last| last);
        Self {
            epoch,
            seq: now.max(previous + 1),
        }
    }
}

/// Told about every committed batch (Redis mirror, live seat streams). Must not block.
pub trait CommitObserver: Send + Sync + 'static {
    /// A batch for `section` committed under `version`, leaving `counts`.
    fn committed(&self, section: SectionId, version: Version, counts: Counts, changes: &[Change]);
}

/// An observer that ignores commits.
pub struct NoObserver;

impl CommitObserver for NoObserver {
    fn committed(&self, _: SectionId, _: Version, _: Counts, _: &[Change]) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_versions_grow_and_epochs_dominate() {
        let mut last = Version::committed(1);
        assert!(last > Version::read_at(1) && last.seq > 0);
        for _ in 0..10_000 {
            let next = Version::committed(1);
            assert!(next > last, "{next:?} after {last:?}");
            last = next;
        }
        assert!(
            Version::read_at(2) > last,
            "a newer epoch wins over any stamp"
        );
        assert!(Version::committed(2) > Version::read_at(2));
        assert!(Version::read_at(1) > Version::default());
    }
}
