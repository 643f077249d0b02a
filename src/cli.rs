//! The `registrar` command line: `serve`, `migrate`, `seed`, `import` ([`import`]),
//! `admin create`, the event consumers (`notify`, `analytics`), `events tail`, `mirror
//! rebuild` and the operator's `cluster status | move | drain | rebalance` ([`cluster`]). Errors are printed and turned into a non-zero exit status
//! here, so `main` stays one line.

pub mod cluster;
pub mod import;

use crate::config::{RuntimeSettings, Settings};
use crate::events::consumers::{self, ConsumerConfig, ConsumerKind};
use crate::redis::SeatMirror;
use crate::resources::{NewStudent, Role, is_username};
use crate::service::auth::{hash_demo_password, hash_password};
use crate::shutdown::{Shutdown, ShutdownTrigger};
use crate::startup::Application;
use crate::store::students;
use crate::store::{self, seed};
use clap::{Args, Parser, Subcommand, ValueEnum};
use cluster::moves::RebalanceBy;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Command line.
#[derive(Parser, Debug)]
#[command(name = "registrar", version, about = "Course registration server")]
pub struct Cli {
    /// TOML configuration file (REGISTRAR_* variables override it).
    #[arg(long, global = true, env = "REGISTRAR_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Migrate, then serve the API until ctrl-c / SIGTERM.
    Serve,
    /// Apply database migrations.
    Migrate,
    /// Load the demo catalog.
    Seed {
        /// Demo students s000001..
        #[arg(long, default_value_t = 1000)]
        students: u32,
        /// Sections across the catalog.
        #[arg(long, default_value_t = 200)]
        sections: u32,
        /// Wipe existing data first.
        #[arg(long)]
        reset: bool,
    },
    /// Load terms, windows, courses, sections, students and time tickets from the SIS's
    /// CSV, JSON or JSON Lines files (docs/operations.md, "Importing a catalog"); exits 1
    /// when a row failed.
    Import(import::ImportArgs),
    /// Staff accounts (without the demo data `seed` brings).
    Admin {
        /// What to do.
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Run the `notify` consumer (student notifications) until ctrl-c.
    Notify,
    /// Run the `analytics` consumer (registration figures) until ctrl-c.
    Analytics,
    /// Event tools.
    Events {
        /// What to do.
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Check the database against the invariants (and acknowledgement logs); exits
    /// non-zero on any violation.
    Verify {
        /// Acknowledgement log written by `registrar-loadtest --acks` (repeatable).
        #[arg(long)]
        acks: Vec<PathBuf>,
    },
    /// Redis mirror tools.
    Mirror {
        /// What to do.
        #[command(subcommand)]
        command: MirrorCommand,
    },
    /// Operator tools over the cluster API of a running node.
    Cluster {
        /// What to do.
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

/// `registrar cluster ...`. Credentials come from REGISTRAR_OPERATOR_USERNAME (default
/// `operator`) and REGISTRAR_OPERATOR_PASSWORD, else are asked on the terminal.
#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Log in as an operator and print every node (state, lease age, shards owned,
    /// decisions/s, in-flight) and the shard moves in progress.
    Status {
        /// The node to ask.
        #[command(flatten)]
        node: NodeUrl,
    },
    /// Move one shard to another node and follow the move to its end; exit 0 once it is
    /// `done`, 1 when it failed. Ctrl-c stops the watching, not the move.
    Move {
        /// The shard (0 to shards - 1).
        #[arg(value_name = "SHARD")]
        shard: u32,
        /// The node that takes it (an active member).
        #[arg(long, value_name = "NODE")]
        to: String,
        /// The node to ask.
        #[command(flatten)]
        node: NodeUrl,
    },
    /// Drain a node: hand every shard it owns to the other active nodes, then follow it
    /// until it is `left` with no shard; exit 1 when it fails, ends dead or times out.
    Drain {
        /// The node to drain (its id, e.g. `registrar-2`).
        #[arg(value_name = "NODE")]
        node_id: String,
        /// Give up watching after this many seconds (the drain itself goes on).
        #[arg(long, value_name = "SECS", default_value_t = 120,
              value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        /// The node to ask.
        #[command(flatten)]
        node: NodeUrl,
    },
    /// Even out the shards over the active nodes and follow every move it starts; print
    /// how many ended done or failed and the slowest; exit 1 when any failed.
    Rebalance {
        /// By shard count or by the load the nodes report.
        #[arg(long, value_enum, default_value_t = RebalanceBy::Count)]
        by: RebalanceBy,
        /// The node to ask.
        #[command(flatten)]
        node: NodeUrl,
    },
}

/// The node a cluster command talks to.
#[derive(Args, Debug)]
pub struct NodeUrl {
    /// Any node of the cluster (plain http://).
    #[arg(long, env = "REGISTRAR_URL", default_value = cluster::DEFAULT_URL)]
    pub url: String,
}

/// `registrar events ...`
#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Print events as they are published (a temporary queue on the exchange).
    Tail {
        /// Binding key, e.g. `waitlist.*`.
        #[arg(long, default_value = "#")]
        binding: String,
    },
}

/// `registrar admin ...`
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a staff account. The password is read from REGISTRAR_ADMIN_CREATE_PASSWORD
    /// or, when that is unset, as one line on stdin; never from the command line, where
    /// other users of the machine could read it.
    Create {
        /// Login name: 1-64 of a-z 0-9 _ . -
        #[arg(long)]
        username: String,
        /// The account's role.
        #[arg(long, value_enum, default_value_t = StaffRole::Admin)]
        role: StaffRole,
    },
}

/// A role `admin create` gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StaffRole {
    /// Manages the catalog and accounts.
    Admin,
    /// Runs the cluster.
    Operator,
}

