//! Checks 10-13: swaps and idempotency keys, judged from the acknowledgement log and the
//! final database.
//!
//! - *acknowledged swaps hold*: a swap answered 200 `swapped` (a `swap_add` line and a
//!   `swap_drop` line of one student, in that order) ends with the student seated in
//!   `add` and with no active place in `drop`, unless a later line of that student on
//!   either section (any request, answered or not) changed it. Violations are counted
//!   apart: in neither, in both, reversed (back in `drop` only);
//! - *unanswered swaps end in one section*: a swap without a final answer (`unknown`) may
//!   have gone either way, but it ends in exactly one of its two sections;
//! - *swaps under way*: no `swap_intents` row older than a bound
//!   (`REGISTRAR_VERIFY_SWAPS_SETTLED_SECS`, default 30 s) remains: the finisher would
//!   have ended it;
//! - *idempotency keys replay the first answer*: an acknowledged line that records its
//!   `Idempotency-Key` and final status (the careful client's) has the status the server
//!   stored with the key when it first answered (`idempotency_keys.status`): whatever
//!   the retries saw, the answer the client kept is the first one. Lines without a key
//!   (the plain client, older logs) are not checked.

use super::Result;
use super::acks::{AckLine, active_places};
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// Default age (seconds) past which a swap under way counts as stuck.
const SETTLED_SECS: i64 = 30;

/// The age (seconds) past which work left under way counts as stuck: a swap here, a
/// decision over several sections in `decisions` (`REGISTRAR_VERIFY_SWAPS_SETTLED_SECS`).
pub(super) fn settled_secs() -> i64 {
    std::env::var("REGISTRAR_VERIFY_SWAPS_SETTLED_SECS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(SETTLED_SECS)
}

/// One swap found in the log.
struct LoggedSwap<'a> {
    add: &'a AckLine,
    drop: &'a AckLine,
    /// Index of the `swap_drop` line (later lines may change the outcome).
    at: usize,
}

/// The swaps of `lines` (sorted as `acks::read` returns them).
fn swaps(lines: &[AckLine]) -> Vec<LoggedSwap<'_>> {
    let mut pending: HashMap<Uuid, &AckLine> = HashMap::new();
    let mut found = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        match line.op.as_str() {
            "swap_add" => {
                pending.insert(line.student_id, line);
            }
            "swap_drop" => {
                if let Some(add) = pending.remove(&line.student_id) {
                    found.push(LoggedSwap {
                        add,
                        drop: line,
                        at,
                    });
                }
            }
            _ => {}
        }
    }
    found
}

/// The swap checks' names, by (answered, outcome).
pub(super) const SWAP_CHECKS: &[&str] = &[
    "swaps: acknowledged, in neither",
    "swaps: acknowledged, in both",
    "swaps: acknowledged, reversed",
    "swaps: unanswered, in neither",
    "swaps: unanswered, in both",
];

/// (violations per check of [`SWAP_CHECKS`], swaps checked, skipped because a later
/// request of the student changed them).
pub(super) async fn check_logged(
    pool: &PgPool,
    lines: &[AckLine],
) -> Result<(Vec<(&'static str, Vec<String>)>, usize, usize)> {
    let active = active_places(pool).await?;
    // The last line index per (student, section).
    let mut last: HashMap<(Uuid, Uuid), usize> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        last.insert((line.student_id, line.section_id), i);
    }
    let mut found: Vec<(&'static str, Vec<String>)> =
        SWAP_CHECKS.iter().map(|n| (*n, Vec::new())).collect();
    let (mut checked, mut changed) = (0, 0);
    for swap in swaps(lines) {
        let student = swap.add.student_id;
        let (add, drop) = (swap.add.section_id, swap.drop.section_id);
        let later = |section| last.get(&(student, section)).is_some_and(|&i| i > swap.at);
        if later(add) || later(drop) {
            changed += 1;
            continue;
        }
        checked += 1;
        let in_add = active.get(&(student, add)).map(String::as_str) == Some("enrolled");
        let in_drop = active.contains_key(&(student, drop));
        let answered = swap.add.result != "unknown" && swap.drop.result != "unknown";
        let check = match (answered, in_add, in_drop) {
            (true, true, false) | (false, true, false) | (false, false, true) => continue,
            (true, false, false) => 0,
            (true, true, true) => 1,
            (true, false, true) => 2,
            (false, false, false) => 3,
            (false, true, true) => 4,
        };
        found[check].1.push(format!(
            "student {student}: swap of {drop} for {add} ({}, t_ms {}); database: add {}, drop {}",
            if answered {
                "acknowledged"
            } else {
                "no answer"
            },
            swap.drop.t_ms,
            place(&active, student, add),
            place(&active, student, drop)
        ));
    }
    for (_, lines) in &mut found {
        lines.sort();
    }
    Ok((found, checked, changed))
}

fn place(active: &HashMap<(Uuid, Uuid), String>, student: Uuid, section: Uuid) -> &str {
    active
        .get(&(student, section))
        .map(String::as_str)
        .unwrap_or("no active place")
}

/// Swaps under way older than the bound.
pub(super) async fn under_way(pool: &PgPool) -> Result<Vec<String>> {
    let secs = settled_secs();
    Ok(sqlx::query_scalar(
        "SELECT format('swap %s of student %s (drop %s, add %s) under way since %s (%s s ago)',
                       request_id, student_id, drop_section, add_section, created_at,
                       round(extract(epoch FROM now() - created_at)))
           FROM swap_intents
          WHERE created_at < now() - make_interval(secs => $1)
          ORDER BY created_at",
    )
    .bind(secs as f64)
    .fetch_all(pool)
    .await?)
}

/// Acknowledged lines whose key's stored answer has another status; (violations, keys
/// checked).
pub(super) async fn idempotent_replays(
    pool: &PgPool,
    lines: &[AckLine],
) -> Result<(Vec<String>, usize)> {
    let keyed: Vec<(&AckLine, &str, i16)> = lines
        .iter()
        .filter(|l| l.result != "unknown")
        .filter_map(|l| Some((l, l.key.as_deref()?, l.status?)))
        .collect();
    if keyed.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let students: Vec<Uuid> = keyed.iter().map(|(l, _, _)| l.student_id).collect();
    let keys: Vec<String> = keyed.iter().map(|(_, k, _)| k.to_string()).collect();
    let stored: HashMap<(Uuid, String), i16> = sqlx::query_as::<_, (Uuid, String, i16)>(
        "SELECT i.student_id, i.key, i.status FROM idempotency_keys i
           JOIN unnest($1::uuid[], $2::text[]) AS k(student_id, key)
             ON k.student_id = i.student_id AND k.key = i.key",
    )
    .bind(&students)
    .bind(&keys)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(s, k, st)| ((s, k), st))
    .collect();
    let mut found = Vec::new();
    let mut checked = 0;
    for (line, key, status) in keyed {
        // A swap logs two lines for one key; judge it once.
        if line.op == "swap_drop" {
            continue;
        }
        let Some(&first) = stored.get(&(line.student_id, key.to_string())) else {
            continue;
        };
        checked += 1;
        if first != status {
            found.push(format!(
                "student {} key {key}: {} on section {} was answered {status} at t_ms {}, \
                 but the key's first answer was {first}",
                line.student_id, line.op, line.section_id, line.t_ms
            ));
        }
    }
    found.sort();
    Ok((found, checked))
}
