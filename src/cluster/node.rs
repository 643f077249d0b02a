//! This node in the cluster: the composition of its parts, each with one job, and the
//! task that drives them.
//!
//! - [`Membership`]: id, incarnation, lease and heartbeat, join and leave, self-fencing;
//! - [`MapCache`]: the shard map as last read, and what a new one means for this node;
//! - [`Listener`]: the notices of the cluster's channel;
//! - [`LoadReporter`]: the load the heartbeat reports;
//! - [`Handoff`] and [`Coordinator`]: the old owner's side of moves, and the assignment of
//!   shards when this node holds the coordinator's lease.
//!
//! The parts are wired to one another here and nowhere else; the rest of the server goes
//! through [`ClusterNode`], which delegates.

use super::clock::DatabaseClock;
use super::coordinator::Coordinator;
use super::gates::ShardGates;
use super::handoff::Handoff;
use super::listener::Listener;
use super::load::{HealthProbe, LoadReporter};
use super::map::ShardMap;
use super::map_cache::MapCache;
use super::membership::Membership;
use super::peer::{HandoffAnswer, HandoffRequest, Peers};
use super::rules::RuleCacheLink;
use super::shard_of;
use crate::backoff::Backoff;
use crate::config::ClusterSettings;
use crate::metrics::RequestFigures;
use crate::shutdown::Shutdown;
use crate::store::DbError;
use registrar_actors::SectionRegistry;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

pub use super::membership::{JoinError, NodeFault};
pub use super::rules::RuleCaches;
pub use super::stats::ClusterStats;

/// This node in the cluster (see module docs).
pub struct ClusterNode {
    /// Stable id.
    pub id: Arc<str>,
    /// The URL peers reach this node at.
    pub advertise: String,
    /// Per-shard admission (handoffs quiet shards through it).
    pub gates: Arc<ShardGates>,
    /// The internal client.
    pub peers: Peers,
    /// Figures.
    pub stats: Arc<ClusterStats>,
    /// The database's clock, which every time-based rule is judged by.
    pub clock: Arc<DatabaseClock>,
    /// Client requests answered, for the load report (the HTTP layer records them).
    pub requests: Arc<RequestFigures>,
    /// The connections peers opened to this node's wire (closed when it stops).
    pub wire_sessions: Arc<super::wire::Sessions>,
    /// The node's pool (the map's reads, the listener, the moves).
    pool: PgPool,
    membership: Arc<Membership>,
    map: Arc<MapCache>,
    rules: Arc<RuleCacheLink>,
    load: LoadReporter,
    handoff: Arc<Handoff>,
    coordinator: Arc<Coordinator>,
    /// Wakes the coordinator early (the listener heard the map change).
    coordinator_wake: Arc<Notify>,
}

impl ClusterNode {
    /// A node that has not joined yet.
    pub fn new(
        pool: PgPool,
        lease_pool: PgPool,
        settings: ClusterSettings,
        advertise: String,
        registry: Arc<SectionRegistry>,
        peers: Peers,
    ) -> Arc<Self> {
        let id: Arc<str> = Arc::from(settings.node_id.as_str());
        let shards = settings.shards.max(1);
        let stats = Arc::new(ClusterStats::default());
        let clock = Arc::new(DatabaseClock::default());
        let requests = Arc::new(RequestFigures::default());
        let gates = ShardGates::new(shards);
        let rules = Arc::new(RuleCacheLink::default());
        let map = Arc::new(MapCache::new(
            id.clone(),
            shards,
            pool.clone(),
            rules.clone(),
            registry.clone(),
        ));
        let membership = Arc::new(Membership::new(
            pool.clone(),
            lease_pool,
            settings,
            advertise.clone(),
            map.clone(),
            registry.clone(),
            rules.clone(),
            stats.clone(),
            clock.clone(),
        ));
        let load = LoadReporter::new(id.clone(), shards, registry.clone(), requests.clone());
        let handoff = Arc::new(Handoff::new(
            membership.clone(),
            map.clone(),
            gates.clone(),
            registry,
            stats.clone(),
        ));
        let coordinator_wake = Arc::new(Notify::new());
        let coordinator = Arc::new(Coordinator::new(
            membership.clone(),
            map.clone(),
            handoff.clone(),
            peers.clone(),
            stats.clone(),
            coordinator_wake.clone(),
        ));
        Arc::new(Self {
            id,
            advertise,
            gates,
            peers,
            stats,
            clock,
            requests,
            wire_sessions: Arc::default(),
            pool,
            membership,
            map,
            rules,
            load,
            handoff,
            coordinator,
            coordinator_wake,
        })
    }

    /// Connect the rule caches the node keeps right (once, at start).
    pub fn set_rule_caches(&self, caches: Arc<dyn RuleCaches>) {
        self.rules.connect(caches);
    }

    /// Connect the probe of the broker link's and the mirror's health, which the load
    /// report carries (once, at start; they are built after the node).
    pub fn set_health_probe(&self, probe: Arc<dyn HealthProbe>) {
        self.load.set_health_probe(probe);
    }

    /// Close the membership's own connections (at shutdown, after leaving).
    pub async fn close_pools(&self) {
        self.membership.close_pools().await;
    }

