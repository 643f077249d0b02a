//! Swaps under way (`swap_intents`): written before a swap's add, removed once the swap
//! has ended in exactly one of its two sections (see `service::swap`).

use super::DbResult;
use super::audit::AttemptOutcome;
use sqlx::PgPool;
use uuid::Uuid;

/// A swap under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SwapIntent {
    /// The swap's request id (its parts' ids derive from it).
    pub request_id: Uuid,
    /// The student.
    pub student_id: Uuid,
    /// The section to leave.
    pub drop_section: Uuid,
    /// The section to join.
    pub add_section: Uuid,
}

/// Record `intent` (again: a retry of the same swap keeps the first row).
pub async fn record(pool: &PgPool, intent: &SwapIntent) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO swap_intents (request_id, student_id, drop_section, add_section)
         VALUES ($1, $2, $3, $4) ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(intent.request_id)
    .bind(intent.student_id)
    .bind(intent.drop_section)
    .bind(intent.add_section)
    .execute(pool)
    .await?;
    Ok(())
}

/// The swap has ended in one of its two sections.
pub async fn finish(pool: &PgPool, request: Uuid) -> DbResult<()> {
    sqlx::query("DELETE FROM swap_intents WHERE request_id = $1")
        .bind(request)
        .execute(pool)
        .await?;
    Ok(())
}

/// `student`'s swaps under way, oldest first.
pub async fn of_student(pool: &PgPool, student: Uuid) -> DbResult<Vec<SwapIntent>> {
    Ok(sqlx::query_as(
        "SELECT request_id, student_id, drop_section, add_section FROM swap_intents
          WHERE student_id = $1 ORDER BY created_at, request_id",
    )
    .bind(student)
    .fetch_all(pool)
    .await?)
}

/// The students with a swap under way for at least `older_than_ms` (by the database
/// clock), at most `limit` of them, longest waiting first.
pub async fn stale_students(pool: &PgPool, older_than_ms: i64, limit: i64) -> DbResult<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT student_id FROM swap_intents
          WHERE created_at < now() - make_interval(secs => $1::float8 / 1000)
          GROUP BY student_id ORDER BY min(created_at) LIMIT $2",
    )
    .bind(older_than_ms as f64)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// How the two parts of a swap were decided, by the audit trail (see
/// [`parts_on_record`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartsOnRecord {
    /// The add's outcome (enrolled, refused) and when it was decided.
    pub add: Option<(AttemptOutcome, chrono::DateTime<chrono::Utc>)>,
    /// The drop's outcome (dropped, refused) and whether it promoted someone.
    pub drop: Option<(AttemptOutcome, Option<bool>)>,
}

/// The audit rows of `student`'s requests `add` and `drop` (a swap's two parts).
pub async fn parts_on_record(
    pool: &PgPool,
    student: Uuid,
    add: Uuid,
    drop: Uuid,
) -> DbResult<PartsOnRecord> {
    let rows: Vec<(
        Uuid,
        AttemptOutcome,
        Option<bool>,
        chrono::DateTime<chrono::Utc>,
    )> = sqlx::query_as(
        "SELECT request_id, outcome, promoted, created_at FROM registration_attempts
          WHERE student_id = $1 AND request_id = ANY($2) ORDER BY id",
    )
    .bind(student)
    .bind([add, drop])
    .fetch_all(pool)
    .await?;
    let mut parts = PartsOnRecord::default();
    for (request, outcome, promoted, at) in rows {
        if request == add {
            parts.add = Some((outcome, at));
        } else {
            parts.drop = Some((outcome, promoted));
        }
    }
    Ok(parts)
}
