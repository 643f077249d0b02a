//! # registrar-loadtest
//!
//! Goose load scenarios against a registrar server, and a verifier of its database
//! afterwards. See `loadtest/README.md` for how to run them.
//!
//! - [`cli`]: our options, split off before goose parses the rest of the command line.
//! - [`catalog`]: the term's sections, fetched once, ranked for the Zipf choice ([`zipf`]);
//!   [`cart`]: what a `cart` student puts in the cart, and the staging phase that fills it.
//! - [`scenarios`]: the goose scenarios; [`api`]: the REST calls and what counts as a
//!   correct answer; [`acks`]: the acknowledgement log; [`stats`]: decisions per second;
//!   [`prelogin`]: the sign-in phase before the load (`--pre-login`).
//! - [`wire`] and [`clock`]: the leaves every other module shares (a student, an answer
//!   and its verdict; the run's monotonic Unix clock), so no two modules import each other.
//! - `verify`: the same checker as `registrar verify` (`registrar::verify`), for convenience.

mod acks;
mod api;
mod cart;
mod catalog;
mod cli;
mod clock;
mod prelogin;
mod scenarios;
mod stats;
mod wire;
mod zipf;

use anyhow::Context;
use cli::{LoadOptions, Mode, ScenarioName};
use goose::config::GooseConfiguration;
use goose::prelude::*;
use goose::test_plan::{TestPlanHistory, TestPlanStepAction};
use std::process::ExitCode;
use uuid::Uuid;

const DEFAULT_HOST: &str = "http://127.0.0.1:8080";

