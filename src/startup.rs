//! Building and running one registrar node: [`Application::build`] connects to PostgreSQL,
//! binds the listener (port 0 works, tests rely on it), wires the state and joins the
//! cluster (the first node of a new cluster takes every shard);
//! [`Application::run_until_stopped`] serves until the shutdown signal, then drains (hands
//! its shards to the other nodes while still serving), lets in-flight requests finish
//! (their batches commit), stops every section actor and leaves the cluster.
//!
//! It is the top of the crate: the one place that knows every part, so it assembles what
//! spans them, the commit fan-out (`fanout`) and the `/metrics` collector, and hands
//! each part the handles it needs instead of letting parts import one another.

mod fanout;

use crate::cluster::load::{DependencyHealth, HealthProbe};
use crate::cluster::node::{ClusterNode, JoinError, RuleCaches};
use crate::cluster::peer::{Peers, internal_key};
use crate::cluster::router::SectionRouter;
use crate::config::Settings;
use crate::events::consumers::{self, ConsumerConfig, ConsumerKind};
use crate::events::relay::{BacklogGauge, OutboxRelay, RelayStats};
use crate::http::figures::NodeFigures;
use crate::http::{self, AppState};
use crate::metrics::{self, CommitStats, Metrics};
use crate::redis::{MirrorError, SeatMirror, SeatSubscriber};
use crate::service::auth::{TokenKeys, WeakSecret, check_secret, generated_secret};
use crate::service::feed::SeatFeed;
use crate::service::login_guard::LoginGuard;
use crate::service::registration::RegistrationService;
use crate::service::retention::Pruner;
use crate::service::swap::SwapFinisher;
use crate::shutdown::ShutdownTrigger;
use crate::store::cluster::MirrorHealth;
use crate::store::{
    self, NodePools,
    sections::{CommitterConfig, PgSectionStore},
};
use crate::supervise::{TaskHealth, supervise};
use fanout::CommitFanOut;
use registrar_actors::SectionRegistry;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// PostgreSQL unreachable or refusing.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The listen address could not be bound.
    #[error("listen on {0}: {1}")]
    Bind(String, std::io::Error),
    /// The Redis URL is unusable.
    #[error("redis mirror: {0}")]
    Mirror(#[from] MirrorError),
    /// The node could not join the cluster.
    #[error("cluster: {0}")]
    Cluster(#[from] JoinError),
    /// The token secret is missing or weak (and development mode is off).
    #[error(
        "{0}: set REGISTRAR_JWT_SECRET to at least 32 random bytes, the same on every node \
         (e.g. `openssl rand -hex 32`), or REGISTRAR_DEV_MODE=true for a throwaway development secret"
    )]
    JwtSecret(WeakSecret),
}

/// Fail unless the configured token secret may be used (always, in development mode);
/// cheap and silent, for checking a configuration before doing anything else.
pub fn check_signing_secret(settings: &Settings) -> Result<(), StartupError> {
    if settings.http.dev_mode {
        return Ok(());
    }
    check_secret(&settings.http.jwt_secret).map_err(StartupError::JwtSecret)
}

/// The secret that signs this node's tokens: the configured one if it is strong enough.
/// In development mode a weak one is used anyway and a missing one is generated for this
/// process, both with a warning; otherwise either stops the node.
pub fn signing_secret(settings: &Settings) -> Result<String, StartupError> {
    let configured = &settings.http.jwt_secret;
    match check_secret(configured) {
        Ok(()) => Ok(configured.clone()),
        Err(weak) if !settings.http.dev_mode => Err(StartupError::JwtSecret(weak)),
        Err(WeakSecret::Missing) => {
            tracing::warn!(
                "DEVELOPMENT MODE: REGISTRAR_JWT_SECRET is not set; using a random secret for \
                 this process only. Tokens die with it and no other node accepts them. \
                 Never run like this in production."
            );
            Ok(generated_secret())
        }
        Err(weak) => {
            tracing::warn!(
                "DEVELOPMENT MODE: {weak}; using it anyway. Anyone who knows it can forge \
                 tokens. Never run like this in production."
            );
            Ok(configured.clone())
        }
    }
}

/// A built node, ready to run.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    state: AppState,
    /// The committer's pool, closed at the end of [`Application::run_until_stopped`] with
    /// the others: a pool still referenced somewhere would keep its connections open.
    commits_pool: sqlx::PgPool,
}

