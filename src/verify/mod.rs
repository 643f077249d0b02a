//! `registrar verify` (also `registrar-loadtest verify`): after a load run, check a
//! registrar database against the invariants of `docs/architecture.md` (section
//! *Invariants*) and, given `--acks`, against every decision the
//! server acknowledged during the run. Prints each violation and exits 1 on any; prints
//! one summary line when clean.
//!
//! Checks:
//! 1. no oversell: `seats_taken <= capacity` and enrolled rows `<= capacity`;
//! 2. counters equal the rows (`seats_taken`, `waitlist_length`); the waitlist within its
//!    capacity; nobody in line waits while a seat is free (a student skipped for a rule
//!    they no longer pass waits, in place);
//! 3. one active place per (section, student);
//! 4. waitlist order: `waitlist_seq` unique per section and below `next_waitlist_seq`;
//!    FIFO: every promoted entry is older than every entry still waiting and never
//!    skipped (positions are the rank by seq, so unique seqs and exact counters make them
//!    contiguous);
//! 5. one outbox event per committed change, per section and routing key:
//!    `enrollment.created` = rows created with a seat (no seq), `waitlist.added` = rows
//!    with a seq, `waitlist.promoted` = rows with a seq that got a seat, `enrollment.dropped`
//!    = dropped rows, `enrollment.withdrawn` = dropped rows with a W (`withdrawn_at`);
//!    event ids unique (`enrollment.options_changed` is no change of a place: not counted);
//! 6. acknowledgements: for each (student, section), the last acknowledgement in `t_ms`
//!    order holds: `enrolled` → holds a seat; `waitlisted` → waiting or (promoted) seated;
//!    `dropped` → no active place. Pairs whose last line is an `unknown` outcome are
//!    skipped and counted as uncertain.
//! 7. one section per course: no student holds active places in two sections of one
//!    course in one term (of one component, for a course with components), and a linked
//!    set is never held in part (every required component, each linked to the lecture);
//! 8. credit limit: a student's enrolled + waitlisted (not skipped) credits per term, each
//!    course counted once as the student takes it (the credits chosen; none when audited),
//!    are within `max_credits`, or a credit overload's limit;
//! 9. no time conflict: no two of a student's active sections of a term meet at
//!    overlapping times, unless a time-conflict permit was used for one of them;
//! 10. swaps under way: no `swap_intents` row older than
//!     `REGISTRAR_VERIFY_SWAPS_SETTLED_SECS` (default 30) remains;
//! 11. with `--acks`: every acknowledged swap ends in `add` and not in `drop` (violations
//!     counted apart: in neither, in both, reversed), unless a later request of the student
//!     on either section changed it; a swap without an answer ends in exactly one of them;
//! 12. with `--acks`: an acknowledged line that records its `Idempotency-Key` and status
//!     has the status the server stored with the key at its first answer.
//! 13. decisions over several sections all or nothing: a confirmed one released none of
//!     its seats and, finished, has every section enrolled; a cancelled one enrolled none;
//! 14. held seats end with their decision: none held for a decision that ended, none
//!     pending past its deadline, none decided and unfinished, beyond the settle bound;
//! 15. permits: every seat beyond a capacity has a capacity permit used for it; every use
//!     is by the permit's student in the permit's section; a single-use permit is used once;
//! 16. enrollment options fit their course: the credits and grading basis recorded for
//!     every active place are within the course's range and among its bases.
//!
//! Checks 1-5, 7-10 and 13-15 judge the database alone (`violations`); 6, 11 and 12 need the log.

mod acks;
mod decisions;
mod invariants;
mod student_rules;
mod swaps;

use sqlx::postgres::PgPoolOptions;
use std::path::PathBuf;
use std::process::ExitCode;

/// Violations printed per check before the rest are only counted.
const SHOW: usize = 20;

/// Collected violations, grouped by check.
#[derive(Default)]
struct Report {
    violations: Vec<(String, Vec<String>)>,
}

