//! This node's membership: it registers a fresh incarnation, renews its lease, keeps the
//! shard map current (LISTEN/NOTIFY plus a refresh at every heartbeat), reacts to what
//! the map says about it (shards gained or lost), and rejoins as a new member when it
//! finds it was declared dead (a pause or a partition longer than its lease).
//!
//! One id, one live process: a process whose id's current incarnation still holds a live
//! lease is refused at join (it waits about a lease for a killed predecessor's lease to
//! lapse, then gives up), and a running node that finds its incarnation replaced by another
//! live process stops for good ([`NodeFault::Replaced`]) instead of rejoining, which would
//! fence the other one in turn. A node that could not renew its lease for longer than the
//! lease (by the monotonic clock, [`LeaseClock`]) fences itself: it serves nothing as home
//! or owner and stops its actors until a heartbeat succeeds again.
//!
//! Losing a shard any way but a handoff means another node may already decide its
//! sections: the actors of lost shards are stopped at once (their late commits fail on
//! the epoch anyway), and the rule inputs of the shard's students are forgotten, since
//! another node now serializes those students.

use super::clock::{DatabaseClock, LeaseClock};
use super::gates::ShardGates;
use super::map::ShardMap;
use super::peer::Peers;
use super::shard_of;
use crate::backoff::Backoff;
use crate::config::ClusterSettings;
use crate::events::relay::RelayStats;
use crate::metrics::{RequestFigures, RequestSnapshot};
use crate::redis::SeatMirror;
use crate::shutdown::Shutdown;
use crate::store::DbError;
use crate::store::cluster::{self as rows, CHANNEL, LoadReport};
use prometheus_client::metrics::histogram::Histogram;
use registrar_actors::{SectionId, SectionRegistry};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use uuid::Uuid;

/// What the node tells the student rule caches (implemented by the registration service).
pub trait RuleCaches: Send + Sync {
    /// Forget what is cached about the students of `shards` (of `total`).
    fn forget_shards(&self, shards: &HashSet<u32>, total: u32);
    /// Forget what is cached about one student (an admin changed it).
    fn forget_student(&self, student: Uuid);
    /// Forget cached registration windows (an admin changed one).
    fn forget_windows(&self);
}

/// Cluster figures for `/metrics` and the benchmarks.
pub struct ClusterStats {
    /// Client requests this node sent on to the student's home node.
    pub forwarded: AtomicU64,
    /// Section commands this node routed (local or remote).
    pub section_calls: AtomicU64,
    /// Section commands that took the internal hop to another node.
    pub section_hops: AtomicU64,
    /// Hops resent after a stale map, a lost connection or a move.
    pub section_retries: AtomicU64,
    /// Times this node found itself declared dead and rejoined.
    pub rejoins: AtomicU64,
    /// Handoffs this node completed as the old owner (shards).
    pub shards_handed_over: AtomicU64,
    /// Moves this node recorded (as coordinator or for an operator).
    pub moves_started: AtomicU64,
    /// Moves this node carried out as the old owner.
    pub moves_finished: AtomicU64,
    /// Moves that failed here (not quiet in time, target gone, owner unreachable).
    pub moves_failed: AtomicU64,
    /// Requests held at a moving shard's gates on this node.
    pub held_requests: AtomicU64,
    /// How long the moves this node carried out took.
    pub move_seconds: Histogram,
}

impl Default for ClusterStats {
    fn default() -> Self {
        Self {
            forwarded: AtomicU64::default(),
            section_calls: AtomicU64::default(),
            section_hops: AtomicU64::default(),
            section_retries: AtomicU64::default(),
            rejoins: AtomicU64::default(),
            shards_handed_over: AtomicU64::default(),
            moves_started: AtomicU64::default(),
            moves_finished: AtomicU64::default(),
            moves_failed: AtomicU64::default(),
            held_requests: AtomicU64::default(),
            move_seconds: crate::metrics::move_histogram(),
        }
    }
}

