//! The coordinator: one node at a time, the holder of the lease row in
//! `cluster_coordinator` (taken over by any node once its holder stops renewing it), assigns
//! shards. Each step, every heartbeat or as soon as the map changes:
//!
//! 1. in one transaction, under the lease: members whose lease ran out are declared dead,
//!    and every orphaned shard (no owner, or a dead or departed one) goes to an active
//!    member with its epoch bumped; moves stranded by a dead node are marked failed;
//! 2. the shards of draining members are handed to active members, and (with
//!    `auto_rebalance`) shards move from the fullest to the emptiest members until the
//!    counts differ by at most one: handoffs batched per (from, to) pair, all batches at
//!    once, each run by the shard's current owner (see `handoff`).
//!
//! Nobody is declared dead by a coordinator that has not itself renewed its lease
//! steadily for a whole lease ([`LeaseRecord`]): after a stall of the database every
//! heartbeat looks old. The step's transaction waits for no row lock of a dead member: it
//! ends the dead member's sessions that hold such locks and skips rows still locked.
//!
//! Shards never move from a live owner except by a handoff that owner runs itself. A
//! coordinator that was paused past its lease finds its transaction refused (the lease is
//! re-checked under a row lock) and a handoff it asks for is checked by the owner.

use super::handoff::Handoff;
use super::map::ShardMap;
use super::map_cache::MapCache;
use super::membership::Membership;
use super::peer::{HandoffAnswer, HandoffRequest, Peers};
use super::plan;
use super::stats::ClusterStats;
use crate::store::DbError;
use crate::store::cluster::{self as rows, MoveReason, MoveState, NodeState};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Since when this node's renewals of the coordinator's lease have come back without a
/// gap. Only a coordinator that has seen the database answer it steadily for a whole
/// lease declares anyone dead: after a stall (PostgreSQL, the network, this process
/// paused) every other member's heartbeat looks old too, and they must first get a lease's
/// time to renew it. A gap is measured between the *answers* (a renewal sent just before a
/// stall is answered after it).
#[derive(Debug, Default)]
pub struct LeaseRecord {
    /// When the last renewal was answered.
    last: Option<Instant>,
    /// When the current unbroken run of renewals began.
    since: Option<Instant>,
}

impl LeaseRecord {
    /// A renewal was answered at `at`; more than `max_gap` after the previous one, a new
    /// run begins.
    pub fn renewed(&mut self, at: Instant, max_gap: Duration) {
        if self
            .last
            .is_none_or(|last| at.saturating_duration_since(last) > max_gap)
        {
            self.since = Some(at);
        }
        self.last = Some(at);
    }

    /// The lease is not (or no longer) this node's.
    pub fn lost(&mut self) {
        *self = Self::default();
    }

    /// Whether the run of renewals has lasted at least `lease` by `now`.
    pub fn steady_for(&self, lease: Duration, now: Instant) -> bool {
        self.since
            .is_some_and(|since| now.saturating_duration_since(since) >= lease)
    }
}

/// The longest gap between two answered renewals that still counts as unbroken: a member
/// silent through such a gap had the rest of a lease to renew, since it heartbeats far
/// more often than that.
fn max_gap(lease: Duration) -> Duration {
    lease / 2
}

/// How long the coordinator's transactions wait for a row lock (then they skip the row).
fn lock_wait(lease: Duration) -> Duration {
    (lease / 10).clamp(Duration::from_millis(50), Duration::from_millis(500))
}

/// How long automatic rebalancing leaves a shard where an operator moved it.
const OPERATOR_PLACEMENT_MINUTES: i32 = 10;

/// Handoffs recorded and ready to run: (old owner, request).
pub type Batches = Vec<(String, HandoffRequest)>;

/// The coordinator's side of this node (see module docs): whether it leads, and the
/// steps it takes while it does.
pub struct Coordinator {
    /// This node's id and incarnation, under which the lease is held.
    membership: Arc<Membership>,
    /// Read again after every change the coordinator makes.
    map: Arc<MapCache>,
    /// This node's own handoffs, for the shards it owns.
    handoff: Arc<Handoff>,
    /// The hop to the owners of the other shards.
    peers: Peers,
    stats: Arc<ClusterStats>,
    /// Whether this node holds the coordinator's lease.
    leading: AtomicBool,
    /// Wakes the coordinator early (the map changed).
    wake: Arc<Notify>,
    /// Moves an operator asked for, run beside the steps; waited for at shutdown.
    operator_moves: Mutex<JoinSet<()>>,
}

