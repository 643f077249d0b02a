//! Storage of the first answers to requests that carried an `Idempotency-Key`, and the
//! lookup that also finds decisions already on record for them in the audit trail (the
//! rules around them live in `service::idempotency`).

use super::DbResult;
use super::audit::AttemptOutcome;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

/// A stored answer: HTTP status and JSON body.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct StoredAnswer {
    /// HTTP status of the first answer.
    pub status: i16,
    /// Its JSON body.
    pub body: serde_json::Value,
}

/// A decision on record for a request id (an audit row, written in the decision's commit).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Decided {
    /// The request (or part of a compound request).
    pub request_id: Uuid,
    /// `enroll` or `drop`.
    pub action: String,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The refusal code (refused only).
    pub code: Option<String>,
    /// Waitlist position on joining (waitlisted only).
    pub position: Option<i32>,
    /// Whether a drop promoted the waitlist head (drops only; unknown on older rows).
    pub promoted: Option<bool>,
    /// Whether a drop was a withdrawal (read from the decision's recorded outcome).
    #[serde(default)]
    pub withdrawn: bool,
    /// When it was decided.
    pub at: DateTime<Utc>,
}

/// What is on record for a keyed request.
#[derive(Debug)]
pub struct Prior {
    /// The stored first answer with the fingerprint of its request, if any (and not past
    /// the retention).
    pub answer: Option<(StoredAnswer, Option<Uuid>)>,
    /// Decisions on record under the given request ids.
    pub decided: Vec<Decided>,
}

#[derive(sqlx::FromRow)]
struct PriorRow {
    status: Option<i16>,
    body: Option<serde_json::Value>,
    fingerprint: Option<Uuid>,
    decided: Json<Vec<Decided>>,
}

/// The stored answer for (student, key) younger than `retention_secs`, and the decisions
/// on record for `requests`, in one round trip.
pub async fn prior(
    pool: &PgPool,
    student: Uuid,
    key: &str,
    requests: &[Uuid],
    retention_secs: f64,
) -> DbResult<Prior> {
    let row: PriorRow = sqlx::query_as(
        "SELECT k.status, k.body, k.fingerprint,
                COALESCE((SELECT json_agg(json_build_object(
                              'request_id', a.request_id, 'action', a.action,
                              'outcome', a.outcome, 'code', a.code, 'position', a.position,
                              'promoted', a.promoted,
                              'withdrawn', COALESCE((a.decided->>'withdrawn')::boolean, false),
                              'at', a.created_at) ORDER BY a.id)
                            FROM registration_attempts a
                           WHERE a.student_id = $1 AND a.request_id = ANY($3)), '[]') AS decided
           FROM (SELECT 1) AS one
           LEFT JOIN idempotency_keys k
                  ON k.student_id = $1 AND k.key = $2
                 AND k.created_at > now() - make_interval(secs => $4)",
    )
    .bind(student)
    .bind(key)
    .bind(requests)
    .bind(retention_secs)
    .fetch_one(pool)
    .await?;
    let answer = match (row.status, row.body) {
        (Some(status), Some(body)) => Some((StoredAnswer { status, body }, row.fingerprint)),
        _ => None,
    };
    Ok(Prior {
        answer,
        decided: row.decided.0,
    })
}

/// Store the first answer for (student, key) with its request's fingerprint (replacing
/// one older than `retention_secs`); if a live one is already stored (a concurrent request
/// with the same key got there first), it is returned with its fingerprint instead.
pub async fn store_answer(
    pool: &PgPool,
    student: Uuid,
    key: &str,
    fingerprint: Uuid,
    answer: StoredAnswer,
    retention_secs: f64,
) -> DbResult<(StoredAnswer, Option<Uuid>)> {
    let row: PriorRow = sqlx::query_as(
        "WITH inserted AS (
             INSERT INTO idempotency_keys (student_id, key, status, body, fingerprint)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (student_id, key) DO UPDATE
                SET status = EXCLUDED.status, body = EXCLUDED.body,
                    fingerprint = EXCLUDED.fingerprint, created_at = now()
              WHERE idempotency_keys.created_at <= now() - make_interval(secs => $6)
             RETURNING status, body, fingerprint)
         SELECT status, body, fingerprint, '[]'::json AS decided FROM inserted
         UNION ALL
         SELECT status, body, fingerprint, '[]'::json FROM idempotency_keys
          WHERE student_id = $1 AND key = $2 AND NOT EXISTS (SELECT 1 FROM inserted)",
    )
    .bind(student)
    .bind(key)
    .bind(answer.status)
    .bind(&answer.body)
    .bind(fingerprint)
    .bind(retention_secs)
    .fetch_one(pool)
    .await?;
    Ok(match (row.status, row.body) {
        (Some(status), Some(body)) => (StoredAnswer { status, body }, row.fingerprint),
        _ => (answer, Some(fingerprint)),
    })
}
