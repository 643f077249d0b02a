//! Accounts, holds and schedules.

use super::{DbError, DbResult};
use crate::resources::{
    Hold, NewStudent, Role, Standing, StudentPatch, StudentView, attributes_of,
};
use chrono::{DateTime, Utc};
use registrar_actors::Attribute;
use registrar_actors::student_rules::{EnrollmentOptions, GradingBasis, TimeTicket};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::LazyLock;
use uuid::Uuid;

/// What login needs.
pub struct Credentials {
    /// Account id.
    pub id: Uuid,
    /// PHC-format argon2 hash.
    pub password_hash: String,
    /// Role for the token.
    pub role: Role,
}

/// The login columns of a `students` row.
#[derive(sqlx::FromRow)]
struct CredentialsRow {
    /// Account id.
    id: Uuid,
    /// PHC-format argon2 hash.
    password_hash: String,
    /// Role name; an unknown one reads as a student (least privilege).
    role: String,
}

/// Look up an account by username.
pub async fn credentials(pool: &PgPool, username: &str) -> DbResult<Option<Credentials>> {
    let row: Option<CredentialsRow> =
        sqlx::query_as("SELECT id, password_hash, role FROM students WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    row.map(|row| {
        Ok(Credentials {
            id: row.id,
            password_hash: row.password_hash,
            role: role(&row.role)?,
        })
    })
    .transpose()
}

/// Create an account with an already-hashed password.
pub async fn create(pool: &PgPool, s: &NewStudent, password_hash: &str) -> DbResult<StudentView> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO students (id, username, password_hash, role, standing, max_credits, completed_courses,
                               majors, program, cohort)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(&s.username)
    .bind(password_hash)
    .bind(s.role.as_str())
    .bind(s.standing.map(Standing::as_str))
    .bind(s.max_credits as i16)
    .bind(&s.completed_courses)
    .bind(&s.majors)
    .bind(&s.program)
    .bind(&s.cohort)
    .execute(pool)
    .await?;
    Ok(StudentView {
        id,
        username: s.username.clone(),
        role: s.role,
        standing: s.standing,
        max_credits: s.max_credits,
        completed_courses: s.completed_courses.clone(),
        majors: s.majors.clone(),
        program: s.program.clone(),
        cohort: s.cohort.clone(),
    })
}

/// Change the fields `patch` sets; the account after, `None` if there is no such account.
pub async fn update<'e>(
    db: impl sqlx::PgExecutor<'e>,
    id: Uuid,
    patch: &StudentPatch,
) -> DbResult<Option<StudentView>> {
    let row: Option<StudentRow> = sqlx::query_as(
        "UPDATE students SET
                standing = COALESCE($2, standing),
                max_credits = COALESCE($3, max_credits),
                majors = COALESCE($4, majors),
                program = CASE WHEN $5 THEN $6 ELSE program END,
                cohort = CASE WHEN $7 THEN $8 ELSE cohort END
          WHERE id = $1
         RETURNING id, username, role, standing, max_credits, completed_courses, majors, program, cohort",
    )
    .bind(id)
    .bind(patch.standing.map(Standing::as_str))
    .bind(patch.max_credits.map(|m| m as i16))
    .bind(&patch.majors)
    .bind(patch.program.is_some())
    .bind(patch.program.clone().flatten())
    .bind(patch.cohort.is_some())
    .bind(patch.cohort.clone().flatten())
    .fetch_optional(db)
    .await?;
    row.map(view).transpose()
}

/// The public columns of a `students` row.
#[derive(sqlx::FromRow)]
struct StudentRow {
    /// Account id.
    id: Uuid,
    /// Login name.
    username: String,
    /// Role name; an unknown one reads as a student (least privilege).
    role: String,
    /// Standing name; none for staff accounts.
    standing: Option<String>,
    /// Credit limit per term.
    max_credits: i16,
    /// Course codes completed (prerequisites are checked against them).
    completed_courses: Vec<String>,
    /// Declared majors.
    majors: Vec<String>,
    /// Program.
    program: Option<String>,
    /// Cohort.
    cohort: Option<String>,
}

