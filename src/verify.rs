//! `registrar verify` (also `registrar-loadtest verify`): after a load run, check a registrar database against the
//! invariants of docs/architecture.md and, given `--acks`, against every decision the
//! server acknowledged during the run. Prints each violation and exits 1 on any; prints
//! one summary line when clean.
//!
//! Checks:
//! 1. no oversell: `seats_taken <= capacity` and enrolled rows `<= capacity`;
//! 2. counters equal the rows (`seats_taken`, `waitlist_length`); the waitlist within its
//!    capacity; nobody waits while a seat is free;
//! 3. one active place per (section, student);
//! 4. waitlist order: `waitlist_seq` unique per section and below `next_waitlist_seq`;
//!    FIFO: every promoted entry is older than every entry still waiting (positions are
//!    the rank by seq, so unique seqs and exact counters make them contiguous);
//! 5. one outbox event per committed change, per section and routing key:
//!    `enrollment.created` = rows created with a seat (no seq), `waitlist.added` = rows
//!    with a seq, `waitlist.promoted` = rows with a seq that got a seat, `enrollment.dropped`
//!    = dropped rows; event ids unique;
//! 6. acknowledgements: for each (student, section), the last acknowledgement in `t_ms`
//!    order holds: `enrolled` → holds a seat; `waitlisted` → waiting or (promoted) seated;
//!    `dropped` → no active place. Pairs whose last line is an `unknown` outcome are
//!    skipped and counted as uncertain.

use crate::events::payload::EventKind;
use serde::Deserialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use uuid::Uuid;

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
    report.check("no oversell", oversell(&pool).await?);
    report.check("counters match rows", counters(&pool).await?);
    report.check("one active place", duplicates(&pool).await?);
    report.check("waitlist order", waitlist(&pool).await?);
    report.check("outbox: one event per change", outbox(&pool).await?);
    let mut acks_line = String::new();
    if !opts.acks.is_empty() {
        let (found, checked, uncertain) = acknowledgements(&pool, &opts.acks).await?;
        report.check("acknowledged decisions are durable", found);
        acks_line = format!(
            ", {checked} acknowledged (student, section) pairs checked ({uncertain} uncertain skipped)"
        );
    }
    let (sections, rows, enrolled, waiting, dropped, events): (i64, i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM sections),
                    count(*), count(*) FILTER (WHERE status = 'enrolled'),
                    count(*) FILTER (WHERE status = 'waitlisted'),
                    count(*) FILTER (WHERE status = 'dropped'),
                    (SELECT count(*) FROM outbox)
               FROM enrollments",
        )
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    let counts = format!(
        "{sections} sections, {rows} enrollment rows ({enrolled} enrolled, {waiting} waitlisted, {dropped} dropped), {events} outbox events{acks_line}"
    );
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

async fn oversell(pool: &PgPool) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT s.id, s.capacity, s.seats_taken,
                (SELECT count(*) FROM enrollments e WHERE e.section_id = s.id AND e.status = 'enrolled') AS seated
           FROM sections s
          WHERE s.seats_taken > s.capacity
             OR (SELECT count(*) FROM enrollments e WHERE e.section_id = s.id AND e.status = 'enrolled') > s.capacity",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            format!(
                "section {}: capacity {}, seats_taken {}, enrolled rows {}",
                r.get::<Uuid, _>(0),
                r.get::<i32, _>(1),
                r.get::<i32, _>(2),
                r.get::<i64, _>(3)
            )
        })
        .collect())
}