impl Report {
    fn check(&mut self, name: &str, found: Vec<String>) {
        if !found.is_empty() {
            self.violations.push((name.to_string(), found));
        }
    }

    fn total(&self) -> usize {
        self.violations.iter().map(|(_, v)| v.len()).sum()
    }

    fn print(&self) {
        for (name, found) in &self.violations {
            println!("VIOLATION [{name}]: {} found", found.len());
            for line in found.iter().take(SHOW) {
                println!("  {line}");
            }
            if found.len() > SHOW {
                println!("  ... and {} more", found.len() - SHOW);
            }
        }
    }
}

/// What to verify.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// The registrar database.
    pub database_url: String,
    /// Acknowledgement logs (JSONL from `registrar-loadtest --acks`) to check.
    pub acks: Vec<PathBuf>,
}

/// Why the verifier could not run its checks (violations are not errors: they are the
/// verifier's findings, reported through the exit status).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The database could not be reached or queried.
    #[error("{context}: {source}")]
    Db {
        /// What was being done.
        context: String,
        /// The cause.
        source: sqlx::Error,
    },
    /// An acknowledgement log could not be read.
    #[error("{0}")]
    Acks(String),
}

impl From<sqlx::Error> for VerifyError {
    fn from(source: sqlx::Error) -> Self {
        VerifyError::Db {
            context: "query failed".into(),
            source,
        }
    }
}

type Result<T> = std::result::Result<T, VerifyError>;

/// The invariant violations of the database behind `pool`, by check (empty when clean);
/// for tests that verify a database they hold a pool on.
pub async fn violations(pool: &sqlx::PgPool) -> Result<Vec<(String, Vec<String>)>> {
    let mut report = Report::default();
    for (name, found) in database_checks(pool).await? {
        report.check(name, found);
    }
    Ok(report.violations)
}

/// Every check that needs the database only, in a fixed order.
async fn database_checks(pool: &sqlx::PgPool) -> Result<Vec<(&'static str, Vec<String>)>> {
    let mut results = invariants::check(pool).await?;
    for (name, sql) in student_rules::CHECKS {
        results.push((*name, sqlx::query_scalar(sql).fetch_all(pool).await?));
    }
    results.push(("swaps under way", swaps::under_way(pool).await?));
    results.extend(decisions::check(pool).await?);
    Ok(results)
}

/// Run the checks; the process exit status.
pub async fn run(opts: VerifyOptions) -> Result<ExitCode> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&opts.database_url)
        .await
        .map_err(|source| VerifyError::Db {
            context: format!("cannot connect to {}", redact(&opts.database_url)),
            source,
        })?;
    let mut report = Report::default();
    for (name, found) in database_checks(&pool).await? {
        report.check(name, found);
    }
    let mut acks_line = String::new();
    if !opts.acks.is_empty() {
        let lines = acks::read(&opts.acks)?;
        let (found, checked, uncertain) = acks::check(&pool, &lines).await?;
        report.check("acknowledged decisions are durable", found);
        let (by_check, swaps, changed) = swaps::check_logged(&pool, &lines).await?;
        for (name, found) in by_check {
            report.check(name, found);
        }
        let (replays, keys) = swaps::idempotent_replays(&pool, &lines).await?;
        report.check("idempotency keys replay the first answer", replays);
        acks_line = format!(
            ", {checked} acknowledged (student, section) pairs checked ({uncertain} uncertain skipped), \
             {swaps} swaps checked ({changed} changed later), {keys} idempotency keys checked"
        );
    }
    let counts = invariants::summary(&pool).await?;
    pool.close().await;
    let counts = format!("{counts}{acks_line}");
    if report.total() > 0 {
        report.print();
        println!(
            "verify: FAILED: {} violations over {counts}",
            report.total()
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("verify: OK: {counts}");
    Ok(ExitCode::SUCCESS)
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact("postgres://registrar:secret@127.0.0.1:5432/db"),
            "postgres://***@127.0.0.1:5432/db"
        );
        assert_eq!(redact("postgres://localhost/db"), "postgres://localhost/db");
    }
}
