//! Typed configuration: defaults, then an optional TOML file, then `REGISTRAR_*`
//! environment variables (e.g. `REGISTRAR_DATABASE_URL`), each layer overriding the last.
//! Defaults point at the local services that `deploy/local/up.sh` starts.

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

/// Every setting of a registrar node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address the HTTP server binds; port 0 picks a free port.
    pub listen: String,
    /// PostgreSQL, the source of truth.
    pub database_url: String,
    /// Redis, the seat-count mirror.
    pub redis_url: String,
    /// RabbitMQ, where committed events go.
    pub amqp_url: String,
    /// HMAC secret signing access tokens; every node of a cluster needs the same one.
    /// Empty means "generate one at start" (tokens then die with the process).
    pub jwt_secret: String,
    /// This node's stable id (a StatefulSet pod name in Kubernetes).
    pub node_id: String,
    /// `tracing` filter, e.g. `info,registrar=debug`.
    pub log: String,
    /// `json` or `pretty`.
    pub log_format: LogFormat,
    /// Number of shards; fixed when the cluster is created.
    pub shards: u32,
    /// PostgreSQL connections per node. Fewer connections than clients is the point: on a
    /// 2-core box 8 beat 16 and 48 in `loadtest/flash-bench.sh` (less contention inside
    /// PostgreSQL); size it to a few times the database host's cores.
    pub db_pool_size: u32,
    /// Access token lifetime.
    pub token_ttl_secs: u64,
    /// Most commands one section decides per commit.
    pub max_batch: usize,
    /// Admission bound per section (queued + being decided).
    pub section_max_in_flight: usize,
    /// Admission bound per node.
    pub node_max_in_flight: usize,
    /// How long a request waits for its batch to commit.
    pub call_timeout_ms: u64,
    /// Idle time before a section actor passivates.
    pub passivate_after_secs: u64,
    /// Sustained requests per second per authenticated user on registration routes.
    pub rate_limit_per_sec: u32,
    /// Burst allowance on top of the sustained rate.
    pub rate_limit_burst: u32,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Password for the seeded `admin` account (generated and printed when empty).
    pub admin_password: String,
    /// Password for the seeded `operator` account (generated and printed when empty).
    pub operator_password: String,
    /// Password of every seeded demo student.
    pub demo_password: String,
    /// Node-wide committer: transactions in flight at once (see `store::sections`).
    pub commit_workers: usize,
    /// Node-wide committer: most decisions merged into one transaction.
    pub commit_max_rows: usize,
    /// Topic exchange committed events go to.
    pub events_exchange: String,
    /// Prefix of the consumers' durable queue names (`<prefix>.notify`, `<prefix>.analytics`).
    pub queue_prefix: String,
    /// Run the outbox relay in this node.
    pub relay_enabled: bool,
    /// Most outbox rows published per relay round.
    pub relay_batch: u32,
    /// Prefix of every Redis key (tests use one each).
    pub redis_prefix: String,
    /// Mirror seat counts to Redis and serve section reads from it.
    pub mirror_enabled: bool,
    /// Run the `notify` and `analytics` consumers inside `serve` too.
    pub consumers_in_process: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "postgres://registrar:registrar@127.0.0.1:5432/registrar".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            jwt_secret: String::new(),
            node_id: "node-1".into(),
            log: "info".into(),
            log_format: LogFormat::Pretty,
            shards: 1024,
            db_pool_size: 8,
            token_ttl_secs: 3600,
            max_batch: 512,
            section_max_in_flight: 5_000,
            node_max_in_flight: 50_000,
            call_timeout_ms: 10_000,
            passivate_after_secs: 300,
            rate_limit_per_sec: 20,
            rate_limit_burst: 40,
            max_body_bytes: 16 * 1024,
            admin_password: String::new(),
            operator_password: String::new(),
            demo_password: "demo".into(),
            commit_workers: 2,
            commit_max_rows: 4096,
            events_exchange: "registrar.events".into(),
            queue_prefix: "registrar".into(),
            relay_enabled: true,
            relay_batch: 500,
            redis_prefix: "registrar".into(),
            mirror_enabled: true,
            consumers_in_process: false,
        }
    }
}

impl Settings {
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

    /// The section registry's tuning.
    pub fn registry(&self) -> RegistryConfig {
        RegistryConfig {
            section: SectionConfig {
                max_batch: self.max_batch.max(1),
                passivate_after: Duration::from_secs(self.passivate_after_secs.max(1)),
            },
            section_max_in_flight: self.section_max_in_flight.max(1),
            node_max_in_flight: self.node_max_in_flight.max(1),
            call_timeout: Duration::from_millis(self.call_timeout_ms.max(1)),
        }
    }
}
