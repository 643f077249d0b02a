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

/// Give every student of `standings` (all students when empty) a ticket in `term`, by
/// credits earned (the credits of their completed courses, most first; ties by username):
/// the first `group_size` open at `first`, the next group `step` later, and so on; each
/// closes at `closes_at` (or the window's close). Replaces their tickets in the term;
/// returns how many were assigned.
pub async fn assign_by_credits<'e>(
    db: impl sqlx::PgExecutor<'e>,
    term: Uuid,
    rule: &crate::resources::TicketRule,
) -> DbResult<u64> {
    let standings: Vec<&str> = rule.standings.iter().map(|s| s.as_str()).collect();
    let done = sqlx::query(
        "INSERT INTO time_tickets (term_id, student_id, opens_at, closes_at)
         SELECT $1, r.id,
                $2::timestamptz + ((r.n - 1) / $3) * make_interval(mins => $4), $5
           FROM (SELECT s.id, row_number() OVER (
                        ORDER BY COALESCE((SELECT sum(c.credits) FROM courses c
                                            WHERE c.code = ANY(s.completed_courses)), 0) DESC,
                                 s.username) AS n
                   FROM students s
                  WHERE s.role = 'student'
                    AND (cardinality($6::text[]) = 0 OR s.standing = ANY($6))) r
         ON CONFLICT (student_id, term_id)
           DO UPDATE SET opens_at = EXCLUDED.opens_at, closes_at = EXCLUDED.closes_at",
    )
    .bind(term)
    .bind(rule.first_opens_at)
    .bind(i64::from(rule.group_size))
    .bind(rule.step_minutes as i32)
    .bind(rule.closes_at)
    .bind(&standings)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