/// Logins in flight at once in the sign-in phase: enough to keep the server's password
/// hashing busy, few enough not to be shed as `overloaded`.
const PRE_LOGIN_CONCURRENCY: usize = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match cli::parse(args) {
        Ok(Mode::Verify(opts)) => registrar::verify::run(opts)
            .await
            .map_err(anyhow::Error::from),
        Ok(Mode::Load(opts, goose_args)) => load(opts, goose_args).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("registrar-loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn load(opts: LoadOptions, goose_args: Vec<String>) -> anyhow::Result<ExitCode> {
    if opts.help {
        println!("{}", cli::LOAD_HELP);
        let mut goose_help = <GooseConfiguration as clap::CommandFactory>::command();
        goose_help.print_help()?;
        return Ok(ExitCode::SUCCESS);
    }
    let config = GooseConfiguration::parse_args_default(&goose_args)
        .map_err(|e| anyhow::anyhow!("goose options: {e}"))?;
    let goose_host = config.host.clone().filter(|h| !h.is_empty());
    if goose_host.is_some() && !opts.hosts.is_empty() {
        anyhow::bail!("give either --host (one node) or --hosts (several), not both");
    }
    // With --hosts, the first one serves the catalog and is goose's host; every user
    // then moves to its own (scenarios::build).
    let host = opts
        .hosts
        .first()
        .cloned()
        .or(goose_host)
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    let default_report = config.report_file.is_empty();
    let verbose = config.verbose > 0;

    if !matches!(opts.scenario, ScenarioName::Healthz | ScenarioName::Hot) {
        let catalog = catalog::load(&host, opts.zipf_exponent).await?;
        let hottest: Vec<String> = catalog
            .sections
            .iter()
            .take(3)
            .map(|s| format!("{} ({} seats)", s.course_code, s.capacity))
            .collect();
        eprintln!(
            "registrar-loadtest: {} sections in term {}; hottest: {}",
            catalog.sections.len(),
            catalog::TERM_CODE,
            hottest.join(", ")
        );
        if opts.scenario == ScenarioName::Cart {
            let linked: Vec<String> = catalog
                .linked
                .iter()
                .take(3)
                .map(|c| {
                    format!(
                        "{} ({} sets of {})",
                        c.course_code,
                        c.primaries.len(),
                        c.components.join("+")
                    )
                })
                .collect();
            anyhow::ensure!(
                !linked.is_empty(),
                "term {} has no linked course (lecture with lab) to put in a cart",
                catalog::TERM_CODE
            );
            eprintln!(
                "registrar-loadtest: {} linked courses; hottest: {}",
                catalog.linked.len(),
                linked.join(", ")
            );
        }
    }
    if opts.follow_home {
        api::follow_home(&opts.hosts);
    }
    scenarios::configure(
        opts.first_student,
        opts.students,
        opts.hot_sections.clone(),
        opts.hosts.clone(),
    );
    if opts.scenario == ScenarioName::Reshard {
        let hot: Vec<String> = scenarios::hot_set().iter().map(Uuid::to_string).collect();
        eprintln!(
            "registrar-loadtest: reshard hot set (hottest first): {}",
            hot.join(", ")
        );
    }
    if opts.hosts.len() > 1 {
        eprintln!(
            "registrar-loadtest: users spread round-robin over {}",
            opts.hosts.join(", ")
        );
    }
    if let Some(path) = &opts.acks {
        acks::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    }
    let pre_login = if opts.pre_login {
        let hosts = if opts.hosts.is_empty() {
            vec![host.clone()]
        } else {
            opts.hosts.clone()
        };
        let p = prelogin::run(
            &hosts,
            opts.first_student,
            opts.students,
            PRE_LOGIN_CONCURRENCY,
        )
        .await?;
        eprintln!(
            "registrar-loadtest: pre-login: {} of {} students signed in in {:.1} s: {:.0} logins/s, p50 {:.1} ms, p99 {:.1} ms ({} failed)",
            p.tokens, p.students, p.seconds, p.per_s, p.p50_ms, p.p99_ms, p.failed
        );
        Some(p)
    } else {
        None
    };
    let staging = if opts.pre_login && opts.scenario == ScenarioName::Cart {
        let hosts = if opts.hosts.is_empty() {
            vec![host.clone()]
        } else {
            opts.hosts.clone()
        };
        let s = cart::stage(
            catalog::get(),
            &hosts,
            opts.first_student,
            opts.students,
            PRE_LOGIN_CONCURRENCY,
        )
        .await?;
        eprintln!(
            "registrar-loadtest: staging: {} carts, {} PUTs in {:.1} s: {:.0} PUTs/s, p50 {:.1} ms, p99 {:.1} ms ({} refused, {} without answer)",
            s.carts,
            s.puts,
            s.seconds,
            s.per_s,
            s.p50_ms,
            s.p99_ms,
            s.refused.values().sum::<u64>(),
            s.failed
        );
        Some(s)
    } else {
        None
    };

    let mut attack = GooseAttack::initialize_with_config(config)?;
    for scenario in scenarios::build(opts.scenario)? {
        attack = attack.register_scenario(scenario);
    }
    // No telnet controller (it binds a fixed port, so two runs would collide) and no
    // per-user chatter on the console unless -v asks for it.
    attack = *attack
        .set_default(GooseDefault::Host, host.as_str())?
        .set_default(GooseDefault::NoTelnet, true)?;
    if !verbose {
        attack = *attack.set_default(GooseDefault::Quiet, 1)?;
    }
    if default_report {
        std::fs::create_dir_all("reports").context("cannot create reports/")?;
        let report = format!("reports/{}.html", opts.scenario.as_str());
        attack = *attack.set_default(GooseDefault::ReportFile, report.as_str())?;
    }
    let metrics = attack.execute().await?;
    acks::finish().context("cannot flush the acks file")?;

    // `open` and `cart` end when every student has had its turn, maybe well before goose
    // stops: they are measured from their first answer to their last, not over goose's
    // steady phase.
    let windows = if matches!(opts.scenario, ScenarioName::Open | ScenarioName::Cart) {
        Vec::new()
    } else {
        steady_windows(&metrics.history)
    };
    let mut summary = stats::summarize(opts.scenario.as_str(), metrics.maximum_users, &windows);
    summary.goose_started_unix_ms = scenarios::goose_started_unix_ms();
    summary.pre_login = pre_login;
    summary.staging = staging;
    print!("{}", summary.render());
    println!(
        "  students used: {} (from s{:06})",
        scenarios::students_taken(),
        opts.first_student
    );
    if let Some(path) = &opts.summary {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if opts.fail_on_errors && summary.failed_total > 0 {
        eprintln!(
            "registrar-loadtest: {} requests failed (5xx, timeout or unexpected answer)",
            summary.failed_total
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The spans (Unix ms) in which goose held the user count steady.
fn steady_windows(history: &[TestPlanHistory]) -> Vec<(i64, i64)> {
    history
        .windows(2)
        .filter(|w| matches!(w[0].action, TestPlanStepAction::Maintaining))
        .map(|w| {
            (
                w[0].timestamp.timestamp_millis(),
                w[1].timestamp.timestamp_millis(),
            )
        })
        .collect()
}
