//! The SQL of `registrar import` (`crate::import`): reads of the records a file names, by
//! the codes the SIS uses, and batched writes of the ones it creates or changes. Every
//! write is one statement for a whole batch of rows: flat columns go in as arrays
//! (`unnest`), rows with list columns (prerequisites, majors, meetings) as one JSON array
//! (`jsonb_to_recordset`), since `unnest` cannot carry arrays of different lengths.

use super::DbResult;
use crate::resources::Standing;
use chrono::{DateTime, Utc};
use registrar_actors::AttributeKind;
use registrar_actors::student_rules::{Meeting, Restriction};
use serde_json::{Value, json};
use sqlx::PgConnection;
use sqlx::types::Json;
use std::collections::HashMap;
use uuid::Uuid;

/// A stored term.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TermRow {
    /// Id.
    pub id: Uuid,
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
}

/// The terms of `codes` that exist (locked until the transaction ends).
pub async fn terms(conn: &mut PgConnection, codes: &[String]) -> DbResult<Vec<TermRow>> {
    Ok(
        sqlx::query_as("SELECT id, code, name FROM terms WHERE code = ANY($1) FOR UPDATE")
            .bind(codes)
            .fetch_all(conn)
            .await?,
    )
}

/// Create terms `(id, code, name)`.
pub async fn insert_terms(
    conn: &mut PgConnection,
    rows: &[(Uuid, String, String)],
) -> DbResult<()> {
    let (ids, codes, names) = unzip3(rows);
    sqlx::query(
        "INSERT INTO terms (id, code, name)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])",
    )
    .bind(ids)
    .bind(codes)
    .bind(names)
    .execute(conn)
    .await?;
    Ok(())
}

/// Rename terms `(id, name)`.
pub async fn rename_terms(conn: &mut PgConnection, rows: &[(Uuid, String)]) -> DbResult<()> {
    let (ids, names): (Vec<Uuid>, Vec<String>) = rows.iter().cloned().unzip();
    sqlx::query(
        "UPDATE terms t SET name = u.name FROM unnest($1::uuid[], $2::text[]) AS u(id, name)
          WHERE t.id = u.id",
    )
    .bind(ids)
    .bind(names)
    .execute(conn)
    .await?;
    Ok(())
}

/// The ids of the terms of `codes` that exist, by code.
pub async fn term_ids(
    conn: &mut PgConnection,
    codes: &[String],
) -> DbResult<HashMap<String, Uuid>> {
    let rows: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT code, id FROM terms WHERE code = ANY($1)")
            .bind(codes)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// A stored registration window.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct WindowRow {
    /// Term.
    pub term_id: Uuid,
    /// Standing name.
    pub standing: String,
    /// Opens.
    pub opens_at: DateTime<Utc>,
    /// Closes.
    pub closes_at: DateTime<Utc>,
}

/// The windows of `terms`.
pub async fn windows(conn: &mut PgConnection, terms: &[Uuid]) -> DbResult<Vec<WindowRow>> {
    Ok(sqlx::query_as(
        "SELECT term_id, standing, opens_at, closes_at FROM registration_windows
          WHERE term_id = ANY($1) FOR UPDATE",
    )
    .bind(terms)
    .fetch_all(conn)
    .await?)
}

/// Create or replace windows `(term, standing, opens_at, closes_at)`.
pub async fn upsert_windows(
    conn: &mut PgConnection,
    rows: &[(Uuid, Standing, DateTime<Utc>, DateTime<Utc>)],
) -> DbResult<()> {
    let ids: Vec<Uuid> = rows.iter().map(|_| Uuid::new_v4()).collect();
    let terms: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let standings: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    let opens: Vec<DateTime<Utc>> = rows.iter().map(|r| r.2).collect();
    let closes: Vec<DateTime<Utc>> = rows.iter().map(|r| r.3).collect();
    sqlx::query(
        "INSERT INTO registration_windows (id, term_id, standing, opens_at, closes_at)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::timestamptz[])
         ON CONFLICT (term_id, standing)
           DO UPDATE SET opens_at = EXCLUDED.opens_at, closes_at = EXCLUDED.closes_at",
    )
    .bind(ids)
    .bind(terms)
    .bind(standings)
    .bind(opens)
    .bind(closes)
    .execute(conn)
    .await?;
    Ok(())
}