impl Application {
    /// Connect, claim shards and bind. Does not migrate (`registrar migrate` or
    /// [`Application::migrate`] does).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // Refuse a bad secret before touching anything.
        check_signing_secret(&settings)?;
        let node = settings.cluster.node_id.as_str();
        let pools = store::connect_node_as(&settings.database, Some(node)).await?;
        Self::build_with_pools(settings, pools).await
    }

    /// Apply migrations on `settings.database.database_url`.
    pub async fn migrate(settings: &Settings) -> Result<(), StartupError> {
        let pool = store::connect(&settings.database.database_url, 2).await?;
        store::migrate(&pool).await?;
        pool.close().await;
        Ok(())
    }

    /// Like [`Application::build`] with existing pools.
    pub async fn build_with_pools(
        settings: Settings,
        pools: NodePools,
    ) -> Result<Self, StartupError> {
        let secret = signing_secret(&settings)?;
        let pool = pools.reads.clone();
        let commits_pool = pools.commits.clone();
        let listener = TcpListener::bind(&settings.http.listen)
            .await
            .map_err(|e| StartupError::Bind(settings.http.listen.clone(), e))?;
        let address = listener
            .local_addr()
            .map_err(|e| StartupError::Bind(settings.http.listen.clone(), e))?;
        let advertise = advertise_url(&settings.cluster.advertise_url, address);
        let mirror = if settings.mirror.mirror_enabled {
            Some(SeatMirror::new(
                &settings.mirror.redis_url,
                &settings.mirror.redis_prefix,
            )?)
        } else {
            None
        };
        let feed = Arc::new(SeatFeed::new(
            mirror.clone(),
            settings.http.sse_max_subscribers,
        ));
        let commits = Arc::new(CommitStats::default());
        let relay_wake = Arc::new(Notify::new());
        let (promotions, promoted) = tokio::sync::mpsc::unbounded_channel();
        let fan_out = Arc::new(CommitFanOut {
            commits: commits.clone(),
            feed: feed.clone(),
            mirror,
            relay_wake: relay_wake.clone(),
            promotions,
        });
        let tasks = Arc::new(TaskHealth::default());
        let store = Arc::new(PgSectionStore::with_committer(
            pools,
            settings.cluster.node_id.clone(),
            CommitterConfig {
                workers: settings.database.commit_workers,
                max_rows: settings.database.commit_max_rows,
                timeout: Duration::from_millis(settings.database.commit_timeout_ms.max(1)),
                own_thread: settings.database.commit_thread,
            },
            tasks.clone(),
        ));
        let committer = store.stats();
        let registry = Arc::new(SectionRegistry::new(
            store,
            fan_out,
            settings.sections.registry(),
        ));
        let cluster = ClusterNode::new(
            pool.clone(),
            store::membership_pool(&pool),
            settings.cluster.clone(),
            advertise,
            registry.clone(),
            Peers::new(
                internal_key(secret.as_bytes()),
                settings.cluster.transport == crate::config::Transport::Wire,
            ),
        );
        // Token lifetimes by the database's clock, like the rules: a node whose clock is
        // off must not refuse tokens the others accept, nor accept expired ones.
        let clock = cluster.clock.clone();
        let tokens = Arc::new(
            TokenKeys::new(secret.as_bytes(), settings.http.token_ttl_secs)
                .with_clock(Arc::new(move || clock.now().timestamp())),
        );
        let router = Arc::new(SectionRouter::new(cluster.clone(), registry));
        let registration = Arc::new(
            RegistrationService::new(pool.clone(), router)
                .with_decision_deadline(Duration::from_millis(
                    settings.sections.decision_deadline_ms.max(1),
                ))
                .with_promotions(promoted),
        );
        let section_views: Arc<dashmap::DashMap<uuid::Uuid, crate::resources::SectionView>> =
            Arc::default();
        cluster.set_rule_caches(Arc::new(NodeCaches {
            registration: registration.clone(),
            section_views: section_views.clone(),
        }));
        cluster.join().await?;
        let limiter = Arc::new(http::limit::RateLimiter::new(
            settings.http.rate_limit_per_sec,
            settings.http.rate_limit_burst,
        ));
        let relay = Arc::new(RelayStats {
            backlog: BacklogGauge::new(Duration::from_millis(settings.events.backlog_max_age_ms)),
            ..RelayStats::default()
        });
        cluster.set_health_probe(Arc::new(DependencyProbe {
            relay: relay.clone(),
            mirror: feed.mirror.clone(),
        }));
        let metrics = Arc::new(Metrics::new(metrics::Parts {
            decisions: registration.decisions().clone(),
            commits: committer.histograms.clone(),
            moves: cluster.stats.move_seconds.clone(),
            collector: Box::new(NodeFigures {
                commits: commits.clone(),
                feed: feed.clone(),
                registry: registration.registry().clone(),
                max_in_flight: settings.sections.node_max_in_flight.max(1),
                committer: committer.clone(),
                tasks: tasks.clone(),
                pool: pool.clone(),
                relay: relay.clone(),
                cluster: cluster.clone(),
                rule_loads: registration.cache().load_stats(),
            }),
        }));
        let login_guard = Arc::new(LoginGuard::new(&settings.http));
        let state = AppState::new(crate::http::Shared {
            browse_pool: store::browse_pool(&settings.database)?,
            pool,
            cluster,
            login_guard,
            settings: Arc::new(settings),
            tokens,
            registration,
            feed,
            commits,
            relay_wake,
            limiter,
            relay,
            committer,
            tasks,
            section_views,
            metrics,
        });
        Ok(Self {
            listener,
            address,
            state,
            commits_pool,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The shared state (tests inspect it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Start the cluster's tasks (membership, coordinator), which stop at `stop`.
    fn spawn_cluster(state: &AppState, stop: &ShutdownTrigger) -> Vec<tokio::task::JoinHandle<()>> {
        let (node, shutdown) = (state.cluster.clone(), stop.subscribe());
        let membership = supervise(
            "membership".into(),
            state.tasks.clone(),
            Some(stop.subscribe()),
            move || node.clone().run(shutdown.clone()),
        );
        let (coordinator, shutdown) = (state.cluster.coordinator().clone(), stop.subscribe());
        let coordinator = supervise(
            "coordinator".into(),
            state.tasks.clone(),
            Some(stop.subscribe()),
            move || coordinator.clone().run(shutdown.clone()),
        );
        vec![membership, coordinator]
    }

    /// Start the background tasks: outbox relay, mirror writer, seat channel subscriber,
    /// swap finisher, pruner, in-process consumers.
    fn spawn_background(
        state: &AppState,
        stop: &ShutdownTrigger,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let s = &state.settings;
        let mut tasks = Vec::new();
        if s.events.relay_enabled {
            let relay = OutboxRelay::new(
                state.pool.clone(),
                s.events.amqp_url.clone(),
                s.events.events_exchange.clone(),
                s.events.relay_batch,
                state.relay_wake.clone(),
                state.relay.clone(),
            );
            let shutdown = stop.subscribe();
            tasks.push(supervise(
                "relay".into(),
                state.tasks.clone(),
                Some(stop.subscribe()),
                move || relay.clone().run(shutdown.clone()),
            ));
        }
        if let Some(mirror) = &state.feed.mirror {
            let subscriber = SeatSubscriber::new(
                mirror.clone(),
                state.feed.clone(),
                state.feed.remote.clone(),
                state.pool.clone(),
            );
            let (mirror, pool, shutdown) = (mirror.clone(), state.pool.clone(), stop.subscribe());
            tasks.push(supervise(
                "mirror".into(),
                state.tasks.clone(),
                Some(stop.subscribe()),
                move || mirror.clone().run_writer(pool.clone(), shutdown.clone()),
            ));
            let shutdown = stop.subscribe();
            tasks.push(supervise(
                "seat-subscriber".into(),
                state.tasks.clone(),
                Some(stop.subscribe()),
                move || subscriber.clone().run(shutdown.clone()),
            ));
        }
        let finisher = SwapFinisher::new(
            state.registration.clone(),
            Duration::from_millis(s.sections.swap_finish_after_ms.max(1)),
        );
        let shutdown = stop.subscribe();
        tasks.push(supervise(
            "swap-finisher".into(),
            state.tasks.clone(),
            Some(stop.subscribe()),
            move || finisher.clone().run(shutdown.clone()),
        ));
        let carrier = state.registration.clone();
        let shutdown = stop.subscribe();
        tasks.push(supervise(
            "promotion-carrier".into(),
            state.tasks.clone(),
            Some(stop.subscribe()),
            move || carrier.clone().carry_out_promotions(shutdown.clone()),
        ));
        let pruner = Pruner::new(state.pool.clone(), s.retention.clone());
        let shutdown = stop.subscribe();
        tasks.push(supervise(
            "pruner".into(),
            state.tasks.clone(),
            Some(stop.subscribe()),
            move || pruner.clone().run(shutdown.clone()),
        ));
        if s.events.consumers_in_process {
            for kind in [ConsumerKind::Notify, ConsumerKind::Analytics] {
                let config = ConsumerConfig::of(kind, &s.events);
                let (pool, shutdown) = (state.pool.clone(), stop.subscribe());
                tasks.push(supervise(
                    format!("consumer-{}", kind.name()),
                    state.tasks.clone(),
                    Some(stop.subscribe()),
                    move || consumers::run(kind, pool.clone(), config.clone(), shutdown.clone()),
                ));
            }
        }
        tasks
    }

    /// Serve until `shutdown` resolves, then finish in-flight work and stop. Also stops,
    /// with an error, when the node stops for good
    /// ([`NodeFault`](crate::cluster::node::NodeFault): another process took
    /// its id): then it neither drains nor leaves, since the id is not its own any more.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let stop = ShutdownTrigger::new();
        let background = Self::spawn_background(&state, &stop);
        let cluster_stop = ShutdownTrigger::new();
        let cluster_tasks = Self::spawn_cluster(&state, &cluster_stop);
        let housekeeping = tokio::spawn({
            let state = state.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    state.limiter.prune();
                    state.login_guard.prune();
                    state.feed.prune();
                }
            }
        });
        tracing::info!(address = %self.address, node = %state.settings.cluster.node_id, "serving");
        let (feed, cluster) = (state.feed.clone(), state.cluster.clone());
        let drain_timeout = Duration::from_millis(state.settings.cluster.drain_timeout_ms);
        let shutdown = async move {
            tokio::select! {
                _ = shutdown => {}
                fault = cluster.stopped_for_good() => {
                    tracing::error!(error = %fault, "shutting down");
                }
            }
            // Hand the shards to the other nodes while still serving: requests held by the
            // handoffs, and peers' hops, are answered.
            if cluster.fault().is_none() {
                cluster.drain(drain_timeout).await;
            }
            // Live seat streams never end on their own; end them so shutdown can finish.
            feed.close();
        };
        // With the peer address of each connection: login limits failures per client.
        let app = http::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        housekeeping.abort();
        // Every HTTP request has been answered; a registration task that outlived its
        // request (its caller stopped waiting) may still be on its way to an actor, or
        // retrying a hop: give it the time a command may take (a failover and a commit).
        // Then the actors decide and commit what is queued in their mailboxes and stop.
        let patience = Duration::from_millis(state.settings.cluster.lease_ms) * 2
            + state.settings.sections_call_timeout();
        // Peers' calls over the wire are not HTTP requests: refuse new ones, answer those
        // under way, then close the connections.
        state.cluster.wire_sessions.close(patience).await;
        if !state.registration.settle(patience).await {
            tracing::warn!(
                "registration tasks still running at shutdown; their commands get no answer"
            );
        }
        state.registration.registry().stop_all().await;
        cluster_stop.fire();
        for task in cluster_tasks {
            let _ = task.await;
        }
        // What was not handed off goes to the others now, without waiting for the lease.
        let fault = state.cluster.fault();
        if fault.is_none() {
            state.cluster.leave().await;
        }
        stop.fire();
        for task in background {
            let _ = task.await;
        }
        // Closed explicitly: a task or a cache may still hold a clone of a pool, and its
        // idle connections would stay open until the process ends.
        tokio::join!(
            state.pool.close(),
            self.commits_pool.close(),
            state.cluster.close_pools()
        );
        tracing::info!("stopped");
        result?;
        fault.map_or(Ok(()), |f| Err(std::io::Error::other(f)))
    }
}

