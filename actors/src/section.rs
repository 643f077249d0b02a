//! The section actor: one per active section, the single writer of its seats.
//!
//! Commands queue in the actor's mailbox. The first command of a batch schedules a `Flush`
//! message to itself; every command that arrives before that `Flush` (in particular all
//! the ones that queued while the previous batches were committing) joins the batch. A
//! flush decides the batch in memory and hands it to the [`SectionStore`], to be committed
//! in ONE transaction; the actor replies to the batch's callers only once it committed.
//!
//! Commits are pipelined: while up to [`SectionConfig::pipeline`] batches are committing,
//! the actor goes on deciding the next one on top of them (a hot section no longer waits a
//! whole transaction between two batches). Callers are answered strictly in decision order
//! ([`Pipeline`]). Each batch names the section's commit count it was decided on
//! ([`CommitBatch::after`]), and the store commits it only on top of exactly that, so a
//! batch never outlives the failure of one it was decided on. If a commit fails, nobody in
//! that batch gets an acceptance, no batch is started until those in flight have settled
//! (each is answered by its own commit's result), and the ledger is reloaded from the
//! store; if the store says the epoch is stale, the actor stops (another node owns the
//! section now).
//!
//! The actor passivates after a quiet period, but only by closing its admission gate at
//! zero in-flight commands (see [`crate::gate`]), so a queued command is never stranded.
//!
//! However the actor ends (passivation, fencing, or a panic, after which ractor skips
//! `post_stop`), dropping its state closes its gate and tells the registry, and every
//! command it had taken out of its mailbox is answered: [`SectionError::Unavailable`] if
//! it was not yet decided, [`SectionError::Unknown`] if its batch may have committed, so
//! no caller resends a command that might have been decided. Commands still in the
//! mailbox were never seen and may be sent to a fresh activation.

use crate::gate::{AdmissionGate, Permit};
use crate::ids::SectionId;
use crate::ledger::{ChangeKind, Command, Counts, Outcome, Refusal, SeatLedger};
use crate::pipeline::Pipeline;
use crate::store::{
    AttemptRecord, CommitBatch, CommitObserver, HomeClaim, SectionSnapshot, SectionStore,
    StoreError, Turn, Version,
};
use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, warn};

/// Tuning of one section actor.
#[derive(Clone, Debug)]
pub struct SectionConfig {
    /// Most commands decided and committed together.
    pub max_batch: usize,
    /// Quiet time after which the actor passivates.
    pub passivate_after: Duration,
    /// Most batches committing at once (1: each batch waits for the previous commit).
    pub pipeline: usize,
}

impl Default for SectionConfig {
    fn default() -> Self {
        Self {
            max_batch: 512,
            passivate_after: Duration::from_secs(300),
            pipeline: 1,
        }
    }
}

/// The answer to a command, sent after its batch committed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    /// Accepted outcome or refusal.
    pub outcome: Result<Outcome, Refusal>,
    /// When the batch holding the decision was decided.
    pub decided_at: DateTime<Utc>,
    /// The section's counters after the batch.
    pub counts: Counts,
}

/// Why a command got no decision.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SectionError {
    /// The batch could not be committed; nothing was recorded.
    #[error("the commit failed; nothing was recorded")]
    Unavailable,
    /// This node lost ownership of the section; nothing was recorded.
    #[error("this node no longer owns the section")]
    Fenced,
    /// The caller's deadline passed before the command was decided; nothing was recorded.
    #[error("the caller's deadline passed before a decision; nothing was recorded")]
    Expired,
    /// The actor failed while deciding or committing this command: it may or may not have
    /// been recorded. Never resend it blindly (a retry with the same request id is safe:
    /// the actor replays a decided request).
    #[error("the section actor failed; the outcome is unknown")]
    Unknown,
}

/// A command with its reply port and its admission permit.
pub struct Envelope {
    /// The command.
    command: Command,
    /// Where the answer goes; `None` once answered.
    reply: Option<RpcReplyPort<Result<Reply, SectionError>>>,
    /// Set when the actor takes the command out of its mailbox: from then on, an envelope
    /// dropped unanswered (the actor failed) answers [`SectionError::Unknown`].
    taken: bool,
    /// Released when the envelope is dropped, i.e. after the answer is sent.
    _permit: Permit,
    /// The home node that admitted the command (see [`AttemptRecord::home`]).
    home: Option<HomeClaim>,
    /// Past this, a command not decided yet is answered "not decided" instead: its caller
    /// has stopped waiting for this copy (a hop's deadline). A request decided before is
    /// still answered as it was.
    expires: Option<Instant>,
}

