//! Decisions over several sections (`decisions`): the one row where a linked set's
//! decision is made (see `service::bundle`). It is written pending before any seat is
//! held, and leaves pending exactly once, by a conditional UPDATE: confirmed only while
//! its deadline (by the database clock) has not passed, cancelled at any time. Whoever
//! carries the decision out reads the state back and follows it.

use super::DbResult;
use super::text_enum::text_enum;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

text_enum! {
    /// Where a decision stands (`decisions.state`).
    DecisionState {
        /// Seats are being held; nothing is decided yet.
        Pending = "pending",
        /// Every seat was held: they become enrollments.
        Confirmed = "confirmed",
        /// A seat could not be held (or the deadline passed): every hold is released.
        Cancelled = "cancelled",
    }
}

/// One decision row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DecisionRow {
    /// The decision.
    pub id: Uuid,
    /// The student's request that asked for it.
    pub request_id: Uuid,
    /// The student.
    pub student_id: Uuid,
    /// `pending`, `confirmed` or `cancelled`.
    pub state: DecisionState,
    /// Sections a seat is held in.
    pub take: Vec<Uuid>,
    /// Sections left once confirmed.
    pub leave: Vec<Uuid>,
    /// Why it was cancelled.
    pub reason: Option<String>,
    /// The section whose refusal cancelled it.
    pub refused_by: Option<Uuid>,
    /// When it left pending.
    pub decided_at: Option<DateTime<Utc>>,
    /// When every part was carried out.
    pub finished_at: Option<DateTime<Utc>>,
    /// The sections left are withdrawn from (a set dropped after the drop deadline):
    /// judged once, when the decision was made, so every carrier leaves the same W.
    pub withdraw: bool,
}

const COLUMNS: &str = "id, request_id, student_id, state, take, leave, reason, refused_by, \
                       decided_at, finished_at, withdraw";

/// Record a pending decision `id` for `request` that must be confirmed within
/// `deadline_ms`; with `withdraw`, the sections it leaves are withdrawn from.
#[allow(clippy::too_many_arguments)]
pub async fn begin(
    pool: &PgPool,
    id: Uuid,
    request: Uuid,
    student: Uuid,
    take: &[Uuid],
    leave: &[Uuid],
    deadline_ms: u64,
    withdraw: bool,
) -> DbResult<DecisionRow> {
    sqlx::query(
        "INSERT INTO decisions (id, request_id, student_id, take, leave, deadline, withdraw)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::float8 / 1000), $7)",
    )
    .bind(id)
    .bind(request)
    .bind(student)
    .bind(take)
    .bind(leave)
    .bind(deadline_ms as f64)
    .bind(withdraw)
    .execute(pool)
    .await?;
    get(pool, id)
        .await?
        .ok_or_else(|| super::DbError::Other(format!("decision {id} vanished")))
}

/// The decision `id`, if recorded.
pub async fn get(pool: &PgPool, id: Uuid) -> DbResult<Option<DecisionRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM decisions WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// The latest decision made for `request` of `student`, if any.
pub async fn latest_for(
    pool: &PgPool,
    student: Uuid,
    request: Uuid,
) -> DbResult<Option<DecisionRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM decisions WHERE request_id = $1 AND student_id = $2
          ORDER BY created_at DESC, id LIMIT 1"
    ))
    .bind(request)
    .bind(student)
    .fetch_optional(pool)
    .await?)
}

/// Whether a cancelled decision's `reason` is a want of an answer (the section, the
/// database or the home failed) rather than a refusal: a retry is decided afresh.
pub fn transient(reason: Option<&str>) -> bool {
    matches!(reason, None | Some("unavailable" | "expired" | "abandoned"))
}

/// Confirm the decision if it is still pending and within its deadline; a pending one past
/// its deadline is cancelled (`expired`) instead. Returns the row as it stands after.
pub async fn confirm(pool: &PgPool, id: Uuid) -> DbResult<DecisionRow> {
    sqlx::query(
        "UPDATE decisions SET state = 'confirmed', decided_at = now()
          WHERE id = $1 AND state = 'pending' AND deadline > now()",
    )
    .bind(id)
    .execute(pool)
    .await?;
    cancel(pool, id, "expired", None).await
}

/// Cancel the decision if it is still pending (for `reason`, refused by `by`). Returns the
/// row as it stands after: a decision confirmed before stays confirmed.
pub async fn cancel(
    pool: &PgPool,
    id: Uuid,
    reason: &str,
    by: Option<Uuid>,
) -> DbResult<DecisionRow> {
    sqlx::query(
        "UPDATE decisions SET state = 'cancelled', decided_at = now(), reason = $2, refused_by = $3
          WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .bind(reason)
    .bind(by)
    .execute(pool)
    .await?;
    get(pool, id)
        .await?
        .ok_or_else(|| super::DbError::Other(format!("decision {id} vanished")))
}

/// Every part of the decision was carried out.
pub async fn finish(pool: &PgPool, id: Uuid) -> DbResult<()> {
    sqlx::query(
        "UPDATE decisions SET finished_at = now() WHERE id = $1 AND state <> 'pending'
            AND finished_at IS NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// `student`'s decisions not carried out yet, oldest first.
pub async fn unfinished_of(pool: &PgPool, student: Uuid) -> DbResult<Vec<DecisionRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM decisions WHERE student_id = $1 AND finished_at IS NULL
          ORDER BY created_at, id"
    ))
    .bind(student)
    .fetch_all(pool)
    .await?)
}

/// Students with a decision left unfinished by its own request: pending past its
/// deadline, or decided more than `grace_ms` ago and not carried out (by the database
/// clock); at most `limit`, longest waiting first.
pub async fn stale_students(pool: &PgPool, grace_ms: i64, limit: i64) -> DbResult<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT student_id FROM decisions
          WHERE finished_at IS NULL
            AND ((state = 'pending' AND deadline < now())
                 OR decided_at < now() - make_interval(secs => $1::float8 / 1000))
          GROUP BY student_id ORDER BY min(created_at) LIMIT $2",
    )
    .bind(grace_ms as f64)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A seat held in a section this node owns for a decision that has ended (or is pending
/// past its deadline) more than `grace_ms` ago: one its home has not carried out, or a hold
/// that arrived after its release was decided.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StaleHold {
    /// The section.
    pub section_id: Uuid,
    /// The student.
    pub student_id: Uuid,
    /// The hold's request id.
    pub request_id: Uuid,
    /// The decision.
    pub decision_id: Uuid,
    /// Its state.
    pub state: DecisionState,
}

/// Stale held seats (see [`StaleHold`]) in sections whose shard `node` owns, at most
/// `limit`.
pub async fn stale_holds(
    pool: &PgPool,
    node: &str,
    grace_ms: i64,
    limit: i64,
) -> DbResult<Vec<StaleHold>> {
    Ok(sqlx::query_as(
        "SELECT e.section_id, e.student_id, e.request_id, e.decision_id, d.state
           FROM enrollments e
           JOIN decisions d ON d.id = e.decision_id
           JOIN sections s ON s.id = e.section_id
           JOIN shard_owners o ON o.shard = s.shard
          WHERE e.status = 'held' AND o.node_id = $1
            AND ((d.state = 'pending' AND d.deadline < now() - make_interval(secs => $2::float8 / 1000))
                 OR d.decided_at < now() - make_interval(secs => $2::float8 / 1000))
          LIMIT $3",
    )
    .bind(node)
    .bind(grace_ms as f64)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