async fn counters(pool: &PgPool) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT s.id, s.capacity, s.seats_taken, s.waitlist_length, s.waitlist_capacity,
                count(e.id) FILTER (WHERE e.status = 'enrolled') AS seated,
                count(e.id) FILTER (WHERE e.status = 'waitlisted') AS waiting
           FROM sections s
           LEFT JOIN enrollments e ON e.section_id = s.id AND e.status <> 'dropped'
          GROUP BY s.id
         HAVING s.seats_taken <> count(e.id) FILTER (WHERE e.status = 'enrolled')
             OR s.waitlist_length <> count(e.id) FILTER (WHERE e.status = 'waitlisted')
             OR s.waitlist_length > s.waitlist_capacity
             OR (count(e.id) FILTER (WHERE e.status = 'waitlisted') > 0
                 AND count(e.id) FILTER (WHERE e.status = 'enrolled') < s.capacity)",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            format!(
                "section {}: capacity {}, seats_taken {} vs {} enrolled rows, waitlist_length {} vs {} waitlisted rows (waitlist capacity {})",
                r.get::<Uuid, _>(0),
                r.get::<i32, _>(1),
                r.get::<i32, _>(2),
                r.get::<i64, _>(5),
                r.get::<i32, _>(3),
                r.get::<i64, _>(6),
                r.get::<i32, _>(4),
            )
        })
        .collect())
}

async fn duplicates(pool: &PgPool) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT section_id, student_id, count(*) FROM enrollments
          WHERE status <> 'dropped' GROUP BY 1, 2 HAVING count(*) > 1",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            format!(
                "student {} holds {} active places in section {}",
                r.get::<Uuid, _>(1),
                r.get::<i64, _>(2),
                r.get::<Uuid, _>(0)
            )
        })
        .collect())
}

async fn waitlist(pool: &PgPool) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let rows = sqlx::query(
        "SELECT section_id, waitlist_seq, count(*) FROM enrollments
          WHERE waitlist_seq IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1",
    )
    .fetch_all(pool)
    .await?;
    found.extend(rows.iter().map(|r| {
        format!(
            "section {}: waitlist_seq {} used {} times",
            r.get::<Uuid, _>(0),
            r.get::<i64, _>(1),
            r.get::<i64, _>(2)
        )
    }));
    let rows = sqlx::query(
        "SELECT e.section_id, max(e.waitlist_seq), s.next_waitlist_seq
           FROM enrollments e JOIN sections s ON s.id = e.section_id
          WHERE e.waitlist_seq IS NOT NULL
          GROUP BY e.section_id, s.next_waitlist_seq
         HAVING max(e.waitlist_seq) >= s.next_waitlist_seq",
    )
    .fetch_all(pool)
    .await?;
    found.extend(rows.iter().map(|r| {
        format!(
            "section {}: waitlist_seq {} issued but next_waitlist_seq is {} (a restart could reuse it)",
            r.get::<Uuid, _>(0),
            r.get::<i64, _>(1),
            r.get::<i64, _>(2)
        )
    }));
    let rows = sqlx::query(
        "SELECT section_id,
                max(waitlist_seq) FILTER (WHERE enrolled_at IS NOT NULL) AS newest_promoted,
                min(waitlist_seq) FILTER (WHERE status = 'waitlisted') AS oldest_waiting
           FROM enrollments
          WHERE waitlist_seq IS NOT NULL
          GROUP BY section_id
         HAVING max(waitlist_seq) FILTER (WHERE enrolled_at IS NOT NULL)
              > min(waitlist_seq) FILTER (WHERE status = 'waitlisted')",
    )
    .fetch_all(pool)
    .await?;
    found.extend(rows.iter().map(|r| {
        format!(
            "section {}: entry {} was promoted while older entry {} still waits (not FIFO)",
            r.get::<Uuid, _>(0),
            r.get::<i64, _>(1),
            r.get::<i64, _>(2)
        )
    }));
    Ok(found)
}