/// Shortest password `admin create` accepts, in characters.
pub const MIN_STAFF_PASSWORD_CHARS: usize = 12;

/// The environment variable `admin create` reads the password from.
pub const ADMIN_CREATE_PASSWORD_VAR: &str = "REGISTRAR_ADMIN_CREATE_PASSWORD";

/// The new account's password: the environment variable if set, else one line of stdin.
fn staff_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    if let Ok(password) = std::env::var(ADMIN_CREATE_PASSWORD_VAR)
        && !password.is_empty()
    {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password (at least {MIN_STAFF_PASSWORD_CHARS} characters; echoed): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `registrar admin create`: a staff account with a strong hash; refuses short passwords
/// and usernames that exist.
async fn create_staff(
    settings: &Settings,
    username: String,
    role: StaffRole,
) -> anyhow::Result<()> {
    if !is_username(&username) {
        anyhow::bail!("bad username `{username}`: use 1-64 of a-z, 0-9, '_', '.', '-'");
    }
    let password = staff_password()?;
    let chars = password.chars().count();
    if chars < MIN_STAFF_PASSWORD_CHARS {
        anyhow::bail!(
            "the password has {chars} characters; staff accounts need at least {MIN_STAFF_PASSWORD_CHARS} \
             (give it on stdin or in {ADMIN_CREATE_PASSWORD_VAR})"
        );
    }
    if password.len() > 256 {
        anyhow::bail!("the password is longer than 256 bytes");
    }
    let pool = store::connect(&settings.database.database_url, 2).await?;
    store::migrate(&pool).await?;
    if students::credentials(&pool, &username).await?.is_some() {
        anyhow::bail!("an account `{username}` already exists; nothing was changed");
    }
    let role = match role {
        StaffRole::Admin => Role::Admin,
        StaffRole::Operator => Role::Operator,
    };
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await?;
    let account = NewStudent {
        username: username.clone(),
        password: String::new(),
        standing: None,
        max_credits: 0,
        completed_courses: Vec::new(),
        role,
        majors: Vec::new(),
        program: None,
        cohort: None,
    };
    let created = match students::create(&pool, &account, &hash).await {
        Ok(created) => created,
        // Created by someone else since the check above.
        Err(store::DbError::Duplicate(_)) => {
            anyhow::bail!("an account `{username}` already exists; nothing was changed")
        }
        Err(e) => return Err(e.into()),
    };
    pool.close().await;
    println!(
        "created {} account `{}` ({})",
        role.as_str(),
        created.username,
        created.id
    );
    Ok(())
}

/// `registrar mirror ...`
#[derive(Subcommand, Debug)]
pub enum MirrorCommand {
    /// Rewrite every section's counts from PostgreSQL to Redis.
    Rebuild,
}

/// A shutdown that starts on ctrl-c / SIGTERM.
fn stop_on_signal() -> Shutdown {
    let trigger = ShutdownTrigger::new();
    let shutdown = trigger.subscribe();
    tokio::spawn(async move {
        crate::shutdown::signal().await;
        trigger.fire();
    });
    shutdown
}

/// Run the command line; the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("registrar: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    // A client command prints its answer and its errors itself; the server's log lines
    // would only repeat them.
    if !matches!(cli.command, Command::Cluster { .. }) {
        crate::telemetry::init(&settings.logging.log, settings.logging.log_format);
    }
    let runtime = match runtime(&settings.runtime) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("registrar: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(status) => status,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("registrar: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The multi-threaded runtime every command runs on, its blocking pool bounded by
/// `max_blocking_threads` (argon2 hashing runs there; tokio's own bound is 512 threads).
pub fn runtime(settings: &RuntimeSettings) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if settings.worker_threads > 0 {
        builder.worker_threads(settings.worker_threads);
    }
    builder
        .enable_all()
        .max_blocking_threads(settings.max_blocking_threads.max(1))
        .build()
}

/// `registrar cluster ...`: a client of the operator API; prints its own errors' context.
async fn run_cluster(command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Status { node } => cluster::status(&node.url).await,
        ClusterCommand::Move { shard, to, node } => {
            cluster::moves::move_shard(&node.url, shard, &to).await
        }
        ClusterCommand::Drain {
            node_id,
            timeout,
            node,
        } => cluster::moves::drain(&node.url, &node_id, Duration::from_secs(timeout)).await,
        ClusterCommand::Rebalance { by, node } => cluster::moves::rebalance(&node.url, by).await,
    }
}

