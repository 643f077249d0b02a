//! What the shipped consumers do with an event, in the database: record its id in
//! `consumed_events` and apply its effect in the same transaction, so a redelivered event
//! is applied once (`notify`: a student notification; `analytics`: per-section and
//! per-minute figures).

use super::ConsumerKind;
use crate::event_schema::{Event, EventKind};
use chrono::{DurationRound, TimeDelta};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// Apply `event` once; false if it had been applied before.
pub async fn apply(kind: ConsumerKind, pool: &PgPool, event: &Event) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let fresh = sqlx::query(
        "INSERT INTO consumed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(kind.name())
    .bind(event.event_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if fresh {
        match kind {
            ConsumerKind::Notify => notify(&mut tx, event).await?,
            ConsumerKind::Analytics => analytics(&mut tx, event).await?,
        }
    }
    tx.commit().await?;
    Ok(fresh)
}

async fn notify(tx: &mut Transaction<'_, Postgres>, e: &Event) -> Result<(), sqlx::Error> {
    let Some(student) = e.student_id else {
        return Ok(());
    };
    let label: Option<String> =
        sqlx::query_scalar("SELECT course_code || '-' || section_code FROM sections WHERE id = $1")
            .bind(e.section_id)
            .fetch_optional(&mut **tx)
            .await?;
    let label = label.unwrap_or_else(|| e.section_id.to_string());
    let (kind, message) = match e.kind {
        EventKind::EnrollmentCreated => ("enrolled", format!("Enrolled in {label}")),
        EventKind::WaitlistAdded => match e.position {
            Some(p) => (
                "waitlisted",
                format!("Waitlisted for {label} at position {p}"),
            ),
            None => ("waitlisted", format!("Waitlisted for {label}")),
        },
        EventKind::WaitlistPromoted => {
            ("promoted", format!("Promoted from the waitlist to {label}"))
        }
        EventKind::EnrollmentDropped => ("dropped", format!("Dropped {label}")),
        EventKind::WaitlistOffered => (
            "offered",
            match e.expires_at {
                Some(at) => {
                    format!(
                        "A seat in {label} is offered to you until {}: accept or decline it",
                        at.format("%Y-%m-%d %H:%M UTC")
                    )
                }
                None => format!("A seat in {label} is offered to you: accept or decline it"),
            },
        ),
        EventKind::OfferExpired => (
            "offer_expired",
            format!("Your offer of a seat in {label} expired"),
        ),
        EventKind::OfferDeclined => (
            "offer_declined",
            format!("You declined the seat in {label}"),
        ),
        EventKind::EnrollmentWithdrawn => (
            "withdrawn",
            format!("Withdrew from {label} (a W on the record)"),
        ),
        EventKind::WaitlistBlocked => (
            "waitlist_blocked",
            format!(
                "You keep your place on the waitlist of {label}, but you are skipped for a seat until {}",
                until_unblocked(e.reason.as_deref())
            ),
        ),
        EventKind::WaitlistUnblocked => (
            "waitlist_unblocked",
            format!("You are back in line for a seat in {label}"),
        ),
        EventKind::OptionsChanged => (
            "options_changed",
            match (e.credits, e.grading_basis) {
                (Some(credits), Some(basis)) => {
                    format!("{label} is now taken for {credits} credits, graded {basis}")
                }
                _ => format!("Changed the credits or grading basis of {label}"),
            },
        ),
        // A held seat is not news to the student: its enrollment (or nothing) is.
        EventKind::CapacityChanged
        | EventKind::SeatHeld
        | EventKind::SeatReleased
        | EventKind::ReservesChanged => {
            return Ok(());
        }
    };
    sqlx::query(
        "INSERT INTO notifications (student_id, event_id, kind, message, section_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(student)
    .bind(e.event_id)
    .bind(kind)
    .bind(message)
    .bind(e.section_id)
    .bind(e.occurred_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What must change for a skipped waiting student to be back in line, by the code of the
/// rule they fail.
fn until_unblocked(reason: Option<&str>) -> String {
    match reason {
        Some("student_on_hold") => "the hold on your account is lifted".into(),
        Some("credit_limit_exceeded") => "the course fits your credit limit".into(),
        Some("restricted_section") => "you meet the section's restrictions".into(),
        Some("prerequisites_not_met") => "you meet its prerequisites".into(),
        Some(code) => format!("you meet the registration rules again ({code})"),
        None => "you meet the registration rules again".into(),
    }
}

async fn analytics(tx: &mut Transaction<'_, Postgres>, e: &Event) -> Result<(), sqlx::Error> {
    let Some(term): Option<Uuid> = sqlx::query_scalar("SELECT term_id FROM sections WHERE id = $1")
        .bind(e.section_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(());
    };
    let column = match e.kind {
        EventKind::EnrollmentCreated => "enrolled",
        EventKind::WaitlistAdded => "waitlisted",
        EventKind::EnrollmentDropped => "dropped",
        EventKind::EnrollmentWithdrawn => "withdrawn",
        EventKind::WaitlistPromoted => "promoted",
        EventKind::WaitlistOffered
        | EventKind::WaitlistBlocked
        | EventKind::WaitlistUnblocked
        | EventKind::OfferDeclined
        | EventKind::OfferExpired
        | EventKind::CapacityChanged
        | EventKind::SeatHeld
        | EventKind::SeatReleased
        | EventKind::ReservesChanged
        | EventKind::OptionsChanged => {
            return Ok(());
        }
    };
    let takes_seat = matches!(column, "enrolled" | "promoted");
    let filled = takes_seat && e.capacity > 0 && e.seats_taken >= e.capacity;
    sqlx::query(
        "INSERT INTO section_stats (section_id, term_id, enrolled, waitlisted, dropped, promoted,
                                    withdrawn, first_event_at, filled_at)
         VALUES ($1, $2, ($3 = 'enrolled')::int, ($3 = 'waitlisted')::int, ($3 = 'dropped')::int,
                 ($3 = 'promoted')::int, ($3 = 'withdrawn')::int, $4, CASE WHEN $5 THEN $4 END)
         ON CONFLICT (section_id) DO UPDATE SET
             enrolled = section_stats.enrolled + ($3 = 'enrolled')::int,
             waitlisted = section_stats.waitlisted + ($3 = 'waitlisted')::int,
             dropped = section_stats.dropped + ($3 = 'dropped')::int,
             promoted = section_stats.promoted + ($3 = 'promoted')::int,
             withdrawn = section_stats.withdrawn + ($3 = 'withdrawn')::int,
             first_event_at = LEAST(section_stats.first_event_at, EXCLUDED.first_event_at),
             filled_at = COALESCE(section_stats.filled_at, EXCLUDED.filled_at)",
    )
    .bind(e.section_id)
    .bind(term)
    .bind(column)
    .bind(e.occurred_at)
    .bind(filled)
    .execute(&mut **tx)
    .await?;
    if takes_seat {
        let minute = e
            .occurred_at
            .duration_trunc(TimeDelta::minutes(1))
            .unwrap_or(e.occurred_at);
        sqlx::query(
            "INSERT INTO enrollment_minutes (term_id, minute, enrolled) VALUES ($1, $2, 1)
             ON CONFLICT (term_id, minute) DO UPDATE SET enrolled = enrollment_minutes.enrolled + 1",
        )
        .bind(term)
        .bind(minute)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
