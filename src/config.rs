//! Typed configuration: defaults, then an optional TOML file, then `REGISTRAR_*`
//! environment variables (e.g. `REGISTRAR_DATABASE_URL`), each layer overriding the last.
//! Defaults point at the local services that `deploy/local/up.sh` starts.
//!
//! One struct per group of settings, each field with its reason and its default beside it;
//! the loading test at the end.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use registrar_actors::RegistryConfig;
use registrar_actors::section::SectionConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable (development).
    Pretty,
}

/// Every setting of a registrar node, grouped by what it concerns. The groups are
/// flattened: a setting's key is its field name alone, in the file and as an environment
/// variable (`REGISTRAR_DATABASE_URL`, `REGISTRAR_SHARDS`, ...).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The HTTP edge: listener, tokens, limits.
    #[serde(flatten)]
    pub http: HttpSettings,
    /// PostgreSQL and the node-wide committer.
    #[serde(flatten)]
    pub database: DatabaseSettings,
    /// This node's place in the cluster.
    #[serde(flatten)]
    pub cluster: ClusterSettings,
    /// Section actors: batching, admission control, timeouts.
    #[serde(flatten)]
    pub sections: SectionSettings,
    /// RabbitMQ: the outbox relay and the consumers.
    #[serde(flatten)]
    pub events: EventSettings,
    /// Redis: the seat-count mirror.
    #[serde(flatten)]
    pub mirror: MirrorSettings,
    /// How long the tables that grow with traffic keep their rows.
    #[serde(flatten)]
    pub retention: RetentionSettings,
    /// Logging.
    #[serde(flatten)]
    pub logging: LogSettings,
    /// Passwords of the accounts `registrar seed` creates.
    #[serde(flatten)]
    pub demo: DemoAccounts,
    /// The tokio runtime the binary runs on.
    #[serde(flatten)]
    pub runtime: RuntimeSettings,
}

/// The HTTP edge.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Address the HTTP server binds; port 0 picks a free port.
    pub listen: String,
    /// HMAC secret signing access tokens; every node of a cluster needs the same one.
    /// `serve` refuses to start when it is empty, shorter than 32 bytes or a value shipped
    /// in this repository, unless `dev_mode` is on.
    pub jwt_secret: String,
    /// Development mode: a missing or weak `jwt_secret` is accepted with a loud warning (a
    /// missing one is generated per process, so tokens die with it). Never in production.
    pub dev_mode: bool,
    /// Access token lifetime.
    pub token_ttl_secs: u64,
    /// Sustained requests per second per authenticated user on registration routes.
    pub rate_limit_per_sec: u32,
    /// Burst allowance on top of the sustained rate.
    pub rate_limit_burst: u32,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Most seat streams (SSE) open at once on this node; beyond it a new stream gets
    /// 503 `overloaded`. Streams need no login, so without a cap anyone could hold the
    /// node's memory and file descriptors open.
    pub sse_max_subscribers: usize,
    /// Directory of the built browser pages (`web/dist`, made by `npm run build` in `web/`),
    /// served at `/`, `/console` and `/docs`. Relative paths start at the working directory.
    pub web_dir: String,
    /// Longest an ordinary request may take before it is answered 503 `unavailable`
    /// (seat streams are exempt). Never below the section call timeout plus a margin
    /// (see [`Settings::request_timeout`]), so a registration call gets its own
    /// `decision_pending` first.
    pub request_timeout_ms: u64,
    /// Password hashes (argon2, ~19 MiB each) computed at once by logins; `0` means twice
    /// the cores. Bounds the memory a login flood can take.
    pub login_max_concurrent_hashes: usize,
    /// Logins that may wait for a hashing slot; beyond it, 503 `overloaded` at once.
    pub login_max_queued_hashes: usize,
    /// Failed logins allowed per username within `login_failure_window_secs`; `0` turns
    /// the limit off.
    pub login_max_failures_per_user: u32,
    /// Failed logins allowed per client address (the TCP peer: a proxy's address behind a
    /// proxy) within `login_failure_window_secs`; `0` turns the limit off.
    pub login_max_failures_per_address: u32,
    /// Window over which the failure allowances refill.
    pub login_failure_window_secs: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            jwt_secret: String::new(),
            token_ttl_secs: 3600,
            rate_limit_per_sec: 20,
            rate_limit_burst: 40,
            max_body_bytes: 16 * 1024,
            sse_max_subscribers: 10_000,
            web_dir: "web/dist".into(),
            request_timeout_ms: 30_000,
            dev_mode: false,
            login_max_concurrent_hashes: 0,
            login_max_queued_hashes: 128,
            login_max_failures_per_user: 10,
            login_max_failures_per_address: 300,
            login_failure_window_secs: 300,
        }
    }
}