async fn outbox(pool: &PgPool) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "WITH expected AS (
             SELECT section_id, kind, count(*) AS n FROM (
                 SELECT section_id, CASE WHEN waitlist_seq IS NULL THEN $1 ELSE $2 END AS kind
                   FROM enrollments
                 UNION ALL
                 SELECT section_id, $3 FROM enrollments
                  WHERE waitlist_seq IS NOT NULL AND enrolled_at IS NOT NULL
                 UNION ALL
                 SELECT section_id, $4 FROM enrollments WHERE status = 'dropped'
             ) x GROUP BY 1, 2),
         actual AS (
             SELECT (payload->>'section_id')::uuid AS section_id, routing_key AS kind, count(*) AS n
               FROM outbox WHERE routing_key <> $5
              GROUP BY 1, 2)
         SELECT coalesce(e.section_id, a.section_id), coalesce(e.kind, a.kind),
                coalesce(e.n, 0), coalesce(a.n, 0)
           FROM expected e FULL JOIN actual a ON a.section_id = e.section_id AND a.kind = e.kind
          WHERE coalesce(e.n, 0) <> coalesce(a.n, 0)
          ORDER BY 1, 2",
    )
    .bind(EventKind::EnrollmentCreated.routing_key())
    .bind(EventKind::WaitlistAdded.routing_key())
    .bind(EventKind::WaitlistPromoted.routing_key())
    .bind(EventKind::EnrollmentDropped.routing_key())
    .bind(EventKind::CapacityChanged.routing_key())
    .fetch_all(pool)
    .await?;
    let mut found: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "section {}: {} changes of kind {} in enrollments but {} outbox events",
                r.get::<Option<Uuid>, _>(0)
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "(none)".into()),
                r.get::<i64, _>(2),
                r.get::<Option<String>, _>(1).unwrap_or_default(),
                r.get::<i64, _>(3)
            )
        })
        .collect();
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE payload->>'event_id' IS DISTINCT FROM event_id::text",
    )
    .fetch_one(pool)
    .await?;
    if mismatched > 0 {
        found.push(format!(
            "{mismatched} outbox rows whose payload event_id differs from the row's event_id"
        ));
    }
    Ok(found)
}

/// One line of an acks file.
#[derive(Deserialize)]
struct AckLine {
    t_ms: i64,
    student_id: Uuid,
    section_id: Uuid,
    op: String,
    result: String,
}

/// (violations, pairs checked, pairs skipped as uncertain).
async fn acknowledgements(
    pool: &PgPool,
    files: &[std::path::PathBuf],
) -> Result<(Vec<String>, usize, usize)> {
    // Stable sort by t_ms keeps file order for equal stamps (one user's lines are in
    // the order it got its answers).
    let mut lines: Vec<AckLine> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| {
            VerifyError::Acks(format!("cannot read acks file {}: {e}", file.display()))
        })?;
        for (i, raw) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let line: AckLine = serde_json::from_str(raw).map_err(|e| {
                VerifyError::Acks(format!(
                    "{}:{}: not an ack line: {e}",
                    file.display(),
                    i + 1
                ))
            })?;
            lines.push(line);
        }
    }
    lines.sort_by_key(|l| l.t_ms);
    let mut last: HashMap<(Uuid, Uuid), &AckLine> = HashMap::new();
    for line in &lines {
        last.insert((line.student_id, line.section_id), line);
    }
    let active: HashMap<(Uuid, Uuid), String> = sqlx::query_as::<_, (Uuid, Uuid, String)>(
        "SELECT student_id, section_id, status FROM enrollments WHERE status <> 'dropped'",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(student, section, status)| ((student, section), status))
    .collect();
    let mut found = Vec::new();
    let mut checked = 0;
    let mut uncertain = 0;
    for ((student, section), ack) in &last {
        let now = active.get(&(*student, *section)).map(String::as_str);
        let ok = match ack.result.as_str() {
            "enrolled" => now == Some("enrolled"),
            "waitlisted" => matches!(now, Some("waitlisted" | "enrolled")),
            "dropped" => now.is_none(),
            _ => {
                uncertain += 1;
                continue;
            }
        };
        checked += 1;
        if !ok {
            found.push(format!(
                "student {student} section {section}: {} acknowledged {} at t_ms {}, database has {}",
                ack.op,
                ack.result,
                ack.t_ms,
                now.unwrap_or("no active place")
            ));
        }
    }
    found.sort();
    Ok((found, checked, uncertain))
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