/// A course as stored, or as an import writes it whole.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CourseRow {
    /// Canonical code.
    pub code: String,
    /// Title.
    pub title: String,
    /// Credits.
    pub credits: i16,
    /// Canonical codes.
    pub prerequisites: Vec<String>,
    /// Component names.
    pub components: Vec<String>,
    /// Canonical codes.
    pub corequisites: Vec<String>,
    /// Fewest credits.
    pub min_credits: i16,
    /// Most credits.
    pub max_credits: i16,
    /// Grading basis names.
    pub grading_bases: Vec<String>,
}

/// The courses of `codes` that exist (locked), with how many sections each has.
pub async fn courses(conn: &mut PgConnection, codes: &[String]) -> DbResult<Vec<(CourseRow, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        course: CourseRow,
        sections: i64,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT c.code, c.title, c.credits, c.prerequisites, c.components, c.corequisites,
                c.min_credits, c.max_credits, c.grading_bases,
                (SELECT count(*) FROM sections s WHERE s.course_code = c.code) AS sections
           FROM courses c WHERE c.code = ANY($1) FOR UPDATE OF c",
    )
    .bind(codes)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.course, r.sections)).collect())
}

/// Create or rewrite courses, whole.
pub async fn upsert_courses(conn: &mut PgConnection, rows: &[CourseRow]) -> DbResult<()> {
    let json: Vec<Value> = rows
        .iter()
        .map(|c| {
            json!({"code": c.code, "title": c.title, "credits": c.credits,
                   "prerequisites": c.prerequisites, "components": c.components,
                   "corequisites": c.corequisites, "min_credits": c.min_credits,
                   "max_credits": c.max_credits, "grading_bases": c.grading_bases})
        })
        .collect();
    sqlx::query(
        "INSERT INTO courses (code, title, credits, prerequisites, components, corequisites,
                              min_credits, max_credits, grading_bases)
         SELECT code, title, credits, prerequisites, components, corequisites,
                min_credits, max_credits, grading_bases
           FROM jsonb_to_recordset($1) AS t(code text, title text, credits int2,
                prerequisites text[], components text[], corequisites text[],
                min_credits int2, max_credits int2, grading_bases text[])
         ON CONFLICT (code) DO UPDATE SET title = EXCLUDED.title, credits = EXCLUDED.credits,
                prerequisites = EXCLUDED.prerequisites, components = EXCLUDED.components,
                corequisites = EXCLUDED.corequisites, min_credits = EXCLUDED.min_credits,
                max_credits = EXCLUDED.max_credits, grading_bases = EXCLUDED.grading_bases",
    )
    .bind(Json(json))
    .execute(conn)
    .await?;
    Ok(())
}

/// The components of the courses of `codes` that exist, by code.
pub async fn course_components(
    conn: &mut PgConnection,
    codes: &[String],
) -> DbResult<HashMap<String, Vec<String>>> {
    let rows: Vec<(String, Vec<String>)> =
        sqlx::query_as("SELECT code, components FROM courses WHERE code = ANY($1)")
            .bind(codes)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// The sections of the courses of `codes`, in every term.
pub async fn sections_of_courses(conn: &mut PgConnection, codes: &[String]) -> DbResult<Vec<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM sections WHERE course_code = ANY($1)")
            .bind(codes)
            .fetch_all(conn)
            .await?,
    )
}

/// A reserved pool as stored.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct PoolRow {
    /// What students must have.
    pub attribute: AttributeKind,
    /// Its value.
    pub value: String,
    /// Seats set aside.
    pub seats: u32,
    /// When they are released.
    pub release_at: Option<DateTime<Utc>>,
}

/// A section as stored, with what an import compares.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SectionRow {
    /// Id.
    pub id: Uuid,
    /// Term.
    pub term_id: Uuid,
    /// Course.
    pub course_code: String,
    /// Section code.
    pub section_code: String,
    /// Seats (as committed).
    pub capacity: i32,
    /// Waitlist places.
    pub waitlist_capacity: i32,
    /// Meetings.
    pub meetings: Json<Vec<Meeting>>,
    /// Component name.
    pub component: String,
    /// Restrictions.
    pub restrictions: Json<Vec<Restriction>>,
    /// Reserved pools, in order.
    pub pools: Json<Vec<PoolRow>>,
    /// `auto` or `offer`.
    pub waitlist_mode: String,
    /// How long an offer stands.
    pub offer_window_secs: i32,
}

