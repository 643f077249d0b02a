//! The acknowledgement log (`--acks FILE`): one JSON line per decision the server
//! acknowledged, so `verify` can later check that every acknowledged decision is in the
//! database ("acknowledged means durable"):
//!
//! ```json
//! {"t_ms":1795305600123,"student_id":"…","section_id":"…","op":"enroll","result":"enrolled"}
//! ```
//!
//! `op` is `enroll`, `drop`, `swap_add` or `swap_drop`; `result` is `enrolled`,
//! `waitlisted` or `dropped`. A state-changing request that got NO final answer (5xx,
//! timeout, broken connection) is logged with `"result":"unknown"`: the server may still
//! decide it (a `decision_pending` command stays queued), so the verifier does not hold
//! the database to an older acknowledgement of the same student and section.
//!
//! A request that carried an `Idempotency-Key` (the careful client's) also records `key`
//! and the final answer's `status`, so `verify` can check that the key's stored first
//! answer is the one the client kept.
//!
//! `t_ms` is Unix milliseconds when the answer arrived, taken from a monotonic clock so it
//! never goes backwards within a run. Lines of one user are written in the order that user
//! received its answers (a user is one student, its requests are sequential).

use crate::clock::now_ms;
use crate::wire::Answer;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use uuid::Uuid;

/// What the acknowledged request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckOp {
    /// `POST /sections/{id}/enrollments`.
    Enroll,
    /// `DELETE /sections/{id}/enrollments/me`.
    Drop,
    /// The `add` half of a swap.
    SwapAdd,
    /// The `drop` half of a swap.
    SwapDrop,
}

/// What the server acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckResult {
    /// 201 (or the add half of a swap).
    Enrolled,
    /// 202.
    Waitlisted,
    /// 200 of a drop (or the drop half of a swap).
    Dropped,
    /// No final answer: the outcome is not known.
    Unknown,
}

#[derive(Serialize)]
struct Line {
    t_ms: i64,
    student_id: Uuid,
    section_id: Uuid,
    op: AckOp,
    result: AckResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
}

struct AckLog {
    out: Mutex<BufWriter<File>>,
}

static LOG: OnceLock<AckLog> = OnceLock::new();

/// Open (append to) the log; without a call, [`record`] does nothing.
pub fn open(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let _ = LOG.set(AckLog {
        out: Mutex::new(BufWriter::new(file)),
    });
    now_ms();
    Ok(())
}

/// Log one acknowledgement (or unknown outcome) of `answer`.
pub fn record(student: Uuid, section: Uuid, op: AckOp, result: AckResult, answer: &Answer) {
    let Some(log) = LOG.get() else { return };
    let line = Line {
        t_ms: now_ms(),
        student_id: student,
        section_id: section,
        op,
        result,
        key: answer.key.clone(),
        status: (answer.key.is_some() && answer.status != 0).then_some(answer.status),
    };
    let mut out = log.out.lock().unwrap_or_else(|e| e.into_inner());
    // A full disk must not stop the load; the verifier would then report missing lines
    // as nothing, which is safe.
    let _ = serde_json::to_writer(&mut *out, &line);
    let _ = out.write_all(b"\n");
}

/// Flush the log at the end of the run.
pub fn finish() -> std::io::Result<()> {
    match LOG.get() {
        Some(log) => log.out.lock().unwrap_or_else(|e| e.into_inner()).flush(),
        None => Ok(()),
    }
}
