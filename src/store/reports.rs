//! Reads of what the event consumers wrote: a student's notifications and a term's
//! registration figures.

use super::DbResult;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// One notification.
#[derive(Serialize, ToSchema, sqlx::FromRow)]
pub struct Notification {
    /// `enrolled`, `waitlisted`, `promoted`, `dropped`, `withdrawn`.
    pub kind: String,
    /// Human-readable text.
    pub message: String,
    /// Section concerned.
    pub section_id: Uuid,
    /// When the change was committed.
    pub created_at: DateTime<Utc>,
}

/// A student's latest notifications, newest first.
pub async fn notifications(
    pool: &PgPool,
    student: Uuid,
    limit: i64,
) -> DbResult<Vec<Notification>> {
    Ok(sqlx::query_as(
        "SELECT kind, message, section_id, created_at FROM notifications
          WHERE student_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(student)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Figures of one section.
#[derive(Serialize, ToSchema, sqlx::FromRow)]
pub struct SectionFigures {
    /// Section.
    pub section_id: Uuid,
    /// Course and section code, e.g. `CS101-01`.
    pub label: String,
    /// Seats taken (events).
    pub enrolled: i64,
    /// Waitlist entries added.
    pub waitlisted: i64,
    /// Drops.
    pub dropped: i64,
    /// Waitlist promotions.
    pub promoted: i64,
    /// Withdrawals (seats left after the drop deadline, with a W).
    pub withdrawn: i64,
    /// Seconds from the first event to the section filling up, if it did.
    pub time_to_fill_secs: Option<f64>,
}

/// Enrollments in one minute.
#[derive(Serialize, ToSchema, sqlx::FromRow)]
pub struct MinuteFigure {
    /// Start of the minute.
    pub minute: DateTime<Utc>,
    /// Seats taken in it (enrollments and promotions).
    pub enrolled: i64,
}

/// Figures of one term.
#[derive(Serialize, ToSchema)]
pub struct TermFigures {
    /// Term.
    pub term_id: Uuid,
    /// Sums over the sections.
    pub totals: Totals,
    /// Per section, busiest first.
    pub sections: Vec<SectionFigures>,
    /// Seats taken per minute.
    pub per_minute: Vec<MinuteFigure>,
}

/// Sums over a term.
#[derive(Serialize, ToSchema, Default)]
pub struct Totals {
    /// Seats taken.
    pub enrolled: i64,
    /// Waitlist entries added.
    pub waitlisted: i64,
    /// Drops.
    pub dropped: i64,
    /// Promotions.
    pub promoted: i64,
    /// Withdrawals.
    pub withdrawn: i64,
}

/// The analytics of `term`.
pub async fn term_figures(pool: &PgPool, term: Uuid) -> DbResult<TermFigures> {
    let sections: Vec<SectionFigures> = sqlx::query_as(
        "SELECT st.section_id, s.course_code || '-' || s.section_code AS label,
                st.enrolled, st.waitlisted, st.dropped, st.promoted, st.withdrawn,
                EXTRACT(EPOCH FROM (st.filled_at - st.first_event_at))::float8 AS time_to_fill_secs
           FROM section_stats st JOIN sections s ON s.id = st.section_id
          WHERE st.term_id = $1 ORDER BY st.enrolled + st.waitlisted DESC, s.course_code, s.section_code LIMIT 1000",
    )
    .bind(term)
    .fetch_all(pool)
    .await?;
    let mut totals = Totals::default();
    for s in &sections {
        totals.enrolled += s.enrolled;
        totals.waitlisted += s.waitlisted;
        totals.dropped += s.dropped;
        totals.promoted += s.promoted;
        totals.withdrawn += s.withdrawn;
    }
    let per_minute: Vec<MinuteFigure> = sqlx::query_as(
        "SELECT minute, enrolled FROM enrollment_minutes WHERE term_id = $1 ORDER BY minute",
    )
    .bind(term)
    .fetch_all(pool)
    .await?;
    Ok(TermFigures {
        term_id: term,
        totals,
        sections,
        per_minute,
    })
}