/// PostgreSQL, the source of truth, and the node-wide committer that writes to it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// Connection URL.
    pub database_url: String,
    /// Connections per node. Fewer connections than clients is the point: on a 2-core box
    /// 8 beat 16 and 48 in `loadtest/flash-bench.sh` (less contention inside PostgreSQL);
    /// size it to a few times the database host's cores.
    pub db_pool_size: u32,
    /// Node-wide committer: transactions in flight at once (see `store::sections`).
    pub commit_workers: usize,
    /// Node-wide committer: most decisions merged into one transaction.
    pub commit_max_rows: usize,
    /// Node-wide committer: run its workers on a thread of their own, so the round trips of
    /// a commit never wait behind request handlers for a turn on the shared runtime. Faster
    /// commits make smaller groups: a hot section gains, a CPU-bound node pays more CPU per
    /// decision (see docs/operations.md), so it is off by default.
    pub commit_thread: bool,
    /// Connections of the committer's own pool, so reads (all of them when Redis is down)
    /// can never starve the commits.
    pub commit_pool_size: u32,
    /// Server-side limit of one statement; a hung query fails instead of stalling a
    /// commit worker.
    pub statement_timeout_ms: u64,
    /// Server-side limit of a transaction left idle (a client that died mid-transaction).
    pub idle_in_transaction_timeout_ms: u64,
    /// How long a query waits for a free connection before answering 503 `unavailable`.
    pub acquire_timeout_ms: u64,
    /// Client-side limit of one group commit, BEGIN to COMMIT (a lost connection that
    /// never answers); its batches fail and their actors reload.
    pub commit_timeout_ms: u64,
    /// A read replica for browsing only (the term list and section lists): a standby behind
    /// HAProxy's replica port or CloudNativePG's `-ro` Service. Empty: every read goes to
    /// the primary. Those lists (their seat counts included) may be as old as the
    /// replica's lag; no decision, rule check, section view or seat stream ever reads it,
    /// and browsing falls back to the primary when it is down.
    pub database_read_url: String,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            database_url: "postgres://registrar:registrar@127.0.0.1:5432/registrar".into(),
            db_pool_size: 8,
            commit_workers: 2,
            commit_max_rows: 4096,
            commit_thread: false,
            commit_pool_size: 4,
            statement_timeout_ms: 5_000,
            idle_in_transaction_timeout_ms: 10_000,
            acquire_timeout_ms: 5_000,
            commit_timeout_ms: 15_000,
            database_read_url: String::new(),
        }
    }
}

/// This node's identity, its place in the cluster and the membership timings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSettings {
    /// This node's stable id (a StatefulSet pod name in Kubernetes).
    pub node_id: String,
    /// Number of shards; fixed when the cluster is created.
    pub shards: u32,
    /// The URL peers reach this node at (`http://host:port`); empty = the bound address
    /// (`0.0.0.0` read as `127.0.0.1`).
    pub advertise_url: String,
    /// How often the node renews its lease and refreshes the shard map.
    pub heartbeat_ms: u64,
    /// A node whose lease is older than this is dead: its shards go to the live nodes.
    pub lease_ms: u64,
    /// Hand shards to joining nodes automatically (rebalance by shard count).
    pub auto_rebalance: bool,
    /// How long a graceful stop may spend handing this node's shards to the others.
    pub drain_timeout_ms: u64,
    /// Most shards one handoff moves at once.
    pub handoff_batch: usize,
    /// How long one handoff may take before it is abandoned (ownership unchanged).
    pub handoff_timeout_ms: u64,
    /// How section calls and forwarded requests travel between nodes: `wire` (the binary
    /// transport; a peer that does not speak it is asked over HTTP) or `http` (this node
    /// neither uses nor serves the wire).
    pub transport: Transport,
    /// Name the student's home node's address (`X-Registrar-Home`) on a student's sign-in
    /// and registration answers, so a client that reaches the nodes can go there and save
    /// the forward. Off for a deployment whose node addresses clients must not see.
    pub home_hints: bool,
}

/// How nodes talk to each other (see [`ClusterSettings::transport`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Binary frames over long-lived connections.
    #[default]
    Wire,
    /// One HTTP/2 request per call.
    Http,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            node_id: "node-1".into(),
            shards: 1024,
            advertise_url: String::new(),
            heartbeat_ms: 1_000,
            lease_ms: 5_000,
            auto_rebalance: true,
            drain_timeout_ms: 30_000,
            handoff_batch: 64,
            handoff_timeout_ms: 5_000,
            transport: Transport::Wire,
            home_hints: true,
        }
    }
}