/// The sections of `keys` (term, course code, section code) that exist. Not locked: the
/// committer updates sections' counters all the time, and an import writes only their
/// meetings and restrictions, which no commit touches (an updated row stays locked until
/// the file's transaction ends).
pub async fn sections(
    conn: &mut PgConnection,
    keys: &[(Uuid, String, String)],
) -> DbResult<Vec<SectionRow>> {
    let (terms, courses, codes) = unzip3(keys);
    Ok(sqlx::query_as(
        "SELECT s.id, s.term_id, s.course_code, s.section_code, s.capacity, s.waitlist_capacity,
                s.meetings, s.component, s.restrictions, s.waitlist_mode, s.offer_window_secs,
                COALESCE((SELECT json_agg(json_build_object('attribute', r.attribute,
                                  'value', r.value, 'seats', r.seats, 'release_at', r.release_at)
                                  ORDER BY r.position)
                            FROM section_reserves r WHERE r.section_id = s.id), '[]') AS pools
           FROM sections s
           JOIN unnest($1::uuid[], $2::text[], $3::text[]) AS k(term_id, course_code, section_code)
             ON s.term_id = k.term_id AND s.course_code = k.course_code
            AND s.section_code = k.section_code",
    )
    .bind(terms)
    .bind(courses)
    .bind(codes)
    .fetch_all(conn)
    .await?)
}

/// A section to create, and its pools.
#[derive(Clone, Debug)]
pub struct NewSectionRow {
    /// Id.
    pub id: Uuid,
    /// Term.
    pub term_id: Uuid,
    /// Course.
    pub course_code: String,
    /// Section code.
    pub section_code: String,
    /// Seats.
    pub capacity: u32,
    /// Waitlist places.
    pub waitlist_capacity: u32,
    /// Meetings.
    pub meetings: Vec<Meeting>,
    /// Shard.
    pub shard: u32,
    /// Component name.
    pub component: String,
    /// Restrictions.
    pub restrictions: Vec<Restriction>,
    /// Pools, in order.
    pub pools: Vec<PoolRow>,
    /// `auto` or `offer`.
    pub waitlist_mode: String,
    /// How long an offer stands.
    pub offer_window_secs: u32,
}

/// Create sections with their pools (no actor has them yet).
pub async fn insert_sections(conn: &mut PgConnection, rows: &[NewSectionRow]) -> DbResult<()> {
    let json: Vec<Value> = rows
        .iter()
        .map(|s| {
            json!({"id": s.id, "term_id": s.term_id, "course_code": s.course_code,
                   "section_code": s.section_code, "capacity": s.capacity,
                   "waitlist_capacity": s.waitlist_capacity, "meetings": s.meetings,
                   "shard": s.shard, "component": s.component, "restrictions": s.restrictions,
                   "waitlist_mode": s.waitlist_mode, "offer_window_secs": s.offer_window_secs})
        })
        .collect();
    sqlx::query(
        "INSERT INTO sections (id, term_id, course_code, section_code, capacity, waitlist_capacity,
                               meetings, shard, component, restrictions, waitlist_mode,
                               offer_window_secs)
         SELECT id, term_id, course_code, section_code, capacity, waitlist_capacity, meetings,
                shard, component, restrictions, waitlist_mode, offer_window_secs
           FROM jsonb_to_recordset($1) AS t(id uuid, term_id uuid, course_code text,
                section_code text, capacity int4, waitlist_capacity int4, meetings jsonb,
                shard int4, component text, restrictions jsonb, waitlist_mode text,
                offer_window_secs int4)",
    )
    .bind(Json(json))
    .execute(&mut *conn)
    .await?;
    let mut ids = Vec::new();
    let mut sections = Vec::new();
    let mut positions = Vec::new();
    let mut kinds = Vec::new();
    let mut values = Vec::new();
    let mut seats = Vec::new();
    let mut releases = Vec::new();
    for s in rows {
        for (n, p) in s.pools.iter().enumerate() {
            ids.push(Uuid::new_v4());
            sections.push(s.id);
            positions.push(n as i16);
            kinds.push(p.attribute.as_str());
            values.push(p.value.as_str());
            seats.push(p.seats as i32);
            releases.push(p.release_at);
        }
    }
    if !ids.is_empty() {
        sqlx::query(
            "INSERT INTO section_reserves (id, section_id, position, attribute, value, seats, release_at)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int2[], $4::text[], $5::text[],
                                  $6::int4[], $7::timestamptz[])",
        )
        .bind(ids)
        .bind(sections)
        .bind(positions)
        .bind(kinds)
        .bind(values)
        .bind(seats)
        .bind(releases)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Rewrite the meetings and restrictions of sections `(id, meetings, restrictions)`.
