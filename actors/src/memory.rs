//! An in-memory [`SectionStore`]: the actor's tests and benches run the real actor against
//! it. It applies each batch to its own copy of the rows, checks the same invariants the
//! database enforces, and can be told to fail commits, to take time per commit, or to panic
//! in a commit (a bug in the write path).

use crate::ids::{PoolId, RequestId, SectionId, StudentId};
use crate::ledger::{ChangeKind, Outcome, ReservePool, WaitlistEntry};
use crate::store::{CommitBatch, SectionSnapshot, SectionStore, StoreError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
struct Rows {
    capacity: u32,
    waitlist_capacity: u32,
    enrolled: HashMap<StudentId, RequestId>,
    /// Seats held for decisions under way, with the hold's request.
    held: HashMap<StudentId, RequestId>,
    waitlist: HashMap<StudentId, (i64, RequestId)>,
    next_seq: i64,
    epoch: i64,
    /// Batches with changes committed (see [`CommitBatch::after`]).
    commit_seq: i64,
    /// Accepted decisions, oldest first (the audit trail's accepted rows).
    decided: Vec<(RequestId, Outcome)>,
    /// Reserved pools.
    pools: Vec<ReservePool>,
    /// How freed seats go to the waitlist.
    mode: crate::ledger::WaitlistMode,
    /// Seated students whose seat is a pool's.
    pooled: HashMap<StudentId, PoolId>,
    /// Seats offered: the waitlist request and the offer's end.
    offered: HashMap<StudentId, (RequestId, chrono::DateTime<chrono::Utc>)>,
    /// Enrolled students seated beyond the capacity by a capacity permit.
    over: std::collections::HashSet<StudentId>,
    /// Waiting students skipped at promotion, and why.
    blocked: HashMap<StudentId, String>,
}

/// Sections kept in memory (see the module docs).
#[derive(Default)]
pub struct MemoryStore {
    sections: Mutex<HashMap<SectionId, Rows>>,
    /// When set, every commit fails with `Unavailable`.
    fail_commits: AtomicBool,
    /// The next commit deciding this student's command fails.
    fail_on: Mutex<Option<StudentId>>,
    /// Time each commit takes (simulates a database round trip).
    commit_latency: Mutex<Duration>,
    /// Commits so far (batches, not commands).
    commits: AtomicU64,
    /// Events written so far (one per change).
    events: AtomicU64,
    /// Loads so far (one per actor activation).
    loads: AtomicU64,
    /// A panic to inject into the commit of a batch that touches this student.
    panic_on: Mutex<Option<(StudentId, PanicAt)>>,
}

/// Where an injected panic strikes a commit (see [`MemoryStore::panic_on_commit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PanicAt {
    /// Before anything is written: the batch is not recorded.
    BeforeWrite,
    /// After the batch is written: it is recorded, but nobody is told.
    AfterWrite,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Give a section's waitlist `mode` (as set before activation).
    pub fn set_mode(&self, id: SectionId, mode: crate::ledger::WaitlistMode) {
        if let Some(rows) = self.sections.lock().unwrap().get_mut(&id) {
            rows.mode = mode;
        }
    }

    /// Give a section reserved seat pools (as an admin's edit committed before activation).
    pub fn set_reserves(&self, id: SectionId, pools: Vec<ReservePool>) {
        if let Some(rows) = self.sections.lock().unwrap().get_mut(&id) {
            rows.pools = pools;
        }
    }

    /// Add a section.
    pub fn add_section(&self, id: SectionId, capacity: u32, waitlist_capacity: u32) {
        self.sections.lock().unwrap().insert(
            id,
            Rows {
                capacity,
                waitlist_capacity,
                next_seq: 1,
                epoch: 1,
                commit_seq: 0,
                ..Rows::default()
            },
        );
    }

    /// Make commits fail (or succeed again).
    pub fn set_failing(&self, failing: bool) {
        self.fail_commits.store(failing, Ordering::SeqCst);
    }

    /// Make the commit of the next batch deciding a command of `student` fail (nothing
    /// recorded), once.
    pub fn fail_commit_of(&self, student: StudentId) {
        *self.fail_on.lock().unwrap() = Some(student);
    }

    /// Make the commit of any batch touching `student` panic (a bug in the write path),
    /// once, at `at`.
    pub fn panic_on_commit(&self, student: StudentId, at: PanicAt) {
        *self.panic_on.lock().unwrap() = Some((student, at));
    }

    /// Loads so far (one per actor activation).
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::SeqCst)
    }

    /// Take the injected panic if `batch` touches its student and it strikes `at`.
    fn injected_panic(&self, batch: &CommitBatch, at: PanicAt) -> bool {
        let mut panic_on = self.panic_on.lock().unwrap();
        let hit = panic_on.is_some_and(|(student, when)| {
            when == at
                && batch
                    .changes
                    .iter()
                    .any(|c| c.kind.student() == Some(student))
        });
        if hit {
            *panic_on = None;
        }
        hit
    }

    /// Make each commit take `latency`.
    pub fn set_commit_latency(&self, latency: Duration) {
        *self.commit_latency.lock().unwrap() = latency;
    }

    /// Move the section's ownership epoch on, fencing out the current actor.
    pub fn bump_epoch(&self, id: SectionId) {
        if let Some(rows) = self.sections.lock().unwrap().get_mut(&id) {
            rows.epoch += 1;
        }
    }

    /// Batches committed so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::SeqCst)
    }

    /// (seats taken, waitlist in FIFO order) as committed.
    pub fn committed(&self, id: SectionId) -> Option<(usize, Vec<StudentId>)> {
        let sections = self.sections.lock().unwrap();
        let rows = sections.get(&id)?;
        let mut waiting: Vec<_> = rows.waitlist.iter().map(|(s, (q, _))| (*q, *s)).collect();
        waiting.sort();
        Some((
            rows.enrolled.len(),
            waiting.into_iter().map(|(_, s)| s).collect(),
        ))
    }

    /// Whether `student` holds a committed seat.
    pub fn is_enrolled(&self, id: SectionId, student: StudentId) -> bool {
        self.sections.lock().unwrap()[&id]
            .enrolled
            .contains_key(&student)
    }
}

