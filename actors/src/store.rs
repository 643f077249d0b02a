//! The write-through boundary of a section actor: what it loads on activation, what it
//! commits per batch, and who hears about a commit. The server implements [`SectionStore`]
//! over PostgreSQL; `memory::MemoryStore` (feature `test-support`) implements it in memory.

use crate::ids::{RequestId, SectionId, StudentId};
use crate::ledger::{Change, Counts, Outcome, Refusal, WaitlistEntry};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

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
    /// Greater than every waitlist seq ever issued for this section.
    pub next_waitlist_seq: i64,
    /// The ownership epoch this node writes under; a commit with a stale epoch is refused.
    pub epoch: i64,
    /// The shard the section belongs to.
    pub shard: u32,
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
}

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
}

/// Where a section actor loads from and writes through.
#[async_trait]
pub trait SectionStore: Send + Sync + 'static {
    /// Load a section's seats and waitlist, under this node's current epoch for its shard.
    async fn load(&self, section: SectionId) -> Result<SectionSnapshot, StoreError>;
    /// Persist a batch atomically: all of it or nothing.
    async fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError>;
}

/// Told about every committed batch (Redis mirror, live seat streams). Must not block.
pub trait CommitObserver: Send + Sync + 'static {
    /// A batch for `section` committed, leaving `counts`.
    fn committed(&self, section: SectionId, counts: Counts, changes: &[Change]);
}

/// An observer that ignores commits.
pub struct NoObserver;

impl CommitObserver for NoObserver {
    fn committed(&self, _: SectionId, _: Counts, _: &[Change]) {}
}
