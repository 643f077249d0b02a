//! The audit trail of refusals decided outside the section actors (student rules), and the
//! stored first answers of requests that carried an `Idempotency-Key`.

use super::{DbError, DbResult};
use sqlx::PgPool;
use uuid::Uuid;

/// Record a refused attempt.
pub async fn record_refusal(
    pool: &PgPool,
    request: Uuid,
    student: Uuid,
    section: Uuid,
    action: &str,
    code: &str,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO registration_attempts (request_id, student_id, section_id, action, outcome, code)
         VALUES ($1, $2, $3, $4, 'refused', $5)",
    )
    .bind(request)
    .bind(student)
    .bind(section)
    .bind(action)
    .bind(code)
    .execute(pool)
    .await?;
    Ok(())
}

/// The stored answer for (student, key), if any.
pub async fn stored_answer(
    pool: &PgPool,
    student: Uuid,
    key: &str,
) -> DbResult<Option<(u16, serde_json::Value)>> {
    let row: Option<(i16, serde_json::Value)> = sqlx::query_as(
        "SELECT status, body FROM idempotency_keys WHERE student_id = $1 AND key = $2",
    )
    .bind(student)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(s, b)| (s as u16, b)))
}

/// Store the first answer for (student, key); if one is already stored, return it instead.
pub async fn store_answer(
    pool: &PgPool,
    student: Uuid,
    key: &str,
    status: u16,
    body: &serde_json::Value,
) -> DbResult<(u16, serde_json::Value)> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (student_id, key, status, body) VALUES ($1, $2, $3, $4)
         ON CONFLICT (student_id, key) DO NOTHING",
    )
    .bind(student)
    .bind(key)
    .bind(status as i16)
    .bind(body)
    .execute(pool)
    .await
    .map_err(DbError::from_sqlx)?;
    if inserted.rows_affected() == 1 {
        return Ok((status, body.clone()));
    }
    Ok(stored_answer(pool, student, key)
        .await?
        .unwrap_or((status, body.clone())))
}