/// Section actors.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SectionSettings {
    /// Most commands one section decides per commit.
    pub max_batch: usize,
    /// Most batches of one section committing at once: the actor decides the next batch
    /// while earlier ones commit (1: each batch waits for the previous commit).
    pub section_pipeline: usize,
    /// Admission bound per section (queued + being decided).
    pub section_max_in_flight: usize,
    /// Admission bound per node.
    pub node_max_in_flight: usize,
    /// How long a request waits for its batch to commit.
    pub call_timeout_ms: u64,
    /// Idle time before a section actor passivates.
    pub passivate_after_secs: u64,
    /// A swap left under way (see `service::swap`) is finished by its student's home node
    /// once it is this old and the student has not come back. The same grace applies to a
    /// decision over several sections left unfinished (see `service::bundle`).
    pub swap_finish_after_ms: u64,
    /// A decision over several sections must hold all its seats within this time (by the
    /// database clock), or it is cancelled and every hold released.
    pub decision_deadline_ms: u64,
}

impl Default for SectionSettings {
    fn default() -> Self {
        Self {
            max_batch: 512,
            section_pipeline: 1,
            section_max_in_flight: 5_000,
            node_max_in_flight: 50_000,
            call_timeout_ms: 10_000,
            passivate_after_secs: 300,
            swap_finish_after_ms: 10_000,
            decision_deadline_ms: 10_000,
        }
    }
}

impl SectionSettings {
    /// The section registry's tuning.
    pub fn registry(&self) -> RegistryConfig {
        RegistryConfig {
            section: SectionConfig {
                max_batch: self.max_batch.max(1),
                passivate_after: Duration::from_secs(self.passivate_after_secs.max(1)),
                pipeline: self.section_pipeline.max(1),
            },
            section_max_in_flight: self.section_max_in_flight.max(1),
            node_max_in_flight: self.node_max_in_flight.max(1),
            call_timeout: Duration::from_millis(self.call_timeout_ms.max(1)),
        }
    }
}

/// RabbitMQ: where committed events go, and the consumers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct EventSettings {
    /// Broker URL.
    pub amqp_url: String,
    /// Topic exchange committed events go to.
    pub events_exchange: String,
    /// Prefix of the consumers' durable queue names (`<prefix>.notify`, `<prefix>.analytics`).
    pub queue_prefix: String,
    /// Run the outbox relay in this node.
    pub relay_enabled: bool,
    /// Most outbox rows published per relay round.
    pub relay_batch: u32,
    /// Run the `notify` and `analytics` consumers inside `serve` too.
    pub consumers_in_process: bool,
    /// Tries of an event the database refuses before a consumer dead-letters it to
    /// `<queue>.dead`.
    pub consumer_max_attempts: u32,
    /// Oldest outbox backlog figure `/readyz` and `/metrics` report: the count is taken
    /// at most this often, however often they are called.
    pub backlog_max_age_ms: u64,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            events_exchange: "registrar.events".into(),
            queue_prefix: "registrar".into(),
            relay_enabled: true,
            relay_batch: 500,
            consumers_in_process: false,
            consumer_max_attempts: 5,
            backlog_max_age_ms: 2000,
        }
    }
}

/// Retention of the tables that grow with traffic, pruned by a background task on every
/// node (see `service::retention`). A retention of 0 keeps that table's rows forever.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// Published outbox rows are kept this long (unpublished ones always): long enough to
    /// re-send a week of events by hand after a consumer lost its queue.
    pub outbox_retention_hours: u64,
    /// Rows of the audit trail (`registration_attempts`) are kept this long: a term's
    /// registration period and its disputes.
    pub attempts_retention_hours: u64,
    /// Stored first answers to `Idempotency-Key` requests are kept this long: clients
    /// retry within minutes; a key sent again after it expired is decided afresh.
    pub idempotency_retention_hours: u64,
    /// Time between pruning rounds.
    pub prune_interval_ms: u64,
    /// Most rows one DELETE statement removes (short statements, short locks).
    pub prune_batch: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            outbox_retention_hours: 7 * 24,
            attempts_retention_hours: 90 * 24,
            idempotency_retention_hours: 24,
            prune_interval_ms: 60_000,
            prune_batch: 1000,
        }
    }
}