async fn run(command: Command, mut settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Notify | Command::Analytics => {
            let kind = if matches!(command, Command::Notify) {
                ConsumerKind::Notify
            } else {
                ConsumerKind::Analytics
            };
            let pool = store::connect(&settings.database.database_url, 4).await?;
            store::migrate(&pool).await?;
            let config = ConsumerConfig::of(kind, &settings.events);
            consumers::run(kind, pool, config, stop_on_signal()).await;
        }
        Command::Events {
            command: EventsCommand::Tail { binding },
        } => {
            consumers::tail(
                &settings.events.amqp_url,
                &settings.events.events_exchange,
                &binding,
                stop_on_signal(),
            )
            .await?;
        }
        Command::Mirror {
            command: MirrorCommand::Rebuild,
        } => {
            let pool = store::connect(&settings.database.database_url, 2).await?;
            let mirror =
                SeatMirror::new(&settings.mirror.redis_url, &settings.mirror.redis_prefix)?;
            let n = mirror.rebuild(&pool).await?;
            println!("mirrored {n} sections to Redis");
        }
        Command::Cluster { command } => run_cluster(command).await?,
        Command::Import(args) => return import::run(&settings, args).await,
        Command::Verify { acks } => {
            let options = crate::verify::VerifyOptions {
                database_url: settings.database.database_url.clone(),
                acks,
            };
            return Ok(crate::verify::run(options).await?);
        }
        Command::Admin {
            command: AdminCommand::Create { username, role },
        } => create_staff(&settings, username, role).await?,
        Command::Migrate => {
            Application::migrate(&settings).await?;
            tracing::info!("migrations applied");
        }
        Command::Serve => {
            crate::startup::check_signing_secret(&settings)?;
            Application::migrate(&settings).await?;
            let app = Application::build(settings).await?;
            println!("registrar listening on http://{}", app.address());
            app.run_until_stopped(crate::shutdown::signal()).await?;
        }
        Command::Seed {
            students,
            sections,
            reset,
        } => {
            let pool = store::connect(&settings.database.database_url, 4).await?;
            store::migrate(&pool).await?;
            let mut generated = Vec::new();
            for (name, password) in [
                ("admin", &mut settings.demo.admin_password),
                ("operator", &mut settings.demo.operator_password),
            ] {
                if password.is_empty() {
                    *password = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
                    generated.push((name, password.clone()));
                }
            }
            let started = std::time::Instant::now();
            let options = seed::SeedOptions {
                students,
                sections,
                reset,
                shards: settings.cluster.shards,
                demo_password_hash: hash_demo_password(&settings.demo.demo_password),
                admin_password_hash: hash_password(&settings.demo.admin_password),
                operator_password_hash: hash_password(&settings.demo.operator_password),
            };
            let summary = seed::seed(&pool, &options).await?;
            println!(
                "seeded term 2027SP ({}) with {} courses, {} sections, {} students in {:.1}s",
                summary.term_id,
                summary.courses,
                summary.sections,
                summary.students,
                started.elapsed().as_secs_f64()
            );
            println!(
                "demo students: s000001..s{:06} / password from REGISTRAR_DEMO_PASSWORD",
                summary.students
            );
            for (name, password) in generated {
                println!("generated password for {name}: {password}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn the_blocking_pool_has_the_configured_bound() {
        let runtime = runtime(&RuntimeSettings {
            worker_threads: 1,
            max_blocking_threads: 1,
        })
        .expect("runtime");
        runtime.block_on(async {
            let (tx, rx) = mpsc::channel::<()>();
            // With one blocking thread the second task waits for the first to finish, so
            // the first never hears from it.
            let first = tokio::task::spawn_blocking(move || {
                rx.recv_timeout(Duration::from_millis(500)).is_ok()
            });
            let second = tokio::task::spawn_blocking(move || tx.send(()));
            assert!(
                !first.await.expect("first task"),
                "a second blocking thread ran beside the first"
            );
            let _ = second.await.expect("second task");
        });
    }

    fn cluster(args: &[&str]) -> Result<ClusterCommand, clap::Error> {
        let argv = ["registrar", "cluster"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Cluster { command } => Ok(command),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn cluster_move_takes_a_shard_number_and_a_target() {
        let parsed = cluster(&["move", "17", "--to", "node-2", "--url", "http://n:8081"]);
        assert!(
            matches!(&parsed, Ok(ClusterCommand::Move { shard: 17, to, node })
                if to == "node-2" && node.url == "http://n:8081"),
            "{parsed:?}"
        );
        assert!(cluster(&["move", "17"]).is_err(), "--to is required");
        assert!(cluster(&["move", "x", "--to", "node-2"]).is_err());
        assert!(cluster(&["move", "-1", "--to", "node-2"]).is_err());
    }

    #[test]
    fn cluster_drain_takes_a_node_and_a_positive_timeout() {
        let parsed = cluster(&["drain", "registrar-2", "--url", "http://n:1"]);
        assert!(
            matches!(&parsed, Ok(ClusterCommand::Drain { node_id, timeout: 120, .. })
                if node_id == "registrar-2"),
            "{parsed:?}"
        );
        let parsed = cluster(&[
            "drain",
            "registrar-2",
            "--timeout",
            "45",
            "--url",
            "http://n:1",
        ]);
        assert!(
            matches!(parsed, Ok(ClusterCommand::Drain { timeout: 45, .. })),
            "{parsed:?}"
        );
        assert!(cluster(&["drain", "registrar-2", "--timeout", "0"]).is_err());
        assert!(cluster(&["drain"]).is_err(), "the node is required");
    }

    #[test]
    fn cluster_rebalance_is_by_count_unless_told_load() {
        let parsed = cluster(&["rebalance", "--url", "http://n:1"]);
        assert!(
            matches!(
                parsed,
                Ok(ClusterCommand::Rebalance {
                    by: RebalanceBy::Count,
                    ..
                })
            ),
            "{parsed:?}"
        );
        let parsed = cluster(&["rebalance", "--by", "load", "--url", "http://n:1"]);
        assert!(
            matches!(
                parsed,
                Ok(ClusterCommand::Rebalance {
                    by: RebalanceBy::Load,
                    ..
                })
            ),
            "{parsed:?}"
        );
        assert!(cluster(&["rebalance", "--by", "random"]).is_err());
    }
}
