//! Carts (`cart_items`): the sections a student has staged, with what the cart shows of
//! each (course, component, seats) read in the same query.

use super::DbResult;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// Most items a cart holds.
pub const CART_MAX: i64 = 20;

/// One staged section, as the cart shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CartRow {
    /// The section.
    pub section_id: Uuid,
    /// Its term.
    pub term_id: Uuid,
    /// Its course.
    pub course_code: String,
    /// Its code within the course.
    pub section_code: String,
    /// Its component (`lecture`, `lab`, ...).
    pub component: String,
    /// The course's title.
    pub title: String,
    /// The course's credits.
    pub credits: i16,
    /// The course's required components (empty for a plain course).
    pub components: Vec<String>,
    /// The course's corequisites.
    pub corequisites: Vec<String>,
    /// Seats offered.
    pub capacity: i32,
    /// Seats taken (enrolled and held).
    pub seats_taken: i32,
    /// Waitlist places offered.
    pub waitlist_capacity: i32,
    /// Students waiting.
    pub waitlist_length: i32,
    /// When it was staged.
    pub added_at: DateTime<Utc>,
}

/// `student`'s cart, oldest item first.
pub async fn items(pool: &PgPool, student: Uuid) -> DbResult<Vec<CartRow>> {
    Ok(sqlx::query_as(
        "SELECT i.section_id, s.term_id, s.course_code, s.section_code, s.component, c.title,
                c.credits, c.components, c.corequisites, s.capacity, s.seats_taken, s.waitlist_capacity,
                s.waitlist_length, i.added_at
           FROM cart_items i JOIN sections s ON s.id = i.section_id
           JOIN courses c ON c.code = s.course_code
          WHERE i.student_id = $1 ORDER BY i.added_at, i.section_id",
    )
    .bind(student)
    .fetch_all(pool)
    .await?)
}

/// What [`add`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Staged (or staged already).
    Staged,
    /// No such section.
    NoSection,
    /// The cart holds [`CART_MAX`] items already.
    Full,
}

/// Stage `section` in `student`'s cart (staging it again changes nothing).
pub async fn add(pool: &PgPool, student: Uuid, section: Uuid) -> DbResult<Added> {
    let mut tx = pool.begin().await?;
    // One cart edit at a time per student, so the size bound holds.
    sqlx::query("SELECT 1 FROM students WHERE id = $1 FOR UPDATE")
        .bind(student)
        .execute(&mut *tx)
        .await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sections WHERE id = $1)")
        .bind(section)
        .fetch_one(&mut *tx)
        .await?;
    if !exists {
        return Ok(Added::NoSection);
    }
    let (count, there): (i64, bool) = sqlx::query_as(
        "SELECT count(*), bool_or(section_id = $2) IS TRUE FROM cart_items WHERE student_id = $1",
    )
    .bind(student)
    .bind(section)
    .fetch_one(&mut *tx)
    .await?;
    if !there && count >= CART_MAX {
        return Ok(Added::Full);
    }
    sqlx::query(
        "INSERT INTO cart_items (student_id, section_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(student)
    .bind(section)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Added::Staged)
}

/// Take `sections` out of `student`'s cart (absent ones are fine).
pub async fn remove(pool: &PgPool, student: Uuid, sections: &[Uuid]) -> DbResult<()> {
    sqlx::query("DELETE FROM cart_items WHERE student_id = $1 AND section_id = ANY($2)")
        .bind(student)
        .bind(sections)
        .execute(pool)
        .await?;
    Ok(())
}
