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
    /// Logging.
    #[serde(flatten)]
    pub logging: LogSettings,
    /// Passwords of the accounts `registrar seed` creates.
    #[serde(flatten)]
    pub demo: DemoAccounts,
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
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            database_url: "postgres://registrar:registrar@127.0.0.1:5432/registrar".into(),
            db_pool_size: 8,
            commit_workers: 2,
            commit_max_rows: 4096,
        }
    }
}

/// This node's identity and the shard count.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSettings {
    /// This node's stable id (a StatefulSet pod name in Kubernetes).
    pub node_id: String,
    /// Number of shards; fixed when the cluster is created.
    pub shards: u32,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            node_id: "node-1".into(),
            shards: 1024,
        }
    }
}

/// Section actors.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct SectionSettings {
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
}

impl Default for SectionSettings {
    fn default() -> Self {
        Self {
            max_batch: 512,
            section_max_in_flight: 5_000,
            node_max_in_flight: 50_000,
            call_timeout_ms: 10_000,
            passivate_after_secs: 300,
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
            let s = Settings::load(Some(Path::new("node.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(s.cluster.shards, 64);
            assert_eq!(s.events.relay_batch, 7);
            assert_eq!(s.database.database_url, "postgres://x/y");
            assert!(!s.events.relay_enabled);
            assert_eq!(s.sections.call_timeout_ms, 1500);
            assert_eq!(s.http.listen, "127.0.0.1:8080");
            Ok(())
        });
    }
}