#[async_trait]
impl SectionStore for MemoryStore {
    async fn load(&self, section: SectionId) -> Result<SectionSnapshot, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let sections = self.sections.lock().unwrap();
        let rows = sections.get(&section).ok_or(StoreError::NotFound)?;
        Ok(SectionSnapshot {
            capacity: rows.capacity,
            waitlist_capacity: rows.waitlist_capacity,
            enrolled: rows.enrolled.iter().map(|(s, r)| (*s, *r)).collect(),
            waitlist: rows
                .waitlist
                .iter()
                .map(|(s, (seq, r))| WaitlistEntry {
                    seq: *seq,
                    student: *s,
                    request: *r,
                })
                .collect(),
            held: rows.held.iter().map(|(s, r)| (*s, *r)).collect(),
            replacing: Vec::new(),
            reserves: rows.pools.clone(),
            pooled: rows.pooled.iter().map(|(s, p)| (*s, *p)).collect(),
            over_capacity: rows.over.iter().copied().collect(),
            blocked: rows.blocked.iter().map(|(s, r)| (*s, r.clone())).collect(),
            waiting_attrs: Vec::new(),
            offers: rows
                .offered
                .iter()
                .map(|(s, (r, at))| (*s, *r, *at))
                .collect(),
            mode: rows.mode,
            clock: chrono::Utc::now(),
            next_waitlist_seq: rows.next_seq,
            epoch: rows.epoch,
            commit_seq: rows.commit_seq,
            shard: 0,
            decided: rows
                .decided
                .iter()
                .rev()
                .take(crate::ledger::RECENT_REQUESTS)
                .cloned()
                .collect(),
        })
    }

    async fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        let latency = *self.commit_latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if self.fail_commits.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        {
            let mut fail_on = self.fail_on.lock().unwrap();
            if fail_on.is_some_and(|s| batch.attempts.iter().any(|a| a.student == Some(s))) {
                *fail_on = None;
                return Err(StoreError::Unavailable(
                    "injected failure of one batch".into(),
                ));
            }
        }
        if self.injected_panic(batch, PanicAt::BeforeWrite) {
            panic!("injected panic before the write");
        }
        let mut sections = self.sections.lock().unwrap();
        let current = sections.get(&batch.section).ok_or(StoreError::NotFound)?;
        if current.epoch != batch.epoch {
            return Err(StoreError::Fenced);
        }
        if batch.after.is_some_and(|after| after != current.commit_seq) {
            return Err(StoreError::Unavailable(
                "an earlier batch of the section did not commit".into(),
            ));
        }
        // Apply to a copy so a violated invariant leaves nothing behind, like a rollback.
        let mut rows = current.clone();
        for change in &batch.changes {
            if let Some(student) = change.kind.student() {
                match change.pool {
                    Some(pool) => {
                        rows.pooled.insert(student, pool);
                    }
                    None if !matches!(change.kind, ChangeKind::Confirmed { .. }) => {
                        rows.pooled.remove(&student);
                    }
                    None => {}
                }
            }
            match change.kind {
                ChangeKind::Enrolled { student } => {
                    if change.over_capacity {
                        rows.over.insert(student);
                    }
                    if rows.enrolled.insert(student, change.request).is_some()
                        || rows.waitlist.contains_key(&student)
                        || rows.held.contains_key(&student)
                    {
                        return Err(StoreError::Unavailable("duplicate active row".into()));
                    }
                }
                ChangeKind::Waitlisted { student, seq, .. } => {
                    if rows
                        .waitlist
                        .insert(student, (seq, change.request))
                        .is_some()
                        || rows.enrolled.contains_key(&student)
                    {
                        return Err(StoreError::Unavailable("duplicate active row".into()));
                    }
                    rows.next_seq = rows.next_seq.max(seq + 1);
                }
                ChangeKind::Blocked {
                    student,
                    ref reason,
                } => match reason {
                    Some(r) => {
                        rows.blocked.insert(student, r.clone());
                    }
                    None => {
                        rows.blocked.remove(&student);
                    }
                },
                ChangeKind::Dropped { student, .. } => {
                    rows.over.remove(&student);
                    rows.blocked.remove(&student);
                    let gone = rows.enrolled.remove(&student).is_some()
                        || rows.waitlist.remove(&student).is_some();
                    if !gone {
                        return Err(StoreError::Unavailable("drop of a missing row".into()));
                    }
                }
                ChangeKind::Promoted { student } => {
                    let (_, request) = rows.waitlist.remove(&student).ok_or_else(|| {
                        StoreError::Unavailable("promotion of a missing row".into())
                    })?;
                    rows.enrolled.insert(student, request);
                }
                ChangeKind::PromotedHeld { student, .. } => {
                    let (_, request) = rows.waitlist.remove(&student).ok_or_else(|| {
                        StoreError::Unavailable("promotion of a missing row".into())
                    })?;
                    rows.held.insert(student, request);
                }
                ChangeKind::Held { student, .. } => {
                    if rows.held.insert(student, change.request).is_some()
                        || rows.enrolled.contains_key(&student)
                        || rows.waitlist.contains_key(&student)
                    {
                        return Err(StoreError::Unavailable("duplicate active row".into()));
                    }
                }
                ChangeKind::Confirmed { student, .. } => {
                    let request = rows.held.remove(&student).ok_or_else(|| {
                        StoreError::Unavailable("confirm of a missing hold".into())
                    })?;
                    rows.enrolled.insert(student, request);
                }
                ChangeKind::Released { student, .. } => {
                    if rows.held.remove(&student).is_none() {
                        return Err(StoreError::Unavailable("release of a missing hold".into()));
                    }
                }
                ChangeKind::CapacityChanged { to, .. } => rows.capacity = to,
                ChangeKind::ReservesChanged { ref pools } => rows.pools = pools.clone(),
                ChangeKind::Offered {
                    student,
                    expires_at,
                } => {
                    let (_, request) = rows
                        .waitlist
                        .remove(&student)
                        .ok_or_else(|| StoreError::Unavailable("offer to a missing row".into()))?;
                    rows.offered.insert(student, (request, expires_at));
                }
                ChangeKind::OfferAccepted { student } => {
                    let (request, _) = rows.offered.remove(&student).ok_or_else(|| {
                        StoreError::Unavailable("accept of a missing offer".into())
                    })?;
                    rows.enrolled.insert(student, request);
                }
                ChangeKind::OfferEnded { student, .. } => {
                    if rows.offered.remove(&student).is_none() {
                        return Err(StoreError::Unavailable("end of a missing offer".into()));
                    }
                }
            }
        }
        rows.decided.extend(
            batch
                .attempts
                .iter()
                .filter_map(|a| Some((a.request, a.outcome.clone().ok()?))),
        );
        // Like PostgreSQL's deferred check, which runs only when the section row is
        // written: a batch of refusals alone leaves the counters as they are.
        let taken = (rows.enrolled.len() + rows.held.len() + rows.offered.len()) as u32;
        if taken > rows.capacity
            || rows.waitlist.len() as u32 > rows.waitlist_capacity
            || (!batch.changes.is_empty() && taken != batch.counts.seats_taken)
        {
            return Err(StoreError::Unavailable("check constraint violated".into()));
        }
        if !batch.changes.is_empty() {
            rows.commit_seq += 1;
        }
        sections.insert(batch.section, rows);
        drop(sections);
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.events
            .fetch_add(batch.changes.len() as u64, Ordering::SeqCst);
        if self.injected_panic(batch, PanicAt::AfterWrite) {
            panic!("injected panic after the write");
        }
        Ok(())
    }
}