pub async fn update_sections(
    conn: &mut PgConnection,
    rows: &[(Uuid, Vec<Meeting>, Vec<Restriction>)],
) -> DbResult<()> {
    let json: Vec<Value> = rows
        .iter()
        .map(|(id, m, r)| json!({"id": id, "meetings": m, "restrictions": r}))
        .collect();
    sqlx::query(
        "UPDATE sections s SET meetings = t.meetings, restrictions = t.restrictions
           FROM jsonb_to_recordset($1) AS t(id uuid, meetings jsonb, restrictions jsonb)
          WHERE s.id = t.id",
    )
    .bind(Json(json))
    .execute(conn)
    .await?;
    Ok(())
}

/// Every section of the `(term, course)` pairs of `keys`: its id and component, by (term,
/// course, section code).
pub async fn sections_of(
    conn: &mut PgConnection,
    keys: &[(Uuid, String)],
) -> DbResult<HashMap<(Uuid, String, String), (Uuid, String)>> {
    let (terms, courses): (Vec<Uuid>, Vec<String>) = keys.iter().cloned().unzip();
    let rows: Vec<(Uuid, String, String, Uuid, String)> = sqlx::query_as(
        "SELECT s.term_id, s.course_code, s.section_code, s.id, s.component FROM sections s
           JOIN (SELECT DISTINCT * FROM unnest($1::uuid[], $2::text[])) AS k(term_id, course_code)
             ON s.term_id = k.term_id AND s.course_code = k.course_code",
    )
    .bind(terms)
    .bind(courses)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(t, c, s, id, component)| ((t, c, s), (id, component)))
        .collect())
}

/// Every link (primary, linked) with a side among `sections`.
pub async fn links_of(conn: &mut PgConnection, sections: &[Uuid]) -> DbResult<Vec<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        "SELECT primary_id, linked_id FROM section_links
          WHERE primary_id = ANY($1) OR linked_id = ANY($1)",
    )
    .bind(sections)
    .fetch_all(conn)
    .await?)
}

/// Remove links `(primary, linked)`.
pub async fn delete_links(conn: &mut PgConnection, pairs: &[(Uuid, Uuid)]) -> DbResult<()> {
    let (primaries, linked): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    sqlx::query(
        "DELETE FROM section_links l USING unnest($1::uuid[], $2::uuid[]) AS d(p, s)
          WHERE l.primary_id = d.p AND l.linked_id = d.s",
    )
    .bind(primaries)
    .bind(linked)
    .execute(conn)
    .await?;
    Ok(())
}

/// Add links `(primary, linked)`.
pub async fn insert_links(conn: &mut PgConnection, pairs: &[(Uuid, Uuid)]) -> DbResult<()> {
    let (primaries, linked): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    sqlx::query(
        "INSERT INTO section_links (primary_id, linked_id)
         SELECT * FROM unnest($1::uuid[], $2::uuid[]) ON CONFLICT DO NOTHING",
    )
    .bind(primaries)
    .bind(linked)
    .execute(conn)
    .await?;
    Ok(())
}

/// An account as stored (never its password hash).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StudentRow {
    /// Id.
    pub id: Uuid,
    /// Login.
    pub username: String,
    /// Role name.
    pub role: String,
    /// Standing name.
    pub standing: Option<String>,
    /// Credit limit.
    pub max_credits: i16,
    /// Canonical codes.
    pub completed_courses: Vec<String>,
    /// Majors.
    pub majors: Vec<String>,
    /// Program.
    pub program: Option<String>,
    /// Cohort.
    pub cohort: Option<String>,
}

/// The accounts of `usernames` that exist (locked).
pub async fn students(conn: &mut PgConnection, usernames: &[String]) -> DbResult<Vec<StudentRow>> {
    Ok(sqlx::query_as(
        "SELECT id, username, role, standing, max_credits, completed_courses, majors, program, cohort
           FROM students WHERE username = ANY($1) FOR UPDATE",
    )
    .bind(usernames)
    .fetch_all(conn)
    .await?)
}

