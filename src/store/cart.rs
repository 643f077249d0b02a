//! Carts (`cart_items`): the sections a student has staged, with what the cart shows of
//! each (course, component, seats) read in the same query.

use super::DbResult;
use chrono::{DateTime, Utc};
use registrar_actors::student_rules::EnrollmentOptions;
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
    /// The credits to enroll with, if chosen when staged.
    pub chosen_credits: Option<i16>,
    /// The grading basis to enroll with, if chosen when staged.
    pub chosen_basis: Option<String>,
}

impl CartRow {
    /// The options staged with the item, if any (a name the table's CHECK admits always
    /// parses).
    pub fn options(&self) -> Option<EnrollmentOptions> {
        super::enrollment_options::OptionsRow {
            credits: self.chosen_credits,
            grading_basis: self.chosen_basis.clone(),
        }
        .options()
    }
}

/// `student`'s cart, oldest item first.
pub async fn items(pool: &PgPool, student: Uuid) -> DbResult<Vec<CartRow>> {
    Ok(sqlx::query_as(
        "SELECT i.section_id, s.term_id, s.course_code, s.section_code, s.component, c.title,
                c.credits, c.components, c.corequisites, s.capacity, s.seats_taken, s.waitlist_capacity,
                s.waitlist_length, i.added_at, i.credits AS chosen_credits,
                i.grading_basis AS chosen_basis
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

/// Stage `section` in `student`'s cart, with `options` to enroll with if given (staging
/// it again changes nothing but the options, when given).
pub async fn add(
    pool: &PgPool,
    student: Uuid,
    section: Uuid,
    options: Option<EnrollmentOptions>,
) -> DbResult<Added> {
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
        "INSERT INTO cart_items (student_id, section_id, credits, grading_basis)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (student_id, section_id) DO UPDATE
            SET credits = COALESCE(EXCLUDED.credits, cart_items.credits),
                grading_basis = COALESCE(EXCLUDED.grading_basis, cart_items.grading_basis)",
    )
    .bind(student)
    .bind(section)
    .bind(options.map(|o| o.credits as i16))
    .bind(options.map(|o| o.basis.as_str()))
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