    /// The node's pool.
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The coordinator's side of this node.
    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coordinator
    }

    /// The current incarnation.
    pub fn incarnation(&self) -> Uuid {
        self.membership.incarnation()
    }

    /// The shard count.
    pub fn shards(&self) -> u32 {
        self.membership.shards()
    }

    /// The lease time in milliseconds, as the database judges leases.
    pub fn lease_ms(&self) -> u64 {
        self.membership.lease_ms()
    }

    /// The lease time.
    pub fn lease(&self) -> Duration {
        self.membership.lease()
    }

    /// The heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        self.membership.heartbeat()
    }

    /// How long one handoff may take.
    pub fn handoff_timeout(&self) -> Duration {
        self.membership.handoff_timeout()
    }

    /// The map as last read.
    pub fn map(&self) -> Arc<ShardMap> {
        self.map.map()
    }

    /// A receiver that sees every new map.
    pub fn watch_map(&self) -> watch::Receiver<Arc<ShardMap>> {
        self.map.watch()
    }

    /// Lease held (and renewed within the lease time) and map loaded.
    pub fn is_ready(&self) -> bool {
        self.membership.is_ready()
    }

    /// Whether this node may decide anything now: its lease was renewed within the lease
    /// time, by the monotonic clock, and no other process replaced it.
    pub fn holds_lease(&self) -> bool {
        self.membership.holds_lease()
    }

    /// Why this node stopped for good, if it did.
    pub fn fault(&self) -> Option<NodeFault> {
        self.membership.fault()
    }

    /// Resolves once this node stopped for good (never, normally).
    pub async fn stopped_for_good(&self) -> NodeFault {
        self.membership.stopped_for_good().await
    }

    /// Whether this node coordinates now.
    pub fn is_coordinator(&self) -> bool {
        self.coordinator.is_leading()
    }

    /// The shard of a section or a student.
    pub fn shard_of(&self, id: Uuid) -> u32 {
        shard_of(id, self.shards())
    }

    /// Join: create the cluster's shard rows if this is its first node, register a fresh
    /// incarnation, read the map and become `active`. The first node of an empty cluster
    /// takes every shard at once (it becomes the coordinator).
    pub async fn join(self: &Arc<Self>) -> Result<(), JoinError> {
        self.membership.join().await?;
        // A fresh cluster: lead and assign now, so the node serves from its first request.
        self.coordinator.step().await?;
        self.map.refresh().await?;
        tracing::info!(node = %self.id, incarnation = %self.incarnation(), shards_owned = self.map().owned_by(&self.id), "joined the cluster");
        Ok(())
    }

    /// Read the map again unless it was read in the last few milliseconds (callers
    /// retrying after a stale map share one read).
    pub async fn refresh_soon(&self) -> Result<(), DbError> {
        self.map.refresh_soon().await
    }

    /// Read the map again and act on what changed for this node.
    pub async fn refresh(&self) -> Result<(), DbError> {
        self.map.refresh().await
    }

    /// Carry out a handoff of shards this node owns, as the coordinator asks.
    pub async fn release(&self, request: &HandoffRequest) -> HandoffAnswer {
        self.handoff.release(request).await
    }

    /// Decisions per second at the last heartbeat.
    pub fn last_rate(&self) -> f64 {
        self.load.last_rate()
    }

    /// Decisions per second by shard at the last heartbeat, busiest first.
    pub fn shard_loads(&self) -> Vec<(u32, f64)> {
        self.load.shard_loads()
    }

    /// Renew the lease and refresh the map every heartbeat and whenever the map changes;
    /// apply the channel's notices. Ends at `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut tick = tokio::time::interval(self.heartbeat());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listener = Listener::new(
            self.pool.clone(),
            self.map.clone(),
            self.rules.clone(),
            self.shards(),
            self.coordinator_wake.clone(),
        );
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            listener.connect().await;
            tokio::select! {
                _ = shutdown.recv() => return,
                _ = tick.tick() => {
                    // Bounded: a heartbeat that hangs is a heartbeat that failed.
                    let result = tokio::time::timeout(self.lease(), async {
                        self.membership.beat(|| self.load.report()).await?;
                        self.map.refresh().await
                    }).await;
                    if self.fault().is_some() {
                        return;
                    }
                    match result {
                        Ok(Ok(())) => backoff.reset(),
                        failed => {
                            let error = match failed {
                                Ok(Err(e)) => e.to_string(),
                                _ => "timed out".into(),
                            };
                            tracing::warn!(node = %self.id, %error, "heartbeat failed");
                            self.membership.self_fence().await;
                            let pause = backoff.next_delay().min(self.heartbeat() * 2);
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
                heard = listener.receive() => listener.act(heard).await,
            }
        }
    }

    /// Stop taking part: hand every shard to the other active nodes, at most for
    /// `timeout` (see [`Membership::drain`]).
    pub async fn drain(&self, timeout: Duration) {
        self.membership.drain(timeout).await;
    }

    /// Leave the cluster for good (after the last request and the last actor stopped):
    /// whatever shards are left go unowned, for the coordinator to reassign at once.
    pub async fn leave(&self) {
        self.membership.leave().await;
    }
}