/// The JSON of a student row for `jsonb_to_recordset`.
fn student_json(s: &StudentRow, password_hash: Option<&str>) -> Value {
    json!({"id": s.id, "username": s.username, "password_hash": password_hash,
           "standing": s.standing, "max_credits": s.max_credits,
           "completed_courses": s.completed_courses, "majors": s.majors,
           "program": s.program, "cohort": s.cohort})
}

/// Create student accounts `(row, password hash)`.
pub async fn insert_students(conn: &mut PgConnection, rows: &[(StudentRow, &str)]) -> DbResult<()> {
    let json: Vec<Value> = rows.iter().map(|(s, h)| student_json(s, Some(h))).collect();
    sqlx::query(
        "INSERT INTO students (id, username, password_hash, role, standing, max_credits,
                               completed_courses, majors, program, cohort)
         SELECT id, username, password_hash, 'student', standing, max_credits, completed_courses,
                majors, program, cohort
           FROM jsonb_to_recordset($1) AS t(id uuid, username text, password_hash text,
                standing text, max_credits int2, completed_courses text[], majors text[],
                program text, cohort text)",
    )
    .bind(Json(json))
    .execute(conn)
    .await?;
    Ok(())
}

/// Rewrite the standing, credit limit, completed courses and attributes of accounts.
pub async fn update_students(conn: &mut PgConnection, rows: &[StudentRow]) -> DbResult<()> {
    let json: Vec<Value> = rows.iter().map(|s| student_json(s, None)).collect();
    sqlx::query(
        "UPDATE students s SET standing = t.standing, max_credits = t.max_credits,
                completed_courses = t.completed_courses, majors = t.majors,
                program = t.program, cohort = t.cohort
           FROM jsonb_to_recordset($1) AS t(id uuid, standing text, max_credits int2,
                completed_courses text[], majors text[], program text, cohort text)
          WHERE s.id = t.id",
    )
    .bind(Json(json))
    .execute(conn)
    .await?;
    Ok(())
}

/// The ids of the student accounts of `usernames`, by username.
pub async fn student_ids(
    conn: &mut PgConnection,
    usernames: &[String],
) -> DbResult<HashMap<String, Uuid>> {
    let rows: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT username, id FROM students WHERE username = ANY($1) AND role = 'student'",
    )
    .bind(usernames)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// A stored time ticket.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TicketRow {
    /// Term.
    pub term_id: Uuid,
    /// Student.
    pub student_id: Uuid,
    /// Opens.
    pub opens_at: DateTime<Utc>,
    /// Closes.
    pub closes_at: Option<DateTime<Utc>>,
}

/// The tickets of `students` in `terms` (locked).
pub async fn tickets(
    conn: &mut PgConnection,
    terms: &[Uuid],
    students: &[Uuid],
) -> DbResult<Vec<TicketRow>> {
    Ok(sqlx::query_as(
        "SELECT term_id, student_id, opens_at, closes_at FROM time_tickets
          WHERE term_id = ANY($1) AND student_id = ANY($2) FOR UPDATE",
    )
    .bind(terms)
    .bind(students)
    .fetch_all(conn)
    .await?)
}

/// Create or replace tickets.
pub async fn upsert_tickets(conn: &mut PgConnection, rows: &[TicketRow]) -> DbResult<()> {
    let terms: Vec<Uuid> = rows.iter().map(|t| t.term_id).collect();
    let students: Vec<Uuid> = rows.iter().map(|t| t.student_id).collect();
    let opens: Vec<DateTime<Utc>> = rows.iter().map(|t| t.opens_at).collect();
    let closes: Vec<Option<DateTime<Utc>>> = rows.iter().map(|t| t.closes_at).collect();
    sqlx::query(
        "INSERT INTO time_tickets (term_id, student_id, opens_at, closes_at)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[])
         ON CONFLICT (student_id, term_id)
           DO UPDATE SET opens_at = EXCLUDED.opens_at, closes_at = EXCLUDED.closes_at",
    )
    .bind(terms)
    .bind(students)
    .bind(opens)
    .bind(closes)
    .execute(conn)
    .await?;
    Ok(())
}

fn unzip3<A: Clone, B: Clone, C: Clone>(rows: &[(A, B, C)]) -> (Vec<A>, Vec<B>, Vec<C>) {
    let mut a = Vec::with_capacity(rows.len());
    let mut b = Vec::with_capacity(rows.len());
    let mut c = Vec::with_capacity(rows.len());
    for (x, y, z) in rows {
        a.push(x.clone());
        b.push(y.clone());
        c.push(z.clone());
    }
    (a, b, c)
}
