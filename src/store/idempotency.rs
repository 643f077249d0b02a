//! Storage of the first answers to requests that carried an `Idempotency-Key` (the
//! rules around them live in `service::idempotency`).

use super::DbResult;
use sqlx::PgPool;
use uuid::Uuid;

/// A stored answer: HTTP status and JSON body.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct StoredAnswer {
    /// HTTP status of the first answer.
    pub status: i16,
    /// Its JSON body.
    pub body: serde_json::Value,
}

/// The stored answer for (student, key), if any.
pub async fn stored_answer(
    pool: &PgPool,
    student: Uuid,
    key: &str,
) -> DbResult<Option<StoredAnswer>> {
    Ok(sqlx::query_as(
        "SELECT status, body FROM idempotency_keys WHERE student_id = $1 AND key = $2",
    )
    .bind(student)
    .bind(key)
    .fetch_optional(pool)
    .await?)
}

/// Store the first answer for (student, key); if one is already stored, return it instead.
pub async fn store_answer(
    pool: &PgPool,
    student: Uuid,
    key: &str,
    answer: StoredAnswer,
) -> DbResult<StoredAnswer> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (student_id, key, status, body) VALUES ($1, $2, $3, $4)
         ON CONFLICT (student_id, key) DO NOTHING",
    )
    .bind(student)
    .bind(key)
    .bind(answer.status)
    .bind(&answer.body)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(answer);
    }
    Ok(stored_answer(pool, student, key).await?.unwrap_or(answer))
}