/// The URL peers reach this node at: the configured one, else the bound address (an
/// unspecified address read as loopback).
fn advertise_url(configured: &str, bound: SocketAddr) -> String {
    if !configured.is_empty() {
        return configured.trim_end_matches('/').to_string();
    }
    let mut address = bound;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{address}")
}

/// The health of the broker link and of the Redis mirror, which each heartbeat's load
/// report carries (`/readyz` reports the same two from the same sources).
struct DependencyProbe {
    relay: Arc<RelayStats>,
    mirror: Option<Arc<SeatMirror>>,
}

impl HealthProbe for DependencyProbe {
    fn health(&self) -> DependencyHealth {
        DependencyHealth {
            broker_connected: self.relay.connected.load(Ordering::Relaxed),
            redis: match &self.mirror {
                None => MirrorHealth::Off,
                Some(m) if m.is_healthy() => MirrorHealth::Ok,
                Some(_) => MirrorHealth::Degraded,
            },
        }
    }
}

/// What a node forgets when told (a [`crate::store::cluster::Notice`], a shard moved): the
/// registration service's rule caches, and the catalog answers of a changed section (an
/// admin's link change, an import's new meetings or restrictions, a course's new title).
struct NodeCaches {
    registration: Arc<RegistrationService>,
    section_views: Arc<dashmap::DashMap<uuid::Uuid, crate::resources::SectionView>>,
}

impl RuleCaches for NodeCaches {
    fn forget_shards(&self, shards: &std::collections::HashSet<u32>, total: u32) {
        self.registration.forget_shards(shards, total);
    }

    fn forget_student(&self, student: uuid::Uuid) {
        self.registration.forget_student(student);
    }

    fn forget_windows(&self) {
        self.registration.forget_windows();
    }

    fn forget_all_students(&self) {
        self.registration.forget_all_students();
    }

    fn forget_section(&self, section: uuid::Uuid) {
        self.registration.forget_section(section);
        self.section_views.remove(&section);
    }
}
