//! What students chose for their places: credits within a course's range and a grading
//! basis (`enrollment_options`). The student's home node writes a row under the student's
//! lock before it asks a section's actor for the seat, so an acknowledged seat always has
//! its options committed; a place without a row is the course's credits under its default
//! basis. The section actors never read these rows.

use super::DbResult;
use crate::event_schema::{Event, EventKind};
use chrono::{DateTime, Utc};
use registrar_actors::student_rules::{EnrollmentOptions, GradingBasis};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

/// Record `student`'s options for each section of `chosen` (replacing earlier ones).
pub async fn save(
    pool: &PgPool,
    student: Uuid,
    chosen: &[(Uuid, EnrollmentOptions)],
) -> DbResult<()> {
    if chosen.is_empty() {
        return Ok(());
    }
    let sections: Vec<Uuid> = chosen.iter().map(|(s, _)| *s).collect();
    let credits: Vec<i16> = chosen.iter().map(|(_, o)| o.credits as i16).collect();
    let bases: Vec<&str> = chosen.iter().map(|(_, o)| o.basis.as_str()).collect();
    sqlx::query(
        "INSERT INTO enrollment_options (student_id, section_id, credits, grading_basis)
         SELECT $1, * FROM unnest($2::uuid[], $3::int2[], $4::text[])
         ON CONFLICT (student_id, section_id) DO UPDATE
            SET credits = EXCLUDED.credits, grading_basis = EXCLUDED.grading_basis,
                updated_at = now()",
    )
    .bind(student)
    .bind(&sections)
    .bind(&credits)
    .bind(&bases)
    .execute(pool)
    .await?;
    Ok(())
}

/// A change of a student's options for the sections of one course they hold a place in.
pub struct OptionsChange<'a> {
    /// The student.
    pub student: Uuid,
    /// The sections of the course (a lecture and its lab change together).
    pub sections: &'a [Uuid],
    /// The options now.
    pub options: EnrollmentOptions,
    /// The request, for the event.
    pub request: Uuid,
}

/// Record `change` and its `enrollment.options_changed` event (one per section) in one
/// transaction; when it was recorded, by the database clock. A section the student holds
/// no active place in any more is left alone (the place was lost meanwhile: nothing to
/// change), and answers `false` in the list of which sections changed.
pub async fn change(
    pool: &PgPool,
    change: &OptionsChange<'_>,
) -> DbResult<(DateTime<Utc>, Vec<bool>)> {
    let mut tx = pool.begin().await?;
    let at: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *tx)
        .await?;
    let mut changed = Vec::with_capacity(change.sections.len());
    for section in change.sections {
        // The section's counts as committed, for the event, if the place is still active.
        let row: Option<(i32, i32, i32, i32, i64)> = sqlx::query_as(
            "SELECT s.seats_taken, s.capacity, s.waitlist_length, s.shard, s.owner_epoch
               FROM sections s
              WHERE s.id = $1 AND EXISTS (SELECT 1 FROM enrollments e
                     WHERE e.section_id = s.id AND e.student_id = $2 AND e.status <> 'dropped')",
        )
        .bind(section)
        .bind(change.student)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((seats_taken, capacity, waitlist_length, shard, epoch)) = row else {
            changed.push(false);
            continue;
        };
        changed.push(true);
        sqlx::query(
            "INSERT INTO enrollment_options (student_id, section_id, credits, grading_basis, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (student_id, section_id) DO UPDATE
                SET credits = EXCLUDED.credits, grading_basis = EXCLUDED.grading_basis,
                    updated_at = EXCLUDED.updated_at",
        )
        .bind(change.student)
        .bind(section)
        .bind(change.options.credits as i16)
        .bind(change.options.basis.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let event = Event::options_changed(
            *section,
            change.student,
            change.request,
            at,
            change.options,
            [seats_taken, capacity, waitlist_length].map(|n| n.max(0) as u32),
            (shard as u32, epoch),
        );
        sqlx::query(
            "INSERT INTO outbox (event_id, routing_key, payload, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event.event_id)
        .bind(EventKind::OptionsChanged.routing_key())
        .bind(Json(&event))
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok((at, changed))
}

/// Stored options, as PostgreSQL returns them.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OptionsRow {
    /// Credits chosen.
    pub credits: Option<i16>,
    /// Basis chosen.
    pub grading_basis: Option<String>,
}

impl OptionsRow {
    /// The options, if a row was found (a name the table's CHECK admits always parses).
    pub fn options(&self) -> Option<EnrollmentOptions> {
        Some(EnrollmentOptions {
            credits: self.credits? as u32,
            basis: self
                .grading_basis
                .as_deref()?
                .parse::<GradingBasis>()
                .ok()?,
        })
    }
}