impl Envelope {
    /// A command for the actor, answered on `reply`, holding `permit`.
    pub fn new(
        command: Command,
        reply: RpcReplyPort<Result<Reply, SectionError>>,
        permit: Permit,
    ) -> Self {
        Self {
            command,
            reply: Some(reply),
            taken: false,
            _permit: permit,
            home: None,
            expires: None,
        }
    }

    /// Decide the command only if its batch starts before `at` (see [`Envelope::expires`]).
    pub fn expiring(mut self, at: Option<Instant>) -> Self {
        self.expires = at;
        self
    }

    /// The command comes from `home`'s student rules: commit it only while `home` holds.
    pub fn with_home(mut self, home: Option<HomeClaim>) -> Self {
        self.home = home;
        self
    }

    fn answer(mut self, result: Result<Reply, SectionError>) {
        if let Some(port) = self.reply.take() {
            let _ = port.send(result);
        }
    }
}

impl Drop for Envelope {
    fn drop(&mut self) {
        if self.taken
            && let Some(port) = self.reply.take()
        {
            let _ = port.send(Err(SectionError::Unknown));
        }
    }
}

/// Messages of a [`SectionActor`].
// Nearly every message is a `Command`: boxing it to shrink the rare others would cost an
// allocation per decision on the hot path.
#[allow(clippy::large_enum_variant)]
pub enum SectionMsg {
    /// Decide this command (with the rest of its batch).
    Command(Envelope),
    /// Decide and commit everything queued so far.
    Flush,
    /// Passivate if quiet.
    IdleCheck,
    /// A reserved pool's release time, or an offer's end, has come (by the store's
    /// clock): release and expire what is due with the next batch.
    TimeDue,
    /// Batch `seq`'s commit finished: the batch back if it committed.
    Committed {
        /// The batch's number in the [`Pipeline`].
        seq: u64,
        /// The committed batch, or why it did not commit.
        result: Result<CommitBatch, StoreError>,
    },
}

/// Called once an actor passivated, stopped or failed (the flag), so its registry forgets it.
pub type OnStop = Arc<dyn Fn(SectionId, &Arc<AdmissionGate>, bool) + Send + Sync>;

/// Activation arguments.
pub struct SectionArgs {
    /// The section.
    pub id: SectionId,
    /// The state loaded by the registry.
    pub snapshot: SectionSnapshot,
    /// Write-through target.
    pub store: Arc<dyn SectionStore>,
    /// Told about each commit.
    pub observer: Arc<dyn CommitObserver>,
    /// The section's admission gate, closed on passivation.
    pub gate: Arc<AdmissionGate>,
    /// Called with the gate once the actor passivated or stopped, to forget it.
    pub on_stop: OnStop,
    /// Tuning.
    pub config: SectionConfig,
}

/// The actor's state.
pub struct SectionState {
    args: SectionArgs,
    ledger: SeatLedger,
    epoch: i64,
    shard: u32,
    /// Commands of the batch being gathered.
    pending: Vec<Envelope>,
    /// Batches decided and committing, answered in order as they settle.
    pipeline: Pipeline<InFlight, Option<CommitBatch>>,
    /// The section's commit count once every batch decided so far has committed.
    commit_seq: i64,
    /// What the next batch's [`Turn`] waits on: the last batch handed to the store.
    turn: Option<oneshot::Receiver<()>>,
    /// The first commit failure since the pipeline last started afresh.
    failure: Option<StoreError>,
    /// A `Flush` is queued behind the pending commands.
    flush_queued: bool,
    last_active: Instant,
    /// Set by `post_stop`: the actor ended without failing.
    stopped: bool,
    /// The store's clock at the last load, and when (monotonic) it was read: "now" by the
    /// store's clock is this plus the time elapsed since.
    clock: (DateTime<Utc>, Instant),
    /// A pool's release time or an offer's end has come: the next batch starts with them.
    time_due: bool,
}

impl Drop for SectionState {
    /// Runs however the actor ended, a panic included: close the gate so no command is
    /// admitted to a dead actor, and let the registry forget it.
    fn drop(&mut self) {
        self.args.gate.force_close();
        let failed = !self.stopped;
        if failed {
            warn!(section_id = %self.args.id, shard = self.shard, "section actor failed");
        }
        (self.args.on_stop)(self.args.id, &self.args.gate, failed);
    }
}

