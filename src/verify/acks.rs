//! Check 6: every decision the server acknowledged during a load run (the JSONL logs of
//! `registrar-loadtest --acks`) is in the database. Also reads the logs for the swap and
//! idempotency checks (`swaps`).

use super::{Result, VerifyError};
use serde::Deserialize;
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// One line of an acks file.
#[derive(Deserialize)]
pub(super) struct AckLine {
    /// When the answer arrived (Unix ms).
    pub t_ms: i64,
    /// Who.
    pub student_id: Uuid,
    /// Where.
    pub section_id: Uuid,
    /// `enroll`, `drop`, `swap_add`, `swap_drop`.
    pub op: String,
    /// `enrolled`, `waitlisted`, `dropped`, `unknown`.
    pub result: String,
    /// The request's `Idempotency-Key`, when it carried one (logs written before keys
    /// were recorded have none).
    #[serde(default)]
    pub key: Option<String>,
    /// The HTTP status of the final answer (absent in older logs and for `unknown`).
    #[serde(default)]
    pub status: Option<i16>,
}

/// Every line of `files`, in `t_ms` order (file order for equal stamps: one user's lines
/// are in the order it got its answers).
pub(super) fn read(files: &[std::path::PathBuf]) -> Result<Vec<AckLine>> {
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
    Ok(lines)
}

/// (violations, pairs checked, pairs skipped as uncertain).
pub(super) async fn check(pool: &PgPool, lines: &[AckLine]) -> Result<(Vec<String>, usize, usize)> {
    let mut last: HashMap<(Uuid, Uuid), &AckLine> = HashMap::new();
    for line in lines {
        last.insert((line.student_id, line.section_id), line);
    }
    let active = active_places(pool).await?;
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

/// Every active place: (student, section) -> `enrolled` or `waitlisted`.
pub(super) async fn active_places(pool: &PgPool) -> Result<HashMap<(Uuid, Uuid), String>> {
    Ok(sqlx::query_as::<_, ActivePlace>(
        "SELECT student_id, section_id, status FROM enrollments WHERE status <> 'dropped'",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|p| ((p.student_id, p.section_id), p.status))
    .collect())
}

/// An active place in the database.
#[derive(sqlx::FromRow)]
struct ActivePlace {
    /// Who.
    student_id: Uuid,
    /// Where.
    section_id: Uuid,
    /// `enrolled` or `waitlisted`.
    status: String,
}