impl Coordinator {
    /// The coordinator of the node whose parts these are.
    pub fn new(
        membership: Arc<Membership>,
        map: Arc<MapCache>,
        handoff: Arc<Handoff>,
        peers: Peers,
        stats: Arc<ClusterStats>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            membership,
            map,
            handoff,
            peers,
            stats,
            leading: AtomicBool::new(false),
            wake,
            operator_moves: Mutex::new(JoinSet::new()),
        }
    }

    fn id(&self) -> &Arc<str> {
        self.membership.id()
    }

    /// Whether this node coordinates now.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }

    /// One coordinator step (see module docs); a no-op on a node that does not hold the
    /// lease. A step by itself (at join) declares nobody dead: it has no record of its
    /// lease.
    pub async fn step(&self) -> Result<(), DbError> {
        if self.steer(&mut LeaseRecord::default()).await? {
            self.plan_and_run().await?;
        }
        Ok(())
    }

    /// Step 1 and the drains: take or renew the lease, then the dead and their shards,
    /// then the drained; whether this node leads. Bounded by the lease's time in
    /// [`Coordinator::run`].
    async fn steer(&self, record: &mut LeaseRecord) -> Result<bool, DbError> {
        let incarnation = self.membership.incarnation();
        let lease_ms = self.membership.lease_ms();
        let lease_pool = self.membership.lease_pool();
        let leading = rows::lead(lease_pool, self.id(), incarnation, lease_ms).await?;
        if leading {
            record.renewed(Instant::now(), max_gap(self.membership.lease()));
        } else {
            record.lost();
        }
        if self.leading.swap(leading, Ordering::Relaxed) != leading {
            tracing::info!(node = %self.id(), leading, "coordinator lease changed");
        }
        if !leading {
            return Ok(false);
        }
        let may_expire = record.steady_for(self.membership.lease(), Instant::now());
        self.reassign_orphans(incarnation, lease_ms, may_expire)
            .await?;
        self.map.refresh().await?;
        self.finish_drains(incarnation).await?;
        Ok(true)
    }

    /// Step 2: plan the handoffs and run them.
    async fn plan_and_run(&self) -> Result<(), DbError> {
        let (moves, reason) = self.planned_moves().await?;
        if !moves.is_empty() {
            self.run_moves(moves, reason).await;
        }
        Ok(())
    }

    /// Step 1: the dead and their shards, in one transaction. Members whose lease ran out
    /// are declared dead only if `may_expire` (see [`LeaseRecord`]); the sessions of the
    /// dead that hold locks on the cluster's rows are ended first, and rows still locked
    /// are left for the next step, so one paused node cannot hold up the reassignment of
    /// the others.
    async fn reassign_orphans(
        &self,
        incarnation: uuid::Uuid,
        lease_ms: u64,
        may_expire: bool,
    ) -> Result<(), DbError> {
        let me = self.id();
        let lease_pool = self.membership.lease_pool();
        let Some(mut tx) = rows::begin_as_coordinator(lease_pool, me, incarnation).await? else {
            return Ok(());
        };
        let lock_ms = lock_wait(self.membership.lease()).as_millis() as u64;
        rows::bound_transaction(&mut tx, lock_ms, lease_ms / 2).await?;
        let ended =
            rows::end_lock_holders_of_the_dead(&mut tx, lease_ms, me, may_expire, lock_ms).await?;
        if !ended.is_empty() {
            tracing::warn!(coordinator = %me, ?ended, "ended the database sessions of dead members that held cluster locks");
        }
        let dead = if may_expire {
            rows::expire_dead(&mut tx, lease_ms, me).await?
        } else {
            Vec::new()
        };
        if !dead.is_empty() {
            tracing::warn!(coordinator = %me, ?dead, "members declared dead (lease expired)");
        }
        let members = rows::nodes(&mut *tx).await?;
        let shards = rows::shards(&mut *tx).await?;
        let gone: HashSet<&str> = members
            .iter()
            .filter(|m| matches!(m.state, NodeState::Dead | NodeState::Left))
            .map(|m| m.id.as_str())
            .collect();
        let owners: Vec<Option<String>> = shards
            .iter()
            .map(|s| s.node_id.clone().filter(|o| !gone.contains(o.as_str())))
            .collect();
        let active: Vec<String> = members
            .iter()
            .filter(|m| m.state == NodeState::Active)
            .map(|m| m.id.clone())
            .collect();
        let assignments = plan::reassign_orphans(&owners, &active);
        let assigned = rows::assign_orphans(&mut tx, &assignments).await?;
        let failed = rows::fail_stranded_moves(&mut tx).await?;
        tx.commit().await?;
        if assigned > 0 || failed > 0 {
            tracing::info!(coordinator = %me, assigned, failed_moves = failed, "orphaned shards reassigned");
        }
        if (assigned as usize) < assignments.len() {
            let left = assignments.len() - assigned as usize;
            tracing::info!(coordinator = %me, left, "orphaned shards left for the next step");
        }
        Ok(())
    }

    /// Members that were draining and own nothing any more have left.
    async fn finish_drains(&self, incarnation: uuid::Uuid) -> Result<(), DbError> {
        let (pool, me) = (self.membership.pool(), self.id());
        if let Some(mut tx) = rows::begin_as_coordinator(pool, me, incarnation).await? {
            let left = rows::finish_drains(&mut tx).await?;
            tx.commit().await?;
            if !left.is_empty() {
                tracing::info!(coordinator = %me, ?left, "drained members left the cluster");
            }
        }
        Ok(())
    }

    /// The handoffs of a rebalance asked by an operator: by shard count, or (`by_load`)
    /// the hottest shards off the busiest members first, by the load each member reported
    /// with its last heartbeat.
    pub async fn plan_rebalance(&self, by_load: bool) -> Result<Vec<plan::Move>, DbError> {
        self.map.refresh().await?;
        let map = self.map.map();
        let lease_ms = self.membership.lease_ms();
        let open = self.open_move_shards().await?;
        let active = active_members(&map, lease_ms);
        let owners = map.owners();
        let max_moves = self.membership.settings().handoff_batch.max(1) * active.len().max(1);
        let moves = if by_load {
            let mut load = std::collections::HashMap::new();
            for member in map.members.values().filter(|m| m.is_live(lease_ms)) {
                load.extend(member.row.shard_load.iter().map(|(s, rate)| (*s, *rate)));
            }
            plan::rebalance_by_load(&owners, &active, &load, max_moves)
        } else {
            plan::rebalance_by_count(&owners, &active, max_moves)
        };
        Ok(moves
            .into_iter()
            .filter(|m| !open.contains(&m.shard))
            .collect())
    }

    /// The shards with a move in progress.
    async fn open_move_shards(&self) -> Result<HashSet<u32>, DbError> {
        Ok(rows::moves(self.membership.pool(), true, 10_000)
            .await?
            .iter()
            .map(|m| m.shard as u32)
            .collect())
    }

    /// Step 2: the handoffs to run now, and why (a drain or a rebalance).
    async fn planned_moves(&self) -> Result<(Vec<plan::Move>, MoveReason), DbError> {
        let map = self.map.map();
        let lease_ms = self.membership.lease_ms();
        let settings = self.membership.settings();
        let open = self.open_move_shards().await?;
        let active = active_members(&map, lease_ms);
        if active.is_empty() {
            return Ok((Vec::new(), MoveReason::Rebalance));
        }
        let draining: HashSet<String> = map
            .members
            .iter()
            .filter(|(_, m)| m.row.state == NodeState::Draining && m.is_live(lease_ms))
            .map(|(id, _)| id.to_string())
            .collect();
        let owners = map.owners();
        let max_moves = settings.handoff_batch.max(1) * active.len();
        let moves = if !draining.is_empty() {
            // The draining members' shards as if orphaned, placed on the active members.
            let as_orphans: Vec<Option<String>> = owners
                .iter()
                .map(|o| o.clone().filter(|o| !draining.contains(o)))
                .collect();
            plan::reassign_orphans(&as_orphans, &active)
                .into_iter()
                .filter_map(|(shard, to)| {
                    let from = owners[shard as usize].clone()?;
                    Some(plan::Move { shard, from, to })
                })
                .take(max_moves)
                .collect()
        } else if settings.auto_rebalance {
            // Shards an operator placed recently stay where they are; they still count for
            // their owners.
            let placed: HashSet<u32> =
                rows::placed_by_operators(self.membership.pool(), OPERATOR_PLACEMENT_MINUTES)
                    .await?
                    .into_iter()
                    .map(|s| s as u32)
                    .collect();
            plan::rebalance_by_count_pinned(&owners, &active, max_moves, &placed)
        } else {
            Vec::new()
        };
        let reason = if draining.is_empty() {
            MoveReason::Rebalance
        } else {
            MoveReason::Drain
        };
        Ok((
            moves
                .into_iter()
                .filter(|m| !open.contains(&m.shard))
                .collect(),
            reason,
        ))
    }

    /// Record `moves` and run them: one handoff per (from, to) pair and batch, all at
    /// once; each is carried out by the shard's current owner. The shards that changed
    /// hands.
    pub async fn run_moves(&self, moves: Vec<plan::Move>, reason: MoveReason) -> Vec<u32> {
        let batches = match self.record(moves, reason, self.id()).await {
            Ok((batches, _)) => batches,
            Err(e) => {
                // Most likely a shard that got an open move meanwhile; next step.
                tracing::info!(error = %e, "moves not started");
                return Vec::new();
            }
        };
        self.execute(batches).await
    }

    /// Record `moves` as running (asked by `requested_by`, for `reason`), batched per
    /// (from, to) pair; the batches and the recorded rows. A shard with an open move
    /// already is `Err(Duplicate)` and nothing is recorded.
    pub async fn record(
        &self,
        moves: Vec<plan::Move>,
        reason: MoveReason,
        requested_by: &str,
    ) -> Result<(Batches, Vec<rows::MoveRow>), DbError> {
        let mut pairs: BTreeMap<(String, String), Vec<u32>> = BTreeMap::new();
        for m in moves {
            pairs.entry((m.from, m.to)).or_default().push(m.shard);
        }
        let planned: Vec<(u32, String, String)> = pairs
            .iter()
            .flat_map(|((from, to), shards)| shards.iter().map(|s| (*s, from.clone(), to.clone())))
            .collect();
        let pool = self.membership.pool();
        let started = rows::start_moves(pool, &planned, reason, requested_by).await?;
        let ids: std::collections::HashMap<u32, i64> = started.into_iter().collect();
        self.stats
            .moves_started
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        let mut recorded = Vec::new();
        for (shard, from, to) in &planned {
            let Some(id) = ids.get(shard) else { continue };
            recorded.push(rows::MoveRow {
                id: *id,
                shard: *shard as i32,
                from_node: from.clone(),
                to_node: to.clone(),
                reason,
                requested_by: requested_by.into(),
                state: MoveState::Running,
                error: None,
                held_requests: 0,
                started_at: chrono::Utc::now(),
                finished_at: None,
            });
        }
        let batch = self.membership.settings().handoff_batch.max(1);
        let mut batches = Vec::new();
        for ((from, to), shards) in pairs {
            // Only the moves recorded (a shard whose owner changed meanwhile is left out).
            let shards: Vec<(u32, i64)> = shards
                .iter()
                .filter_map(|s| ids.get(s).map(|id| (*s, *id)))
                .collect();
            for chunk in shards.chunks(batch) {
                let request = HandoffRequest {
                    to: to.clone(),
                    moves: chunk.to_vec(),
                };
                batches.push((from.clone(), request));
            }
        }
        Ok((batches, recorded))
    }

    /// Run recorded handoffs, all at once; the shards that changed hands.
    pub async fn execute(&self, batches: Batches) -> Vec<u32> {
        let runs = batches
            .into_iter()
            .map(|(from, request)| self.ask_owner(from, request));
        let answers = futures_util::future::join_all(runs).await;
        answers.into_iter().flat_map(|a| a.moved).collect()
    }

    /// Run recorded handoffs in the background (an operator's, answered at once), as a
    /// task of this coordinator: [`Coordinator::run`] waits for it when the node stops.
    pub fn execute_in_background(self: &Arc<Self>, batches: Batches) {
        let coordinator = self.clone();
        let mut tasks = self.operator_moves.lock().expect("operator moves");
        // Those already ended are reaped here, so the set stays as small as what runs.
        while let Some(ended) = tasks.try_join_next() {
            log_panic(ended);
        }
        tasks.spawn(async move {
            coordinator.execute(batches).await;
        });
    }

    /// Have `from` carry out `request` (this node itself, or a peer over the internal hop).
    async fn ask_owner(&self, from: String, request: HandoffRequest) -> HandoffAnswer {
        let ids: Vec<i64> = request.moves.iter().map(|m| m.1).collect();
        let answer = if *from == **self.id() {
            self.handoff.release(&request).await
        } else {
            let address = self.map.map().address(&from).map(str::to_string);
            let timeout = self.membership.handoff_timeout() + self.membership.lease();
            match address {
                Some(base) => self
                    .peers
                    .handoff(&base, &request, timeout)
                    .await
                    .unwrap_or_else(|e| HandoffAnswer {
                        moved: Vec::new(),
                        error: Some(e.to_string()),
                    }),
                None => HandoffAnswer {
                    moved: Vec::new(),
                    error: Some(format!("no address for {from}")),
                },
            }
        };
        if let Some(error) = &answer.error {
            tracing::warn!(%from, to = %request.to, %error, "handoff failed");
            // Moves the owner never recorded (it was unreachable): failed, nothing moved.
            let _ = rows::fail_moves(self.membership.pool(), &ids, error).await;
        }
        answer
    }

    /// Run coordinator steps every heartbeat and whenever the map changes, until
    /// `shutdown`. Step 1 is bounded by the lease (a step that waits longer would let the
    /// lease lapse under it); the handoffs of step 2 run beside the next steps, one plan at
    /// a time, so the lease is renewed while they run. At the end, the handoffs under way
    /// (the steps' and the operators') are waited for.
    pub async fn run(self: Arc<Self>, mut shutdown: crate::shutdown::Shutdown) {
        let mut record = LeaseRecord::default();
        let mut moving: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let steered = tokio::time::timeout(self.membership.lease(), self.steer(&mut record));
            match steered.await {
                Ok(Ok(true)) if moving.as_ref().is_none_or(|m| m.is_finished()) => {
                    let coordinator = self.clone();
                    moving = Some(tokio::spawn(async move {
                        if let Err(e) = coordinator.plan_and_run().await {
                            tracing::warn!(node = %coordinator.id(), error = %e, "coordinator moves failed");
                        }
                    }));
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(node = %self.id(), error = %e, "coordinator step failed")
                }
                Err(_) => tracing::warn!(node = %self.id(), "coordinator step timed out"),
            }
            tokio::select! {
                _ = shutdown.recv() => break,
                _ = tokio::time::sleep(self.membership.heartbeat()) => {}
                _ = self.wake.notified() => {}
            }
        }
        if let Some(moving) = moving {
            let _ = moving.await;
        }
        let mut operator_moves =
            std::mem::take(&mut *self.operator_moves.lock().expect("operator moves"));
        while let Some(ended) = operator_moves.join_next().await {
            log_panic(ended);
        }
    }
}