/// The section actor (see the module docs).
pub struct SectionActor;

impl Actor for SectionActor {
    type Msg = SectionMsg;
    type State = SectionState;
    type Arguments = SectionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SectionMsg>,
        args: SectionArgs,
    ) -> Result<SectionState, ActorProcessingErr> {
        let every = (args.config.passivate_after / 2).max(Duration::from_millis(10));
        myself.send_interval(every, || SectionMsg::IdleCheck);
        let snap = &args.snapshot;
        let ledger = ledger_from(snap);
        schedule_timers(&myself, snap);
        Ok(SectionState {
            clock: (snap.clock, Instant::now()),
            time_due: false,
            epoch: snap.epoch,
            shard: snap.shard,
            ledger,
            // Grows with the first burst; each flush takes it whole (std::mem::take), so a
            // capacity reserved here would only be dropped: 100,000 idle sections would hold
            // it for nothing.
            pending: Vec::new(),
            pipeline: Pipeline::new(args.config.pipeline),
            commit_seq: snap.commit_seq,
            turn: None,
            failure: None,
            flush_queued: false,
            last_active: Instant::now(),
            stopped: false,
            args,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SectionMsg>,
        message: SectionMsg,
        state: &mut SectionState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SectionMsg::Command(mut envelope) => {
                envelope.taken = true;
                state.last_active = Instant::now();
                state.pending.push(envelope);
                if state.pending.len() >= state.args.config.max_batch {
                    flush(&myself, state).await;
                } else if !state.flush_queued {
                    state.flush_queued = true;
                    myself.send_message(SectionMsg::Flush)?;
                }
            }
            SectionMsg::Flush => {
                state.flush_queued = false;
                flush(&myself, state).await;
            }
            SectionMsg::TimeDue => {
                state.time_due = true;
                state.last_active = Instant::now();
                if !state.flush_queued {
                    state.flush_queued = true;
                    myself.send_message(SectionMsg::Flush)?;
                }
            }
            SectionMsg::Committed { seq, result } => {
                state.pipeline.finish(seq, result.map(Some));
                settle(&myself, state).await;
            }
            SectionMsg::IdleCheck => {
                let quiet = state.last_active.elapsed() >= state.args.config.passivate_after;
                let idle = state.pending.is_empty() && state.pipeline.in_flight() == 0;
                if quiet && idle && state.args.gate.try_close() {
                    debug!(section_id = %state.args.id, "passivating idle section");
                    myself.stop(Some("idle".into()));
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SectionMsg>,
        state: &mut SectionState,
    ) -> Result<(), ActorProcessingErr> {
        state.args.gate.force_close();
        // Gathered but never decided: nothing was recorded for them.
        for envelope in state.pending.drain(..) {
            envelope.answer(Err(SectionError::Unavailable));
        }
        state.stopped = true;
        Ok(())
    }
}

fn ledger_from(snap: &SectionSnapshot) -> SeatLedger {
    let mut ledger = SeatLedger::restore(
        snap.capacity,
        snap.waitlist_capacity,
        snap.enrolled.clone(),
        snap.waitlist.clone(),
        snap.next_waitlist_seq,
    )
    .with_held(snap.held.clone())
    .with_replacing(snap.replacing.clone())
    .with_reserves(
        snap.reserves.clone(),
        snap.pooled.clone(),
        snap.waiting_attrs.clone(),
    )
    .with_mode(snap.mode)
    .with_offers(snap.offers.clone())
    .with_over_capacity(snap.over_capacity.clone())
    .with_blocked(snap.blocked.clone());
    ledger.set_clock(snap.clock);
    ledger.remember(&snap.decided);
    ledger
}

/// Wake the actor when each pool not released yet reaches its release time, and when each
/// offer ends, measured from the store's clock at load (what is due already is handled by
/// the first batch).
fn schedule_timers(myself: &ActorRef<SectionMsg>, snap: &SectionSnapshot) {
    let pools = snap.reserves.iter().filter(|p| !p.released);
    let times = pools
        .filter_map(|p| p.release_at)
        .chain(snap.offers.iter().map(|(_, _, at)| *at));
    for at in times {
        wake_at(myself, at, snap.clock);
    }
}

/// Wake the actor at `at` by the store's clock, which reads `clock` now.
fn wake_at(myself: &ActorRef<SectionMsg>, at: DateTime<Utc>, clock: DateTime<Utc>) {
    let wait = (at - clock).to_std().unwrap_or(Duration::ZERO);
    myself.send_after(wait, || SectionMsg::TimeDue);
}

/// Now by the store's clock: its reading at the last load plus the time elapsed since.
fn store_now(state: &SectionState) -> DateTime<Utc> {
    let (clock, read_at) = state.clock;
    clock + chrono::TimeDelta::from_std(read_at.elapsed()).unwrap_or_default()
}

/// The commands that release the pools and end the offers due now by the store's clock,
/// when something is due.
fn take_due(state: &mut SectionState, now: DateTime<Utc>) -> Vec<Command> {
    if !std::mem::take(&mut state.time_due) {
        return Vec::new();
    }
    vec![
        Command::ReleaseReserves {
            now,
            request: crate::ids::RequestId::new_v4(),
        },
        Command::ExpireOffers {
            now,
            request: crate::ids::RequestId::new_v4(),
        },
    ]
}

/// A batch decided and handed to the store, waiting for its commit.
struct InFlight {
    /// Its callers (answered once it settles).
    envelopes: Vec<Envelope>,
    /// Their outcomes, in order.
    outcomes: Vec<Result<Outcome, Refusal>>,
    decided_at: DateTime<Utc>,
    counts: Counts,
    /// The store's clock when it was decided.
    store_time: DateTime<Utc>,
}

/// Decide the pending commands (up to a batch) and hand them to the store; they are
/// answered when the batch settles. Nothing happens while the pipeline is full or a
/// failure is being recovered from: the next settled batch flushes again.
async fn flush(myself: &ActorRef<SectionMsg>, state: &mut SectionState) {
    if !state.pipeline.can_start() {
        return;
    }
    let store_time = store_now(state);
    state.ledger.set_clock(store_time);
    let due = take_due(state, store_time);
    if state.pending.is_empty() && due.is_empty() {
        return;
    }
    let max = state.args.config.max_batch.max(1);
    let batch: Vec<Envelope> = if state.pending.len() > max {
        state.pending.drain(..max).collect()
    } else {
        std::mem::take(&mut state.pending)
    };
    let decided_at = Utc::now();
    let mut changes = Vec::new();
    let mut attempts = Vec::with_capacity(batch.len());
    let mut outcomes = Vec::with_capacity(batch.len());
    let now = Instant::now();
    let (batch, expired): (Vec<Envelope>, Vec<Envelope>) = batch
        .into_iter()
        .partition(|e| e.expires.is_none_or(|at| at > now) || state.ledger.has_decided(&e.command));
    for envelope in expired {
        envelope.answer(Err(SectionError::Expired));
    }
    if batch.is_empty() && due.is_empty() {
        return requeue(myself, state);
    }
    for command in due {
        let decision = state.ledger.apply(&command);
        if !decision.changes.is_empty() {
            attempts.push(AttemptRecord {
                request: command.request(),
                student: None,
                action: command.action(),
                outcome: decision.outcome,
                home: None,
            });
            changes.extend(decision.changes);
        }
    }
    for envelope in &batch {
        let decision = state.ledger.apply(&envelope.command);
        if !decision.replay {
            attempts.push(AttemptRecord {
                request: envelope.command.request(),
                student: envelope.command.student(),
                action: envelope.command.action(),
                outcome: decision.outcome.clone(),
                home: envelope.home.clone(),
            });
        }
        changes.extend(decision.changes);
        outcomes.push(decision.outcome);
    }
    let counts = state.ledger.counts();
    let flight = InFlight {
        envelopes: batch,
        outcomes,
        decided_at,
        counts,
        store_time,
    };
    if attempts.is_empty() {
        // Replays alone: nothing to write, but answered in order, behind the batches in
        // flight (a replayed decision may be one of theirs, not committed yet).
        let seq = state.pipeline.start(flight);
        state.pipeline.finish(seq, Ok(None));
        return settle(myself, state).await;
    }
    // A batch of refusals alone needs the check only on top of batches in flight: with
    // none, everything it was decided on is committed.
    let after = (!changes.is_empty() || state.pipeline.in_flight() > 0).then_some(state.commit_seq);
    if !changes.is_empty() {
        state.commit_seq += 1;
    }
    let commit = CommitBatch {
        section: state.args.id,
        shard: state.shard,
        epoch: state.epoch,
        decided_at,
        counts,
        changes,
        attempts,
        after,
    };
    let (turn, next) = Turn::after(state.turn.take());
    state.turn = Some(next);
    let seq = state.pipeline.start(flight);
    let committing = state.args.store.clone().submit(commit, turn);
    let reporter = Reporter {
        actor: myself.clone(),
        seq,
        result: None,
    };
    tokio::spawn(async move { reporter.report(committing.await) });
    requeue(myself, state);
}

/// Flush again soon if commands are left over and a batch may start.
fn requeue(myself: &ActorRef<SectionMsg>, state: &mut SectionState) {
    if !state.pending.is_empty() && state.pipeline.can_start() && !state.flush_queued {
        state.flush_queued = true;
        let _ = myself.send_message(SectionMsg::Flush);
    }
}

/// Tells the actor how batch `seq`'s commit ended, when dropped: with the result it was
/// given, or, if the commit task failed first (a panic), that the outcome is unknown.
struct Reporter {
    actor: ActorRef<SectionMsg>,
    seq: u64,
    result: Option<Result<CommitBatch, StoreError>>,
}

impl Reporter {
    /// Report `result` (sent as the reporter is dropped, here).
    fn report(mut self, result: Result<CommitBatch, StoreError>) {
        self.result = Some(result);
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let result = self
            .result
            .take()
            .unwrap_or_else(|| Err(StoreError::Unknown("the commit task failed".into())));
        let _ = self.actor.send_message(SectionMsg::Committed {
            seq: self.seq,
            result,
        });
    }
}

/// Answer every batch whose turn has come, in decision order; once a failure has drained
/// the pipeline, reload (or stop, if fenced); then flush what waited.
async fn settle(myself: &ActorRef<SectionMsg>, state: &mut SectionState) {
    while let Some((flight, result)) = state.pipeline.settle() {
        let InFlight {
            envelopes,
            outcomes,
            decided_at,
            counts,
            store_time,
        } = flight;
        match result {
            Ok(Some(commit)) => {
                for change in &commit.changes {
                    if let ChangeKind::Offered { expires_at, .. } = change.kind {
                        wake_at(myself, expires_at, store_time);
                    }
                }
                let version = Version::committed(state.epoch);
                state
                    .args
                    .observer
                    .committed(state.args.id, version, counts, &commit.changes);
            }
            // Replays behind a failed batch: their decision may have been its.
            Ok(None) if state.failure.is_some() => {
                fail_batch(envelopes, &StoreError::Unavailable("reloading".into()));
                continue;
            }
            Ok(None) => {}
            Err(err) => {
                fail_batch(envelopes, &err);
                state.failure.get_or_insert(err);
                continue;
            }
        }
        for (envelope, outcome) in envelopes.into_iter().zip(outcomes) {
            envelope.answer(Ok(Reply {
                outcome,
                decided_at,
                counts,
            }));
        }
    }
    if state.pipeline.needs_recovery() {
        let err = state
            .failure
            .take()
            .unwrap_or_else(|| StoreError::Unknown("a commit failed".into()));
        recover(myself, state, err).await;
        state.pipeline.restart();
    }
    requeue(myself, state);
}

fn fail_batch(batch: Vec<Envelope>, err: &StoreError) {
    let answer = match err {
        StoreError::Fenced => SectionError::Fenced,
        StoreError::Unknown(_) => SectionError::Unknown,
        StoreError::NotFound | StoreError::Unavailable(_) => SectionError::Unavailable,
    };
    for envelope in batch {
        envelope.answer(Err(answer.clone()));
    }
}

/// After a failed commit the in-memory ledger is ahead of the database: reload it, or stop
/// so that the next command activates a fresh actor.
async fn recover(myself: &ActorRef<SectionMsg>, state: &mut SectionState, err: StoreError) {
    warn!(section_id = %state.args.id, shard = state.shard, error = %err, "batch commit failed");
    if err == StoreError::Fenced {
        myself.stop(Some("fenced".into()));
        return;
    }
    match state.args.store.load(state.args.id).await {
        Ok(snap) => {
            state.ledger = ledger_from(&snap);
            state.epoch = snap.epoch;
            state.commit_seq = snap.commit_seq;
            state.turn = None;
            state.clock = (snap.clock, Instant::now());
            schedule_timers(myself, &snap);
        }
        Err(reload) => {
            warn!(section_id = %state.args.id, error = %reload, "reload failed; stopping actor");
            myself.stop(Some("reload failed".into()));
        }
    }
}