/// One account.
pub async fn get<'e>(pool: impl sqlx::PgExecutor<'e>, id: Uuid) -> DbResult<Option<StudentView>> {
    let row: Option<StudentRow> = sqlx::query_as(
        "SELECT id, username, role, standing, max_credits, completed_courses, majors, program, cohort
           FROM students WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(view).transpose()
}

/// One account, by its username.
pub async fn by_username(pool: &PgPool, username: &str) -> DbResult<Option<StudentView>> {
    let row: Option<StudentRow> = sqlx::query_as(
        "SELECT id, username, role, standing, max_credits, completed_courses, majors, program, cohort
           FROM students WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await?;
    row.map(view).transpose()
}

/// The holds on `student`, oldest first.
pub async fn holds(pool: &PgPool, student: Uuid) -> DbResult<Vec<Hold>> {
    Ok(sqlx::query_as(
        "SELECT id, student_id, reason, created_at FROM holds WHERE student_id = $1 ORDER BY created_at, id",
    )
    .bind(student)
    .fetch_all(pool)
    .await?)
}

fn view(row: StudentRow) -> DbResult<StudentView> {
    Ok(StudentView {
        id: row.id,
        username: row.username,
        role: role(&row.role)?,
        standing: standing(row.standing.as_deref())?,
        max_credits: row.max_credits as u32,
        completed_courses: row.completed_courses,
        majors: row.majors,
        program: row.program,
        cohort: row.cohort,
    })
}

/// What the registration rules need about a student, read in one query.
#[derive(Clone, Debug)]
pub struct RuleInputs {
    /// Standing (none for staff accounts).
    pub standing: Option<Standing>,
    /// Credit limit.
    pub max_credits: u32,
    /// Completed courses.
    pub completed: Vec<String>,
    /// Active holds.
    pub holds: u32,
    /// Sections enrolled, waitlisted or holding a seat in (any term).
    pub active_sections: Vec<Uuid>,
    /// A swap of the student's is under way (`swap_intents`): finish it before deciding
    /// anything else for the student.
    pub swap_pending: bool,
    /// A decision of the student's over several sections is not carried out yet
    /// (`decisions`): carry it out first.
    pub decision_pending: bool,
    /// Majors, program, cohort and standing, as the rules match them.
    pub attributes: Vec<Attribute>,
    /// Time tickets by term.
    pub tickets: Vec<(Uuid, TimeTicket)>,
    /// Permits the rules may use, every term's.
    pub permits: Vec<super::permits::RulePermit>,
    /// Every section with options on record for the student, a place in it or not (a
    /// default choice needs no row where none is).
    pub options_on_record: Vec<Uuid>,
    /// The credits and grading basis chosen for active sections that have them recorded
    /// (the others are the course's defaults).
    pub options: Vec<(Uuid, EnrollmentOptions)>,
}

/// [`RuleInputs`] as PostgreSQL returns them.
#[derive(sqlx::FromRow)]
struct RuleInputsRow {
    /// The account.
    id: Uuid,
    /// Standing name; none for staff accounts.
    standing: Option<String>,
    /// Credit limit per term.
    max_credits: i16,
    /// Course codes completed.
    completed_courses: Vec<String>,
    /// Active holds.
    holds: i64,
    /// Sections enrolled or waitlisted in (any term).
    active_sections: Vec<Uuid>,
    /// A swap is under way.
    swap_pending: bool,
    /// A decision over several sections is unfinished.
    decision_pending: bool,
    /// Declared majors.
    majors: Vec<String>,
    /// Program.
    program: Option<String>,
    /// Cohort.
    cohort: Option<String>,
    /// Terms of the student's time tickets, and their opening and closing (same order).
    ticket_terms: Vec<Uuid>,
    /// Openings.
    ticket_opens: Vec<DateTime<Utc>>,
    /// Closings.
    ticket_closes: Vec<Option<DateTime<Utc>>>,
    /// Every section with options recorded, a place in it or not.
    recorded_sections: Vec<Uuid>,
    /// Active sections with options recorded, and the options (same order).
    option_sections: Vec<Uuid>,
    /// Credits chosen.
    option_credits: Vec<i16>,
    /// Bases chosen.
    option_bases: Vec<String>,
    /// Permits the rules may use ([`super::permits::RULE_PERMITS`]).
    permits: sqlx::types::Json<Vec<super::permits::RulePermitRow>>,
}

/// Load the rule inputs of `student`; `None` when the account does not exist.
pub async fn rule_inputs(pool: &PgPool, student: Uuid) -> DbResult<Option<RuleInputs>> {
    Ok(rule_inputs_many(pool, &[student]).await?.remove(&student))
}

/// The query of [`rule_inputs_many`]: one row per student, its permits included.
static RULE_INPUTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT s.id, s.standing, s.max_credits, s.completed_courses,
                (SELECT count(*) FROM holds h WHERE h.student_id = s.id) AS holds,
                COALESCE((SELECT array_agg(e.section_id) FROM enrollments e
                           WHERE e.student_id = s.id AND e.status <> 'dropped'), '{{}}') AS active_sections,
                EXISTS (SELECT 1 FROM swap_intents w WHERE w.student_id = s.id) AS swap_pending,
                EXISTS (SELECT 1 FROM decisions d WHERE d.student_id = s.id
                           AND d.finished_at IS NULL) AS decision_pending,
                s.majors, s.program, s.cohort,
                ARRAY(SELECT t.term_id FROM time_tickets t WHERE t.student_id = s.id
                       ORDER BY t.term_id) AS ticket_terms,
                ARRAY(SELECT t.opens_at FROM time_tickets t WHERE t.student_id = s.id
                       ORDER BY t.term_id) AS ticket_opens,
                ARRAY(SELECT t.closes_at FROM time_tickets t WHERE t.student_id = s.id
                       ORDER BY t.term_id) AS ticket_closes,
                ARRAY(SELECT o.section_id FROM enrollment_options o
                       WHERE o.student_id = s.id) AS recorded_sections,
                ARRAY(SELECT o.section_id FROM enrollment_options o JOIN enrollments e
                         ON e.student_id = o.student_id AND e.section_id = o.section_id
                       WHERE o.student_id = s.id AND e.status <> 'dropped'
                       ORDER BY o.section_id) AS option_sections,
                ARRAY(SELECT o.credits FROM enrollment_options o JOIN enrollments e
                         ON e.student_id = o.student_id AND e.section_id = o.section_id
                       WHERE o.student_id = s.id AND e.status <> 'dropped'
                       ORDER BY o.section_id) AS option_credits,
                ARRAY(SELECT o.grading_basis FROM enrollment_options o JOIN enrollments e
                         ON e.student_id = o.student_id AND e.section_id = o.section_id
                       WHERE o.student_id = s.id AND e.status <> 'dropped'
                       ORDER BY o.section_id) AS option_bases,
                {permits} AS permits
           FROM students s WHERE s.id = ANY($1)",
        permits = super::permits::RULE_PERMITS
    )
});