/// Redis: the seat-count mirror.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct MirrorSettings {
    /// Redis URL.
    pub redis_url: String,
    /// Prefix of every Redis key (tests use one each).
    pub redis_prefix: String,
    /// Mirror seat counts to Redis and serve section reads from it.
    pub mirror_enabled: bool,
}

impl Default for MirrorSettings {
    fn default() -> Self {
        Self {
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: "registrar".into(),
            mirror_enabled: true,
        }
    }
}

/// Logging.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// `tracing` filter, e.g. `info,registrar=debug`.
    pub log: String,
    /// `json` or `pretty`.
    pub log_format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            log: "info".into(),
            log_format: LogFormat::Pretty,
        }
    }
}

/// Passwords of the demo accounts `registrar seed` creates.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct DemoAccounts {
    /// Password for the seeded `admin` account (generated and printed when empty).
    pub admin_password: String,
    /// Password for the seeded `operator` account (generated and printed when empty).
    pub operator_password: String,
    /// Password of every seeded demo student.
    pub demo_password: String,
}

impl Default for DemoAccounts {
    fn default() -> Self {
        Self {
            admin_password: String::new(),
            operator_password: String::new(),
            demo_password: "demo".into(),
        }
    }
}

/// The tokio runtime.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeSettings {
    /// Tokio worker threads; `0` means one per core. Several nodes sharing a machine (a
    /// local cluster, a benchmark) each want their share of the cores, not all of them:
    /// three 2-thread runtimes on 2 cores spend their time preempting each other.
    pub worker_threads: usize,
    /// Most threads of tokio's blocking pool (password hashing with argon2 runs there,
    /// ~19 MiB each). Tokio's own default is 512, enough to exhaust memory under a login
    /// storm; beyond the bound, blocking work queues instead of starting threads.
    pub max_blocking_threads: usize,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            worker_threads: 0,
            max_blocking_threads: 64,
        }
    }
}

/// How much longer than the section call timeout an ordinary request may always take:
/// the time a registration call spends around its section call (rule checks, the
/// idempotency record).
pub const REQUEST_TIMEOUT_MARGIN_MS: u64 = 1_000;

impl Settings {
    /// How long a caller waits for a section's decision.
    pub fn sections_call_timeout(&self) -> Duration {
        Duration::from_millis(self.sections.call_timeout_ms.max(1))
    }

    /// The time limit of an ordinary request: `request_timeout_ms`, raised to the section
    /// call timeout plus [`REQUEST_TIMEOUT_MARGIN_MS`] when set below it. A registration
    /// call whose decision is slow so gets its own 503 `decision_pending` (retry with the
    /// same key), not a request timeout, in the common case.
    pub fn request_timeout(&self) -> Duration {
        let floor = self
            .sections
            .call_timeout_ms
            .saturating_add(REQUEST_TIMEOUT_MARGIN_MS);
        Duration::from_millis(self.http.request_timeout_ms.max(floor))
    }

    /// Defaults ← `file` (if given) ← `REGISTRAR_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment
            .merge(Env::prefixed("REGISTRAR_").ignore(&["config"]))
            .extract()
            .map_err(Box::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    // figment's Jail fixes the closure's error type; its size is not ours to choose.
    #[allow(clippy::result_large_err)]
    fn grouped_settings_keep_flat_keys_in_files_and_environment() {
        Jail::expect_with(|jail| {
            jail.create_file("node.toml", "shards = 64\nrelay_batch = 7\n")?;
            jail.set_env("REGISTRAR_DATABASE_URL", "postgres://x/y");
            jail.set_env("REGISTRAR_RELAY_ENABLED", "false");
            jail.set_env("REGISTRAR_CALL_TIMEOUT_MS", "1500");
            jail.set_env("REGISTRAR_MAX_BLOCKING_THREADS", "8");
            let s = Settings::load(Some(Path::new("node.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(s.cluster.shards, 64);
            assert_eq!(s.events.relay_batch, 7);
            assert_eq!(s.database.database_url, "postgres://x/y");
            assert!(!s.events.relay_enabled);
            assert_eq!(s.sections.call_timeout_ms, 1500);
            assert_eq!(s.runtime.max_blocking_threads, 8);
            assert_eq!(s.http.listen, "127.0.0.1:8080");
            Ok(())
        });
    }

    #[test]
    fn the_request_timeout_is_never_below_the_call_timeout_and_its_margin() {
        let mut s = Settings::default();
        assert_eq!(s.request_timeout(), Duration::from_secs(30));
        s.http.request_timeout_ms = 1;
        s.sections.call_timeout_ms = 4_000;
        assert_eq!(s.request_timeout(), Duration::from_millis(5_000));
    }
}