/// This node in the cluster (see module docs).
pub struct ClusterNode {
    /// Stable id.
    pub id: Arc<str>,
    incarnation: Mutex<Uuid>,
    /// The URL peers reach this node at.
    pub advertise: String,
    pub(super) pool: PgPool,
    /// The heartbeat's and the coordinator's own connections (`store::membership_pool`).
    pub(super) lease_pool: PgPool,
    pub(super) settings: ClusterSettings,
    map: watch::Sender<Arc<ShardMap>>,
    /// Per-shard admission (handoffs quiet shards through it).
    pub gates: Arc<ShardGates>,
    /// The shards this node is handing off now: one handoff of a shard at a time.
    pub(super) handoffs: super::handoff::HandoffClaims,
    pub(super) registry: Arc<SectionRegistry>,
    /// The internal client.
    pub peers: Peers,
    rules: OnceLock<Arc<dyn RuleCaches>>,
    /// Lease held and map loaded.
    ready: AtomicBool,
    /// Whether this node holds the coordinator's lease.
    pub(super) leading: AtomicBool,
    /// Wakes the coordinator early (the map changed).
    pub(super) coordinator_wake: Notify,
    /// Figures.
    pub stats: ClusterStats,
    /// The database's clock, which every time-based rule is judged by.
    pub clock: DatabaseClock,
    /// When the lease was last renewed (a node past its lease decides nothing).
    lease_clock: LeaseClock,
    /// Set while this node fences itself for a lapsed lease (its actors were stopped).
    self_fenced: AtomicBool,
    /// Why this node stopped for good, if it did (the process shuts down).
    fault: watch::Sender<Option<NodeFault>>,
    /// Client requests answered, for the load report (the HTTP layer records them).
    pub requests: Arc<RequestFigures>,
    /// The request figures at the last heartbeat, for rates over the interval.
    last_requests: Mutex<RequestSnapshot>,
    /// The relay (broker link) and the Redis mirror, whose health the load report
    /// carries (set once at start; they are built after the node).
    health: OnceLock<(Arc<RelayStats>, Option<Arc<SeatMirror>>)>,
    /// Calls per section at the last heartbeat, for rates.
    last_loads: Mutex<(Instant, HashMap<SectionId, u64>)>,
    /// The last load report.
    last_report: Mutex<LoadReport>,
    /// When the map was last read (to coalesce the refreshes of retrying callers).
    refreshed_at: Mutex<Instant>,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
}

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Another live process holds this node id (its lease did not lapse in time).
    #[error(
        "another process holds node id {id}: its lease stayed live for the {waited_ms} ms \
         this process waited; stop that process first, or give this one another \
         REGISTRAR_NODE_ID"
    )]
    IdInUse {
        /// The node id.
        id: String,
        /// How long this process waited for the lease to lapse.
        waited_ms: u64,
    },
    /// The configured shard count is not the cluster's.
    #[error(
        "this cluster was created with {fixed} shards but this node is configured with \
         {configured}; the shard count never changes (set REGISTRAR_SHARDS={fixed})"
    )]
    ShardCount {
        /// The cluster's.
        fixed: u32,
        /// This node's setting.
        configured: u32,
    },
}