/// Load the rule inputs of every student in `ids` in one query; accounts that do not exist
/// are absent from the map.
pub async fn rule_inputs_many(pool: &PgPool, ids: &[Uuid]) -> DbResult<HashMap<Uuid, RuleInputs>> {
    let rows: Vec<RuleInputsRow> = sqlx::query_as(RULE_INPUTS.as_str())
        .bind(ids)
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|row| {
            let standing = standing(row.standing.as_deref())?;
            let tickets = row
                .ticket_terms
                .iter()
                .zip(row.ticket_opens.iter().zip(&row.ticket_closes))
                .map(|(term, (opens_at, closes_at))| {
                    let ticket = TimeTicket {
                        opens_at: *opens_at,
                        closes_at: *closes_at,
                    };
                    (*term, ticket)
                })
                .collect();
            let options = row
                .option_sections
                .iter()
                .zip(row.option_credits.iter().zip(&row.option_bases))
                .map(|(section, (credits, basis))| {
                    let basis = basis
                        .parse::<GradingBasis>()
                        .map_err(|e| DbError::Other(format!("stored grading basis: {e}")))?;
                    let options = EnrollmentOptions {
                        credits: *credits as u32,
                        basis,
                    };
                    Ok((*section, options))
                })
                .collect::<DbResult<Vec<_>>>()?;
            Ok((
                row.id,
                RuleInputs {
                    options,
                    attributes: attributes_of(
                        standing,
                        &row.majors,
                        row.program.as_deref(),
                        row.cohort.as_deref(),
                    ),
                    tickets,
                    permits: super::permits::rule_permits(row.permits.0),
                    options_on_record: row.recorded_sections,
                    standing,
                    max_credits: row.max_credits as u32,
                    completed: row.completed_courses,
                    holds: row.holds as u32,
                    active_sections: row.active_sections,
                    swap_pending: row.swap_pending,
                    decision_pending: row.decision_pending,
                },
            ))
        })
        .collect()
}

