//! This node's membership: it registers a fresh incarnation, renews its lease with every
//! heartbeat, and rejoins as a new member when it finds it was declared dead (a pause or a
//! partition longer than its lease). It also leaves: by draining (its shards handed to the
//! others first) and for good.
//!
//! One id, one live process: a process whose id's current incarnation still holds a live
//! lease is refused at join (it waits about a lease for a killed predecessor's lease to
//! lapse, then gives up), and a running node that finds its incarnation replaced by another
//! live process stops for good ([`NodeFault::Replaced`]) instead of rejoining, which would
//! fence the other one in turn. A node that could not renew its lease for longer than the
//! lease (by the monotonic clock, [`LeaseClock`]) fences itself: it serves nothing as home
//! or owner and stops its actors until a heartbeat succeeds again.

use super::clock::{DatabaseClock, LeaseClock};
use super::map_cache::MapCache;
use super::rules::RuleCacheLink;
use super::stats::ClusterStats;
use crate::config::ClusterSettings;
use crate::store::DbError;
use crate::store::cluster::{self as rows, LoadReport, NodeState};
use registrar_actors::SectionRegistry;
use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

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

/// This node's membership (see module docs).
pub struct Membership {
    /// Stable id.
    id: Arc<str>,
    /// The current process of this id in the cluster; a new one at every rejoin.
    incarnation: Mutex<Uuid>,
    /// The URL peers reach this node at.
    advertise: String,
    pool: PgPool,
    /// The heartbeat's and the coordinator's own connections (`store::membership_pool`),
    /// so a pool full of requests cannot starve the lease.
    lease_pool: PgPool,
    settings: ClusterSettings,
    /// Read again after every change of this node's membership.
    map: Arc<MapCache>,
    /// Every actor is stopped when the lease may have been lost.
    registry: Arc<SectionRegistry>,
    /// Every rule input is forgotten when the lease may have been lost.
    rules: Arc<RuleCacheLink>,
    stats: Arc<ClusterStats>,
    /// The database's clock, measured at join and at every heartbeat.
    clock: Arc<DatabaseClock>,
    /// When the lease was last renewed (a node past its lease decides nothing).
    lease_clock: LeaseClock,
    /// Lease held and map loaded.
    ready: AtomicBool,
    /// Set while this node fences itself for a lapsed lease (its actors were stopped).
    self_fenced: AtomicBool,
    /// Why this node stopped for good, if it did (the process shuts down).
    fault: watch::Sender<Option<NodeFault>>,
}

impl Membership {
    /// The membership of a node that has not joined yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: PgPool,
        lease_pool: PgPool,
        settings: ClusterSettings,
        advertise: String,
        map: Arc<MapCache>,
        registry: Arc<SectionRegistry>,
        rules: Arc<RuleCacheLink>,
        stats: Arc<ClusterStats>,
        clock: Arc<DatabaseClock>,
    ) -> Self {
        let lease = Duration::from_millis(settings.lease_ms.max(1));
        Self {
            id: Arc::from(settings.node_id.as_str()),
            incarnation: Mutex::new(Uuid::new_v4()),
            advertise,
            pool,
            lease_pool,
            settings,
            map,
            registry,
            rules,
            stats,
            clock,
            lease_clock: LeaseClock::new(lease),
            ready: AtomicBool::new(false),
            self_fenced: AtomicBool::new(false),
            fault: watch::Sender::new(None),
        }
    }

    /// Stable id.
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// The current incarnation.
    pub fn incarnation(&self) -> Uuid {
        *self.incarnation.lock().expect("incarnation lock")
    }

    /// The node's pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The membership's own connections.
    pub fn lease_pool(&self) -> &PgPool {
        &self.lease_pool
    }

    /// The cluster settings of this node.
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// The shard count.
    pub fn shards(&self) -> u32 {
        self.settings.shards.max(1)
    }

    /// The lease time in milliseconds, as the database judges leases.
    pub fn lease_ms(&self) -> u64 {
        self.settings.lease_ms
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

    /// Join: create the cluster's shard rows if this is its first node, register a fresh
    /// incarnation, read the map and become `active` (and ready).
    pub async fn join(&self) -> Result<(), JoinError> {
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
        Ok(self.activate(incarnation).await?)
    }

    /// Turn this incarnation from joining to active, read the map, and serve.
    async fn activate(&self, incarnation: Uuid) -> Result<(), DbError> {
        let joining = [NodeState::Joining];
        rows::set_state(
            &self.pool,
            &self.id,
            incarnation,
            &joining,
            NodeState::Active,
        )
        .await?;
        self.map.refresh().await?;
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Read the database's clock and record its offset from this node's.
    async fn measure_clock(&self) -> Result<(), DbError> {
        let sent = chrono::Utc::now();
        let database = rows::database_time(&self.lease_pool).await?;
        self.clock.record(sent, database, chrono::Utc::now());
        Ok(())
    }

    /// Renew the lease and report `load` (and measure the database's clock); rejoin as a
    /// new member if this incarnation was declared dead, stop for good if another live
    /// process replaced it.
    pub async fn beat(&self, load: impl FnOnce() -> LoadReport) -> Result<(), DbError> {
        self.measure_clock().await?;
        let load = load();
        let sent = Instant::now();
        let state = rows::heartbeat(&self.lease_pool, &self.id, self.incarnation(), &load).await?;
        match state {
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
            Some(NodeState::Left) => {
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
        self.rules.forget_all(self.shards());
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
        self.activate(incarnation).await
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
        self.rules.forget_all(self.shards());
    }

    /// The lease could not be renewed for longer than the lease: this node may have been
    /// declared dead and its shards given to others. Decide nothing (the router refuses
    /// while the lease does not hold), stop every actor and forget every cached rule input.
    pub async fn self_fence(&self) {
        if self.lease_clock.holds() || self.self_fenced.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(node = %self.id, lease_ms = self.settings.lease_ms, "could not renew the lease in time; serving nothing until a heartbeat succeeds");
        self.registry.stop_all().await;
        self.rules.forget_all(self.shards());
    }

    /// A heartbeat succeeded again after a self-fence.
    fn end_self_fence(&self) {
        if self.self_fenced.swap(false, Ordering::AcqRel) {
            tracing::info!(node = %self.id, "lease renewed again; serving");
            self.rules.forget_all(self.shards());
        }
    }

    /// Stop taking part: hand every shard to the other active nodes (the coordinator
    /// moves them while this node is `draining`), at most until `deadline`; then give up
    /// what is left (the coordinator reassigns it at once) and leave. Called while the
    /// node still serves, so requests held by the handoffs are answered.
    pub async fn drain(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let incarnation = self.incarnation();
        let active = [NodeState::Active];
        let draining = rows::set_state(
            &self.pool,
            &self.id,
            incarnation,
            &active,
            NodeState::Draining,
        )
        .await;
        if let Err(e) = draining {
            tracing::warn!(error = %e, "could not start draining");
        }
        let mut maps = self.map.watch();
        loop {
            let map = self.map.map();
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

    /// Close the membership's own connections (at shutdown, after leaving).
    pub async fn close_pools(&self) {
        self.lease_pool.close().await;
    }
}