/// Why a running node stopped serving for good.
#[derive(Clone, Debug, thiserror::Error)]
pub enum NodeFault {
    /// Another live process registered under this node's id.
    #[error(
        "another process took over node id {id} (incarnation {incarnation}) while this one \
         ran; this process stops serving and exits: run one process per REGISTRAR_NODE_ID"
    )]
    Replaced {
        /// The node id.
        id: String,
        /// The other process's incarnation.
        incarnation: Uuid,
    },
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
        let lease = Duration::from_millis(settings.lease_ms.max(1));
        Arc::new(Self {
            id: Arc::from(settings.node_id.as_str()),
            incarnation: Mutex::new(Uuid::new_v4()),
            advertise,
            pool,
            lease_pool,
            gates: ShardGates::new(settings.shards.max(1)),
            handoffs: Default::default(),
            settings,
            map: watch::Sender::new(Arc::default()),
            registry,
            peers,
            rules: OnceLock::new(),
            ready: AtomicBool::new(false),
            leading: AtomicBool::new(false),
            coordinator_wake: Notify::new(),
            stats: ClusterStats::default(),
            clock: DatabaseClock::default(),
            lease_clock: LeaseClock::new(lease),
            self_fenced: AtomicBool::new(false),
            fault: watch::Sender::new(None),
            requests: Arc::default(),
            last_requests: Mutex::default(),
            health: OnceLock::new(),
            last_loads: Mutex::new((Instant::now(), HashMap::new())),
            refreshed_at: Mutex::new(Instant::now()),
            last_report: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// Connect the rule caches the node keeps right (once, at start).
    pub fn set_rule_caches(&self, caches: Arc<dyn RuleCaches>) {
        let _ = self.rules.set(caches);
    }

    /// Connect the relay and the mirror whose health the load report carries (once, at start).
    pub fn set_health_sources(&self, relay: Arc<RelayStats>, mirror: Option<Arc<SeatMirror>>) {
        let _ = self.health.set((relay, mirror));
    }

    /// Close the membership's own connections (at shutdown, after leaving).
    pub async fn close_pools(&self) {
        self.lease_pool.close().await;
    }

    /// The current incarnation.
    pub fn incarnation(&self) -> Uuid {
        *self.incarnation.lock().expect("incarnation lock")
    }

    /// The shard count.
    pub fn shards(&self) -> u32 {
        self.settings.shards.max(1)
    }

    /// The lease time.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.settings.lease_ms.max(1))
    }

    /// The heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.settings.heartbeat_ms.max(1))
    }

    /// How long one handoff may take.
    pub fn handoff_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.handoff_timeout_ms.max(1))
    }

    /// The map as last read.
    pub fn map(&self) -> Arc<ShardMap> {
        self.map.borrow().clone()
    }

    /// A receiver that sees every new map.
    pub fn watch_map(&self) -> watch::Receiver<Arc<ShardMap>> {
        self.map.subscribe()
    }

    /// Lease held (and renewed within the lease time) and map loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.holds_lease()
    }

    /// Whether this node may decide anything now: its lease was renewed within the lease
    /// time, by the monotonic clock, and no other process replaced it.
    pub fn holds_lease(&self) -> bool {
        self.lease_clock.holds() && self.fault.borrow().is_none()
    }

    /// Why this node stopped for good, if it did.
    pub fn fault(&self) -> Option<NodeFault> {
        self.fault.borrow().clone()
    }

    /// Resolves once this node stopped for good (never, normally).
    pub async fn stopped_for_good(&self) -> NodeFault {
        let mut fault = self.fault.subscribe();
        let found = fault
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|f| f.clone());
        match found {
            Some(f) => f,
            // The node is gone: nothing will ever be reported.
            None => std::future::pending().await,
        }
    }

    /// Whether this node coordinates now.
    pub fn is_coordinator(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }

    /// The shard of a section or a student.
    pub fn shard_of(&self, id: Uuid) -> u32 {
        shard_of(id, self.shards())
    }

    /// Join: create the cluster's shard rows if this is its first node, register a fresh
    /// incarnation, read the map and become `active`. The first node of an empty cluster
    /// takes every shard at once (it becomes the coordinator).
    pub async fn join(self: &Arc<Self>) -> Result<(), JoinError> {
        let fixed = rows::ensure_cluster(&self.pool, self.shards()).await?;
        if fixed != self.shards() {
            return Err(JoinError::ShardCount {
                fixed,
                configured: self.shards(),
            });
        }
        self.measure_clock().await?;
        let incarnation = self.incarnation();
        // A process killed a moment ago still holds its lease: wait for it to lapse
        // (about a lease), but not for a process that is alive and renewing it.
        let started = Instant::now();
        let patience = self.lease() + self.heartbeat() * 2;
        let mut told = false;
        loop {
            let sent = Instant::now();
            if rows::register(
                &self.pool,
                &self.id,
                incarnation,
                &self.advertise,
                self.settings.lease_ms,
            )
            .await?
            {
                self.lease_clock.renewed(sent);
                break;
            }
            if started.elapsed() >= patience {
                return Err(JoinError::IdInUse {
                    id: self.id.to_string(),
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            if !told {
                told = true;
                // Routine after a crash and a quick restart; the error comes if it lasts.
                tracing::info!(node = %self.id, "node id held by a live lease; waiting for it to lapse");
            }
            tokio::time::sleep(self.heartbeat()).await;
        }
        rows::set_state(&self.pool, &self.id, incarnation, &["joining"], "active").await?;
        self.refresh().await?;
        self.ready.store(true, Ordering::Release);
        // A fresh cluster: lead and assign now, so the node serves from its first request.
        super::coordinator::step(self).await?;
        self.refresh().await?;
        tracing::info!(node = %self.id, %incarnation, shards_owned = self.map().owned_by(&self.id), "joined the cluster");
        Ok(())
    }

    /// Read the map again unless it was read in the last few milliseconds (callers
    /// retrying after a stale map share one read).
    pub async fn refresh_soon(&self) -> Result<(), DbError> {
        let asked = Instant::now();
        let _one = self.refreshing.lock().await;
        let recent = asked.checked_sub(REFRESH_COALESCE).unwrap_or(asked);
        if *self.refreshed_at.lock().expect("refresh lock") >= recent {
            return Ok(());
        }
        self.read_map().await
    }

    /// Read the map again and act on what changed for this node.
    pub async fn refresh(&self) -> Result<(), DbError> {
        let _one = self.refreshing.lock().await;
        self.read_map().await
    }

    async fn read_map(&self) -> Result<(), DbError> {
        *self.refreshed_at.lock().expect("refresh lock") = Instant::now();
        let (nodes, shards) = tokio::try_join!(rows::nodes(&self.pool), rows::shards(&self.pool))?;
        let new = Arc::new(ShardMap::from_rows(nodes, shards));
        let old = self.map.send_replace(new.clone());
        let changed = new.changed_for(&old, &self.id);
        if !changed.is_empty() && old.loaded {
            self.on_changed(&old, &new, &changed).await;
        }
        Ok(())
    }

    async fn on_changed(&self, old: &ShardMap, new: &ShardMap, changed: &[u32]) {
        let set: HashSet<u32> = changed.iter().copied().collect();
        let lost: HashSet<u32> = changed
            .iter()
            .copied()
            .filter(|s| {
                old.owner(*s).is_some_and(|o| *o == self.id) && new.owner(*s) != old.owner(*s)
            })
            .collect();
        if let Some(rules) = self.rules.get() {
            rules.forget_shards(&set, self.shards());
        }
        if !lost.is_empty() {
            tracing::info!(node = %self.id, shards = lost.len(), "shards left this node; stopping their actors");
            let total = self.shards();
            self.registry
                .stop_where(|section| lost.contains(&shard_of(section.0, total)))
                .await;
        }
    }

    /// Read the database's clock and record its offset from this node's.
    async fn measure_clock(&self) -> Result<(), DbError> {
        let sent = chrono::Utc::now();
        let database = rows::database_time(&self.lease_pool).await?;
        self.clock.record(sent, database, chrono::Utc::now());
        Ok(())
    }

    /// Renew the lease and report the load (and measure the database's clock); rejoin as
    /// a new member if this incarnation was declared dead, stop for good if another live
    /// process replaced it.
    async fn beat(&self) -> Result<(), DbError> {
        self.measure_clock().await?;
        let load = self.load_report();
        let sent = Instant::now();
        let state = rows::heartbeat(&self.lease_pool, &self.id, self.incarnation(), &load).await?;
        match state.as_deref() {
            None => {
                let lease = self.settings.lease_ms;
                match rows::holder(&self.lease_pool, &self.id, lease).await? {
                    Some((other, true)) if other != self.incarnation() => {
                        self.replaced(other).await
                    }
                    _ => self.rejoin().await?,
                }
            }
            // Drained by an operator: out of the cluster until restarted; it still
            // forwards what reaches it, but is not ready.
            Some("left") => {
                self.lease_clock.renewed(sent);
                self.ready.store(false, Ordering::Release);
            }
            Some(_) => {
                self.lease_clock.renewed(sent);
                self.end_self_fence();
            }
        }
        Ok(())
    }

    /// This incarnation was declared dead (its lease ran out): everything it owned may
    /// already be decided elsewhere. Stop every actor, forget every cached rule input, and
    /// join again under a new incarnation (unless another live process took the id
    /// meanwhile: then stop for good).
    async fn rejoin(&self) -> Result<(), DbError> {
        self.ready.store(false, Ordering::Release);
        self.stats.rejoins.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(node = %self.id, "this node was declared dead (lease expired); stopping its actors and rejoining");
        self.registry.stop_all().await;
        self.forget_all_rules();
        let incarnation = Uuid::new_v4();
        let sent = Instant::now();
        let lease = self.settings.lease_ms;
        if !rows::register(&self.pool, &self.id, incarnation, &self.advertise, lease).await? {
            if let Some((other, _)) = rows::holder(&self.pool, &self.id, lease).await? {
                self.replaced(other).await;
            }
            return Ok(());
        }
        *self.incarnation.lock().expect("incarnation lock") = incarnation;
        self.lease_clock.renewed(sent);
        self.end_self_fence();
        rows::set_state(&self.pool, &self.id, incarnation, &["joining"], "active").await?;
        self.refresh().await?;
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Another live process registered under this id: stop serving and report it (the
    /// process shuts down). Rejoining would only fence that process in turn, forever.
    async fn replaced(&self, other: Uuid) {
        self.ready.store(false, Ordering::Release);
        let fault = NodeFault::Replaced {
            id: self.id.to_string(),
            incarnation: other,
        };
        tracing::error!(node = %self.id, incarnation = %self.incarnation(), error = %fault, "stopping");
        self.fault.send_replace(Some(fault));
        self.registry.stop_all().await;
        self.forget_all_rules();
    }

    /// The lease could not be renewed for longer than the lease: this node may have been
    /// declared dead and its shards given to others. Decide nothing (the router refuses
    /// while the lease does not hold), stop every actor and forget every cached rule input.
    async fn self_fence(&self) {
        if self.lease_clock.holds() || self.self_fenced.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(node = %self.id, lease_ms = self.settings.lease_ms, "could not renew the lease in time; serving nothing until a heartbeat succeeds");
        self.registry.stop_all().await;
        self.forget_all_rules();
    }

    /// A heartbeat succeeded again after a self-fence.
    fn end_self_fence(&self) {
        if self.self_fenced.swap(false, Ordering::AcqRel) {
            tracing::info!(node = %self.id, "lease renewed again; serving");
            self.forget_all_rules();
        }
    }

    /// Forget every cached rule input and window.
    fn forget_all_rules(&self) {
        if let Some(rules) = self.rules.get() {
            let all: HashSet<u32> = (0..self.shards()).collect();
            rules.forget_shards(&all, self.shards());
            rules.forget_windows();
        }
    }

    /// The load figures since the last report.
    fn load_report(&self) -> LoadReport {
        let loads = self.registry.section_loads();
        let mut last = self.last_loads.lock().expect("load lock");
        let now = Instant::now();
        let secs = now.duration_since(last.0).as_secs_f64().max(0.001);
        let mut rates: Vec<(SectionId, f64, usize)> = loads
            .iter()
            .map(|l| {
                let before = last.1.get(&l.section).copied().unwrap_or(0);
                let delta = l.calls.saturating_sub(before.min(l.calls));
                (l.section, delta as f64 / secs, l.in_flight)
            })
            .collect();
        *last = (now, loads.iter().map(|l| (l.section, l.calls)).collect());
        drop(last);
        // `+ 0.0`: an empty f64 sum is -0.0, which the console would print as such.
        let total: f64 = rates.iter().map(|r| r.1).sum::<f64>() + 0.0;
        let mut by_shard: HashMap<u32, f64> = HashMap::new();
        for (section, rate, _) in &rates {
            *by_shard.entry(self.shard_of(section.0)).or_default() += rate;
        }
        let shard_load: serde_json::Map<String, serde_json::Value> = by_shard
            .into_iter()
            .filter(|(_, rate)| *rate > 0.0)
            .map(|(shard, rate)| (shard.to_string(), json!((rate * 10.0).round() / 10.0)))
            .collect();
        rates.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.2.cmp(&a.2)));
        let hot: Vec<serde_json::Value> = rates
            .iter()
            .filter(|r| r.1 > 0.0 || r.2 > 0)
            .take(HOT_SECTIONS_REPORTED)
            .map(|(section, rate, in_flight)| {
                json!({
                    "section_id": section.0,
                    "shard": self.shard_of(section.0),
                    "node_id": &*self.id,
                    "decisions_per_s": (rate * 10.0).round() / 10.0,
                    "in_flight": in_flight,
                })
            })
            .collect();
        let requests = self.requests.snapshot();
        let before = std::mem::replace(
            &mut *self.last_requests.lock().expect("requests lock"),
            requests.clone(),
        );
        let per_s =
            |now: u64, then: u64| (now.saturating_sub(then) as f64 / secs * 10.0).round() / 10.0;
        let (broker_connected, redis) = match self.health.get() {
            Some((relay, mirror)) => (
                relay.connected.load(Ordering::Relaxed),
                match mirror {
                    None => "off",
                    Some(m) if m.is_healthy() => "ok",
                    Some(_) => "degraded",
                },
            ),
            None => (false, "off"),
        };
        let report = LoadReport {
            decisions_per_s: (total * 10.0).round() / 10.0,
            in_flight: self.registry.in_flight() as i32,
            hot_sections: serde_json::Value::Array(hot),
            shard_load: serde_json::Value::Object(shard_load),
            requests_per_s: per_s(requests.answered, before.answered),
            p99_ms: requests
                .p99_ms_since(&before)
                .map(|ms| (ms * 100.0).round() / 100.0),
            overloaded_per_s: per_s(requests.overloaded, before.overloaded),
            broker_connected,
            redis: redis.to_owned(),
        };
        *self.last_report.lock().expect("report lock") = report.clone();
        report
    }

    /// Decisions per second at the last heartbeat.
    pub fn last_rate(&self) -> f64 {
        self.last_report
            .lock()
            .expect("report lock")
            .decisions_per_s
    }

    /// Decisions per second by shard at the last heartbeat, busiest first.
    pub fn shard_loads(&self) -> Vec<(u32, f64)> {
        let report = self.last_report.lock().expect("report lock");
        let mut loads: Vec<(u32, f64)> = match &report.shard_load {
            serde_json::Value::Object(m) => m
                .iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_f64()?)))
                .collect(),
            _ => Vec::new(),
        };
        loads.sort_by(|a, b| b.1.total_cmp(&a.1));
        loads
    }

    /// Renew the lease and refresh the map every heartbeat and whenever the map changes;
    /// apply rule-input notifications. Ends at `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut tick = tokio::time::interval(self.heartbeat());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listener: Option<PgListener> = None;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            if listener.is_none() {
                listener = self.listen().await;
            }
            let notified = async {
                match listener.as_mut() {
                    Some(l) => l.try_recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.recv() => return,
                _ = tick.tick() => {
                    // Bounded: a heartbeat that hangs is a heartbeat that failed.
                    let result = tokio::time::timeout(self.lease(), async {
                        self.beat().await?;
                        self.refresh().await
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
                            self.self_fence().await;
                            let pause = backoff.next_delay().min(self.heartbeat() * 2);
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
                message = notified => match message {
                    Ok(Some(n)) => self.on_notification(n.payload()).await,
                    // The connection dropped (notifications in between are lost): reconnect
                    // and reload everything.
                    Ok(None) | Err(_) => {
                        listener = None;
                        let _ = self.refresh().await;
                    }
                },
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(CHANNEL).await.ok()?;
        // Whatever changed while not listening: the map is read again, and the rule
        // inputs, whose notifications may have been lost, are forgotten.
        self.forget_all_rules();
        let _ = self.refresh().await;
        Some(listener)
    }

    async fn on_notification(&self, payload: &str) {
        match payload {
            "map" => {
                if let Err(e) = self.refresh().await {
                    tracing::warn!(error = %e, "map refresh failed");
                }
                self.coordinator_wake.notify_one();
            }
            "windows" => {
                if let Some(rules) = self.rules.get() {
                    rules.forget_windows();
                }
            }
            other => {
                let student = other.strip_prefix("student:").and_then(|s| s.parse().ok());
                if let (Some(id), Some(rules)) = (student, self.rules.get()) {
                    rules.forget_student(id);
                }
            }
        }
    }

    /// Stop taking part: hand every shard to the other active nodes (the coordinator
    /// moves them while this node is `draining`), at most until `deadline`; then give up
    /// what is left (the coordinator reassigns it at once) and leave. Called while the
    /// node still serves, so requests held by the handoffs are answered.
    pub async fn drain(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let incarnation = self.incarnation();
        let draining =
            rows::set_state(&self.pool, &self.id, incarnation, &["active"], "draining").await;
        if let Err(e) = draining {
            tracing::warn!(error = %e, "could not start draining");
        }
        let mut maps = self.watch_map();
        loop {
            let map = self.map();
            let lease = self.settings.lease_ms;
            let others = map
                .members
                .iter()
                .any(|(id, m)| *id != self.id && m.is_active(lease));
            if map.owned_by(&self.id) == 0 || !others {
                break;
            }
            let wait = tokio::time::timeout_at(
                deadline.min(Instant::now() + self.heartbeat()),
                maps.changed(),
            );
            if wait.await.is_err() && Instant::now() >= deadline {
                tracing::warn!(node = %self.id, left = map.owned_by(&self.id), "drain timed out; leaving with shards unmoved");
                break;
            }
        }
    }

    /// Leave the cluster for good (after the last request and the last actor stopped):
    /// whatever shards are left go unowned, for the coordinator to reassign at once.
    pub async fn leave(&self) {
        self.ready.store(false, Ordering::Release);
        match rows::leave(&self.pool, &self.id, self.incarnation()).await {
            Ok(released) => tracing::info!(node = %self.id, released, "left the cluster"),
            Err(e) => {
                tracing::warn!(node = %self.id, error = %e, "could not leave the cluster; its lease will expire")
            }
        }
    }
}

/// Refreshes asked for within this long of the last one share it.
const REFRESH_COALESCE: Duration = Duration::from_millis(20);

/// How many of its hottest sections a node reports.
const HOT_SECTIONS_REPORTED: usize = 20;