/// Put a hold on a student.
pub async fn add_hold<'e>(
    pool: impl sqlx::PgExecutor<'e>,
    student: Uuid,
    reason: &str,
) -> DbResult<Hold> {
    let id = Uuid::new_v4();
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO holds (id, student_id, reason) VALUES ($1, $2, $3) RETURNING created_at",
    )
    .bind(id)
    .bind(student)
    .bind(reason)
    .fetch_one(pool)
    .await?;
    Ok(Hold {
        id,
        student_id: student,
        reason: reason.to_string(),
        created_at,
    })
}

/// Lift a hold; false when there was no such hold on that student.
pub async fn remove_hold<'e>(
    pool: impl sqlx::PgExecutor<'e>,
    student: Uuid,
    hold: Uuid,
) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM holds WHERE id = $1 AND student_id = $2")
        .bind(hold)
        .bind(student)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// One active place of a student.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Place {
    /// The section.
    pub section_id: Uuid,
    /// `enrolled` or `waitlisted`.
    pub status: String,
    /// Current waitlist position (waitlisted places only).
    pub position: Option<i64>,
    /// When the seat was taken (enrolled places only).
    pub enrolled_at: Option<DateTime<Utc>>,
    /// Until when a seat offered waits for the student (offered places only).
    pub offer_expires_at: Option<DateTime<Utc>>,
    /// Why a waiting student is skipped at promotion (a rule's code), if they are.
    pub blocked_reason: Option<String>,
    /// The credits and basis chosen, if recorded.
    #[sqlx(flatten)]
    pub options: super::enrollment_options::OptionsRow,
}

/// A student's active places, oldest first.
pub async fn schedule(pool: &PgPool, student: Uuid) -> DbResult<Vec<Place>> {
    Ok(sqlx::query_as(
        "SELECT e.section_id, e.status,
                CASE WHEN e.status = 'waitlisted' THEN
                  (SELECT count(*) FROM enrollments w WHERE w.section_id = e.section_id
                      AND w.status = 'waitlisted' AND w.waitlist_seq <= e.waitlist_seq) END
                  AS position,
                e.enrolled_at, e.offer_expires_at, e.blocked_reason, o.credits, o.grading_basis
           FROM enrollments e
           LEFT JOIN enrollment_options o ON o.student_id = e.student_id AND o.section_id = e.section_id
          WHERE e.student_id = $1 AND e.status <> 'dropped'
          ORDER BY e.created_at",
    )
    .bind(student)
    .fetch_all(pool)
    .await?)
}

/// One seat a student withdrew from (left after the drop deadline: a W on the record).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Withdrawal {
    /// The section.
    pub section_id: Uuid,
    /// When the seat was taken.
    pub enrolled_at: Option<DateTime<Utc>>,
    /// When it was left.
    pub withdrawn_at: DateTime<Utc>,
    /// The credits and basis chosen, if recorded.
    #[sqlx(flatten)]
    pub options: super::enrollment_options::OptionsRow,
}

/// A student's withdrawals, oldest first.
pub async fn withdrawals(pool: &PgPool, student: Uuid) -> DbResult<Vec<Withdrawal>> {
    Ok(sqlx::query_as(
        "SELECT e.section_id, e.enrolled_at, e.withdrawn_at, o.credits, o.grading_basis
           FROM enrollments e
           LEFT JOIN enrollment_options o ON o.student_id = e.student_id AND o.section_id = e.section_id
          WHERE e.student_id = $1 AND e.withdrawn_at IS NOT NULL
          ORDER BY e.withdrawn_at, e.section_id",
    )
    .bind(student)
    .fetch_all(pool)
    .await?)
}

/// A stored role; an unknown one is corrupt data, never a guess (a guess could grant or
/// withhold a role).
fn role(stored: &str) -> DbResult<Role> {
    Role::parse(stored).ok_or_else(|| DbError::Other(format!("unknown role {stored:?} stored")))
}

/// A stored standing (none for staff); an unknown one is corrupt data.
fn standing(stored: Option<&str>) -> DbResult<Option<Standing>> {
    stored
        .map(|s| {
            Standing::parse(s)
                .ok_or_else(|| DbError::Other(format!("unknown standing {s:?} stored")))
        })
        .transpose()
}