/// An operator's moves task that panicked is only logged: its moves stay recorded as
/// running until the next step's sweep or the owner ends them.
fn log_panic(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended {
        tracing::error!(error = %e, "an operator's moves task failed");
    }
}

/// The active members with a live lease, by id.
fn active_members(map: &ShardMap, lease_ms: u64) -> Vec<String> {
    let mut active: Vec<String> = map
        .members
        .iter()
        .filter(|(_, m)| m.is_active(lease_ms))
        .map(|(id, _)| id.to_string())
        .collect();
    active.sort();
    active
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(2_000);

    #[test]
    fn steady_renewals_for_a_lease_allow_expiry() {
        let t0 = Instant::now();
        let mut r = LeaseRecord::default();
        assert!(!r.steady_for(LEASE, t0));
        for i in 0..=10 {
            r.renewed(t0 + Duration::from_millis(200 * i), max_gap(LEASE));
        }
        assert!(r.steady_for(LEASE, t0 + LEASE));
        assert!(!r.steady_for(LEASE, t0 + LEASE - Duration::from_millis(1)));
    }

    #[test]
    fn an_answer_after_a_stall_starts_a_new_run() {
        let t0 = Instant::now();
        let mut r = LeaseRecord::default();
        for i in 0..=20 {
            r.renewed(t0 + Duration::from_millis(200 * i), max_gap(LEASE));
        }
        assert!(r.steady_for(LEASE, t0 + Duration::from_secs(4)));
        // Answered 6 s after the previous one: the others had no chance to renew.
        let back = t0 + Duration::from_secs(10);
        r.renewed(back, max_gap(LEASE));
        assert!(!r.steady_for(LEASE, back + Duration::from_millis(1_500)));
        for i in 1..=10 {
            r.renewed(back + Duration::from_millis(200 * i), max_gap(LEASE));
        }
        assert!(r.steady_for(LEASE, back + LEASE));
    }

    #[test]
    fn a_lost_lease_forgets_the_run() {
        let t0 = Instant::now();
        let mut r = LeaseRecord::default();
        r.renewed(t0, max_gap(LEASE));
        r.lost();
        r.renewed(t0 + Duration::from_millis(200), max_gap(LEASE));
        assert!(!r.steady_for(LEASE, t0 + LEASE));
        assert!(r.steady_for(LEASE, t0 + LEASE + Duration::from_millis(200)));
    }
}
