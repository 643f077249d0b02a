//! Time tickets: a student's registration appointment in a term (`time_tickets`).

use super::DbResult;
use crate::resources::{NewTimeTicket, TimeTicketView};
use uuid::Uuid;

/// Set (or replace) `student`'s ticket in `term`.
pub async fn upsert<'e>(
    db: impl sqlx::PgExecutor<'e>,
    term: Uuid,
    student: Uuid,
    t: &NewTimeTicket,
) -> DbResult<TimeTicketView> {
    Ok(sqlx::query_as(
        "INSERT INTO time_tickets (term_id, student_id, opens_at, closes_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (student_id, term_id)
           DO UPDATE SET opens_at = EXCLUDED.opens_at, closes_at = EXCLUDED.closes_at
         RETURNING term_id, student_id, opens_at, closes_at",
    )
    .bind(term)
    .bind(student)
    .bind(t.opens_at)
    .bind(t.closes_at)
    .fetch_one(db)
    .await?)
}

/// Remove `student`'s ticket in `term`; whether there was one.
pub async fn remove<'e>(
    db: impl sqlx::PgExecutor<'e>,
    term: Uuid,
    student: Uuid,
) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM time_tickets WHERE term_id = $1 AND student_id = $2")
        .bind(term)
        .bind(student)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// `student`'s tickets, earliest opening first.
pub async fn of_student<'e>(
    db: impl sqlx::PgExecutor<'e>,
    student: Uuid,
) -> DbResult<Vec<TimeTicketView>> {
    Ok(sqlx::query_as(
        "SELECT term_id, student_id, opens_at, closes_at FROM time_tickets
          WHERE student_id = $1 ORDER BY opens_at, term_id",
    )
    .bind(student)
    .fetch_all(db)
    .await?)
}
