//! Catalog queries: terms (with their add/drop deadlines), courses, sections and the links
//! between them, registration windows, and sections'
//! committed seat counts with the version they were read at (what the Redis mirror is
//! rebuilt from and seat streams start from).

use super::{DbError, DbResult};
use crate::resources::{
    Course, LinkEnd, MeetingDto, NewSection, NewTerm, NewWindow, PoolView, RegistrationWindow,
    RestrictionDto, SectionFacts, SectionView, Standing, Term, TermDeadlines, pools_from,
};
use crate::shard::shard_of;
use chrono::{DateTime, Utc};
use registrar_actors::AttributeKind;
use registrar_actors::student_rules::{
    Component, CourseGrading, GradingBasis, Meeting, OfferedSection, Restriction, Window,
};
use registrar_actors::{Counts, SectionId, Version};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

/// Create a term.
pub async fn create_term(pool: &PgPool, t: &NewTerm) -> DbResult<Term> {
    let id = Uuid::new_v4();
    sqlx::query("INSERT INTO terms (id, code, name) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(&t.code)
        .bind(&t.name)
        .execute(pool)
        .await?;
    Ok(Term {
        id,
        code: t.code.clone(),
        name: t.name.clone(),
        deadlines: TermDeadlines::default(),
    })
}

/// A `terms` row as listed.
#[derive(sqlx::FromRow)]
struct TermRow {
    /// Term id.
    id: Uuid,
    /// Short code, e.g. `2027SP`.
    code: String,
    /// Display name.
    name: String,
    /// Its deadlines.
    #[sqlx(flatten)]
    deadlines: DeadlinesRow,
}

/// The deadlines of a `terms` row.
#[derive(sqlx::FromRow)]
struct DeadlinesRow {
    /// Last instant to add.
    add_by: Option<DateTime<Utc>>,
    /// Last instant to drop with no record.
    drop_by: Option<DateTime<Utc>>,
    /// Last instant to withdraw.
    withdraw_by: Option<DateTime<Utc>>,
}

impl From<DeadlinesRow> for TermDeadlines {
    fn from(r: DeadlinesRow) -> Self {
        TermDeadlines {
            add_by: r.add_by,
            drop_by: r.drop_by,
            withdraw_by: r.withdraw_by,
        }
    }
}

/// All terms, newest first.
pub async fn list_terms(pool: &PgPool) -> DbResult<Vec<Term>> {
    let rows: Vec<TermRow> = sqlx::query_as(
        "SELECT id, code, name, add_by, drop_by, withdraw_by FROM terms
          ORDER BY created_at DESC, code",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Term {
            id: r.id,
            code: r.code,
            name: r.name,
            deadlines: r.deadlines.into(),
        })
        .collect())
}

/// The deadlines of `term`; `None` if there is no such term.
pub async fn deadlines<'e>(
    pool: impl sqlx::PgExecutor<'e>,
    term: Uuid,
) -> DbResult<Option<TermDeadlines>> {
    let row: Option<DeadlinesRow> =
        sqlx::query_as("SELECT add_by, drop_by, withdraw_by FROM terms WHERE id = $1")
            .bind(term)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(Into::into))
}

/// Replace the deadlines of `term` (checked in order by the caller, and by the table);
/// the deadlines as stored (to the microsecond), or `None` if there is no such term.
pub async fn set_deadlines<'e>(
    pool: impl sqlx::PgExecutor<'e>,
    term: Uuid,
    d: &TermDeadlines,
) -> DbResult<Option<TermDeadlines>> {
    let row: Option<DeadlinesRow> = sqlx::query_as(
        "UPDATE terms SET add_by = $2, drop_by = $3, withdraw_by = $4 WHERE id = $1
         RETURNING add_by, drop_by, withdraw_by",
    )
    .bind(term)
    .bind(d.add_by)
    .bind(d.drop_by)
    .bind(d.withdraw_by)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}

/// Whether a term exists.
pub async fn term_exists<'e>(pool: impl sqlx::PgExecutor<'e>, id: Uuid) -> DbResult<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM terms WHERE id = $1)")
            .bind(id)
            .fetch_one(pool)
            .await?,
    )
}

/// The term of section `id`, if there is such a section.
pub async fn term_of_section<'e>(
    pool: impl sqlx::PgExecutor<'e>,
    id: Uuid,
) -> DbResult<Option<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT term_id FROM sections WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Create or replace the window of `term` for one standing.
pub async fn upsert_window<'e>(
    pool: impl sqlx::PgExecutor<'e>,
    term: Uuid,
    w: &NewWindow,
) -> DbResult<RegistrationWindow> {
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO registration_windows (id, term_id, standing, opens_at, closes_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (term_id, standing) DO UPDATE SET opens_at = EXCLUDED.opens_at, closes_at = EXCLUDED.closes_at
         RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(term)
    .bind(w.standing.as_str())
    .bind(w.opens_at)
    .bind(w.closes_at)
    .fetch_one(pool)
    .await
?;
    Ok(RegistrationWindow {
        id,
        term_id: term,
        standing: w.standing,
        opens_at: w.opens_at,
        closes_at: w.closes_at,
    })
}

/// A `registration_windows` row, whole.
#[derive(sqlx::FromRow)]
struct FullWindowRow {
    /// Id.
    id: Uuid,
    /// Standing name.
    standing: String,
    /// First instant registration is open.
    opens_at: DateTime<Utc>,
    /// First instant it is closed again.
    closes_at: DateTime<Utc>,
}

/// Every window of `term`, in standing order (freshman first).
pub async fn windows(pool: &PgPool, term: Uuid) -> DbResult<Vec<RegistrationWindow>> {
    let rows: Vec<FullWindowRow> = sqlx::query_as(
        "SELECT id, standing, opens_at, closes_at FROM registration_windows WHERE term_id = $1
          ORDER BY array_position(ARRAY['freshman','sophomore','junior','senior','graduate'], standing)",
    )
    .bind(term)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(RegistrationWindow {
                id: r.id,
                term_id: term,
                standing: Standing::parse(&r.standing)
                    .ok_or_else(|| DbError::Other(format!("unknown standing {:?}", r.standing)))?,
                opens_at: r.opens_at,
                closes_at: r.closes_at,
            })
        })
        .collect()
}

/// The bounds of a `registration_windows` row.
#[derive(sqlx::FromRow)]
struct WindowRow {
    /// First instant registration is open.
    opens_at: DateTime<Utc>,
    /// First instant it is closed again.
    closes_at: DateTime<Utc>,
}

/// The window of `term` for `standing`, if any.
pub async fn window(pool: &PgPool, term: Uuid, standing: Standing) -> DbResult<Option<Window>> {
    let row: Option<WindowRow> = sqlx::query_as(
        "SELECT opens_at, closes_at FROM registration_windows WHERE term_id = $1 AND standing = $2",
    )
    .bind(term)
    .bind(standing.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |WindowRow {
             opens_at,
             closes_at,
         }| Window {
            opens_at,
            closes_at,
        },
    ))
}

/// Create a course.
pub async fn create_course(pool: &PgPool, c: &Course) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO courses (code, title, credits, prerequisites, components, corequisites,
                              min_credits, max_credits, grading_bases)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, COALESCE($9, '{letter}'))",
    )
    .bind(&c.code)
    .bind(&c.title)
    .bind(c.credits as i16)
    .bind(&c.prerequisites)
    .bind(&c.components)
    .bind(&c.corequisites)
    .bind(c.min_credits.map(|n| n as i16))
    .bind(c.max_credits.map(|n| n as i16))
    .bind(&c.grading_bases)
    .execute(pool)
    .await?;
    Ok(())
}

/// A course as stored.
#[derive(sqlx::FromRow)]
struct CourseRow {
    code: String,
    title: String,
    credits: i16,
    prerequisites: Vec<String>,
    components: Vec<String>,
    corequisites: Vec<String>,
    min_credits: i16,
    max_credits: i16,
    grading_bases: Vec<String>,
}

/// Course `code`, locked for an update; `None` if there is no such course.
pub async fn course_for_update(
    tx: &mut sqlx::PgConnection,
    code: &str,
) -> DbResult<Option<Course>> {
    let row: Option<CourseRow> = sqlx::query_as(
        "SELECT code, title, credits, prerequisites, components, corequisites,
                min_credits, max_credits, grading_bases
           FROM courses WHERE code = $1 FOR UPDATE",
    )
    .bind(code)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|r| Course {
        code: r.code,
        title: r.title,
        credits: r.credits as u32,
        prerequisites: r.prerequisites,
        components: r.components,
        corequisites: r.corequisites,
        min_credits: Some(r.min_credits as u32),
        max_credits: Some(r.max_credits as u32),
        grading_bases: Some(r.grading_bases),
    }))
}

/// The basis a place with no options recorded is graded by: `letter` where the course
/// lists it, else its first.
fn default_basis(bases: &[String]) -> &str {
    if bases.iter().any(|b| b == "letter") {
        "letter"
    } else {
        bases.first().map(String::as_str).unwrap_or("letter")
    }
}

/// Active places of `new`'s course whose recorded options fall outside `new`'s range or
/// bases, and (when `new` changes the default basis of `old`) active places with no
/// options recorded, which take the default: (outside, implicit).
pub async fn places_outside(
    tx: &mut sqlx::PgConnection,
    new: &Course,
    old: &Course,
) -> DbResult<(i64, i64)> {
    let bases = new.grading_bases.clone().unwrap_or_default();
    let old_bases = old.grading_bases.clone().unwrap_or_default();
    let default_changes = default_basis(&bases) != default_basis(&old_bases);
    let (outside, implicit): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE o.student_id IS NOT NULL
                                  AND (o.credits NOT BETWEEN $2 AND $3
                                       OR NOT (o.grading_basis = ANY ($4)))),
                count(*) FILTER (WHERE o.student_id IS NULL AND $5)
           FROM enrollments e JOIN sections s ON s.id = e.section_id
           LEFT JOIN enrollment_options o ON o.student_id = e.student_id
                                         AND o.section_id = e.section_id
          WHERE s.course_code = $1 AND e.status <> 'dropped'",
    )
    .bind(&new.code)
    .bind(new.min_credits.unwrap_or(new.credits) as i16)
    .bind(new.max_credits.unwrap_or(new.credits) as i16)
    .bind(&bases)
    .bind(default_changes)
    .fetch_one(&mut *tx)
    .await?;
    Ok((outside, implicit))
}

/// Store `course`'s credit range and grading bases; the ids of its sections.
pub async fn update_course_grading(
    tx: &mut sqlx::PgConnection,
    course: &Course,
) -> DbResult<Vec<Uuid>> {
    sqlx::query(
        "UPDATE courses SET min_credits = $2, max_credits = $3, grading_bases = $4 WHERE code = $1",
    )
    .bind(&course.code)
    .bind(course.min_credits.unwrap_or(course.credits) as i16)
    .bind(course.max_credits.unwrap_or(course.credits) as i16)
    .bind(course.grading_bases.clone().unwrap_or_default())
    .execute(&mut *tx)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT id FROM sections WHERE course_code = $1 ORDER BY id")
            .bind(&course.code)
            .fetch_all(&mut *tx)
            .await?,
    )
}

/// Parse stored component names (the table's CHECK admits only known ones).
fn components(names: &[String]) -> DbResult<Vec<Component>> {
    names.iter().map(|n| component(n)).collect()
}

fn component(name: &str) -> DbResult<Component> {
    name.parse()
        .map_err(|e: String| DbError::Other(format!("stored component: {e}")))
}

/// The required components of course `code`, or `None` if there is no such course.
pub async fn course_components<'e>(
    pool: impl sqlx::PgExecutor<'e>,
    code: &str,
) -> DbResult<Option<Vec<Component>>> {
    let row: Option<Vec<String>> =
        sqlx::query_scalar("SELECT components FROM courses WHERE code = $1")
            .bind(code)
            .fetch_optional(pool)
            .await?;
    row.as_deref().map(components).transpose()
}

/// A section as a link end.
#[derive(sqlx::FromRow)]
struct LinkEndRow {
    /// Section id.
    id: Uuid,
    /// Term.
    term_id: Uuid,
    /// Course.
    course_code: String,
    /// Component name.
    component: String,
}

/// The sections of `ids` that exist, as link ends (locked against a concurrent change of
/// their links until the transaction ends).
pub async fn link_ends<'e>(
    pool: impl sqlx::PgExecutor<'e>,
    ids: &[Uuid],
) -> DbResult<Vec<LinkEnd>> {
    let rows: Vec<LinkEndRow> = sqlx::query_as(
        "SELECT id, term_id, course_code, component FROM sections WHERE id = ANY($1)
          ORDER BY id FOR SHARE",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(LinkEnd {
                id: r.id,
                term_id: r.term_id,
                course_code: r.course_code,
                component: component(&r.component)?,
            })
        })
        .collect()
}

/// The sections linked to `section`, either side.
pub async fn links_of<'e>(pool: impl sqlx::PgExecutor<'e>, section: Uuid) -> DbResult<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT linked_id FROM section_links WHERE primary_id = $1
         UNION SELECT primary_id FROM section_links WHERE linked_id = $1",
    )
    .bind(section)
    .fetch_all(pool)
    .await?)
}

/// Replace every link of `section` (either side) with `pairs` of `(primary_id, linked_id)`.
pub async fn replace_links(
    tx: &mut sqlx::PgConnection,
    section: Uuid,
    pairs: &[(Uuid, Uuid)],
) -> DbResult<()> {
    sqlx::query("DELETE FROM section_links WHERE primary_id = $1 OR linked_id = $1")
        .bind(section)
        .execute(&mut *tx)
        .await?;
    let (primaries, linked): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    sqlx::query(
        "INSERT INTO section_links (primary_id, linked_id)
         SELECT * FROM unnest($1::uuid[], $2::uuid[]) ON CONFLICT DO NOTHING",
    )
    .bind(&primaries)
    .bind(&linked)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Create a section with its restrictions and reserved pools (as [`NewSection::validate`]
/// left them); returns its id.
pub async fn create_section(
    tx: &mut sqlx::PgConnection,
    s: &NewSection,
    meetings: &[Meeting],
    restrictions: &[Restriction],
    shards: u32,
) -> DbResult<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sections (id, term_id, course_code, section_code, capacity, waitlist_capacity,
                               meetings, shard, component, restrictions, waitlist_mode,
                               offer_window_secs, consent_required)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(id)
    .bind(s.term_id)
    .bind(&s.course_code)
    .bind(&s.section_code)
    .bind(s.capacity as i32)
    .bind(s.waitlist_capacity as i32)
    .bind(Json(meetings))
    .bind(shard_of(id, shards) as i32)
    .bind(&s.component)
    .bind(Json(restrictions))
    .bind(&s.waitlist_mode)
    .bind((s.offer_window_minutes * 60) as i32)
    .bind(s.consent_required)
    .execute(&mut *tx)
    .await?;
    let pools = pools_from(&s.reserved, &[]);
    let ids: Vec<Uuid> = pools.iter().map(|p| p.id.0).collect();
    let kinds: Vec<&str> = pools.iter().map(|p| p.attribute.kind.as_str()).collect();
    let values: Vec<&str> = pools.iter().map(|p| p.attribute.value.as_str()).collect();
    let seats: Vec<i32> = pools.iter().map(|p| p.seats as i32).collect();
    let release: Vec<Option<DateTime<Utc>>> = pools.iter().map(|p| p.release_at).collect();
    sqlx::query(
        "INSERT INTO section_reserves (id, section_id, position, attribute, value, seats, release_at)
         SELECT t.id, $1, (t.n - 1)::int2, t.kind, t.value, t.seats, t.release
           FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int4[], $6::timestamptz[])
                WITH ORDINALITY AS t(id, kind, value, seats, release, n)",
    )
    .bind(id)
    .bind(&ids)
    .bind(&kinds)
    .bind(&values)
    .bind(&seats)
    .bind(&release)
    .execute(&mut *tx)
    .await?;
    Ok(id)
}

/// A section joined with its course, as the catalog shows it.
#[derive(sqlx::FromRow)]
struct SectionRow {
    /// Section id.
    id: Uuid,
    /// Course, e.g. `CS101`.
    course_code: String,
    /// Section within the course, e.g. `01`.
    section_code: String,
    /// The course's title.
    title: String,
    /// Term the section is offered in.
    term_id: Uuid,
    /// Seats offered.
    capacity: i32,
    /// Seats held (committed).
    seats_taken: i32,
    /// Waitlist places offered.
    waitlist_capacity: i32,
    /// Students waiting (committed).
    waitlist_length: i32,
    /// The course's credits.
    credits: i16,
    /// The course's credit range and grading bases.
    #[sqlx(flatten)]
    grading: GradingRow,
    /// Weekly meetings; a row that does not decode fails the read (a section must never
    /// look free of meetings to the time-conflict rule).
    meetings: Json<Vec<Meeting>>,
    /// Course codes to complete first.
    prerequisites: Vec<String>,
    /// Which component of the course the section is.
    component: String,
    /// Sections linked to it, either side.
    links: Vec<Uuid>,
    /// The course's required components.
    components: Vec<String>,
    /// The course's corequisites.
    corequisites: Vec<String>,
    /// Who may take the section.
    restrictions: Json<Vec<Restriction>>,
    /// Its reserved pools with their seats taken, in order.
    reserved: Json<Vec<PoolRow>>,
    /// `auto` or `offer`.
    waitlist_mode: String,
    /// How long an offer stands.
    offer_window_secs: i32,
    /// Whether adding it takes a consent permit.
    consent_required: bool,
}

/// A reserved pool with its seats taken, as [`section_select`] reads it.
#[derive(serde::Deserialize)]
struct PoolRow {
    id: Uuid,
    attribute: AttributeKind,
    value: String,
    seats: u32,
    taken: u32,
    release_at: Option<DateTime<Utc>>,
    released: bool,
}

/// The sections linked to `s.id`, on either side of the link, as one `uuid[]` column (a
/// macro so queries stay `&'static str`).
macro_rules! links_of_s {
    () => {
        "ARRAY(SELECT l.linked_id FROM section_links l WHERE l.primary_id = s.id
               UNION SELECT l.primary_id FROM section_links l WHERE l.linked_id = s.id
               ORDER BY 1) AS links"
    };
}

/// The columns of a [`SectionRow`] (a macro so queries stay `&'static str`).
macro_rules! section_select {
    () => {
        concat!(
            "SELECT s.id, s.course_code, s.section_code, c.title, s.term_id, s.capacity,
                s.seats_taken, s.waitlist_capacity, s.waitlist_length, c.credits, s.meetings, c.prerequisites,
                c.min_credits, c.max_credits, c.grading_bases,
                s.component, c.components, c.corequisites, s.restrictions, s.waitlist_mode,
                s.offer_window_secs, s.consent_required,
                COALESCE((SELECT json_agg(json_build_object(
                          'id', r.id, 'attribute', r.attribute, 'value', r.value, 'seats', r.seats,
                          'release_at', r.release_at,
                          'released', r.released_at IS NOT NULL
                                      OR COALESCE(r.release_at <= now(), false),
                          'taken', (SELECT count(*) FROM enrollments e
                                     WHERE e.section_id = s.id AND e.reserve_id = r.id
                                       AND e.status IN ('enrolled', 'held', 'offered')))
                          ORDER BY r.position)
                     FROM section_reserves r WHERE r.section_id = s.id), '[]') AS reserved, ",
            links_of_s!(),
            " FROM sections s JOIN courses c ON c.code = s.course_code "
        )
    };
}

fn view(row: SectionRow) -> SectionView {
    let seats_left = (row.capacity - row.seats_taken).max(0) as u32;
    let reserved: Vec<PoolView> = row
        .reserved
        .0
        .into_iter()
        .map(|p| PoolView {
            id: p.id,
            attribute: p.attribute,
            value: p.value,
            seats: p.seats,
            taken: p.taken,
            seats_left: if p.released {
                0
            } else {
                p.seats.saturating_sub(p.taken)
            },
            release_at: p.release_at,
            released: p.released,
        })
        .collect();
    let held_back: u32 = reserved.iter().map(|p| p.seats_left).sum();
    SectionView {
        general_seats_left: seats_left.saturating_sub(held_back),
        waitlist_mode: row.waitlist_mode,
        offer_window_minutes: (row.offer_window_secs / 60) as u32,
        consent_required: row.consent_required,
        reserved,
        restrictions: row
            .restrictions
            .0
            .iter()
            .map(RestrictionDto::from)
            .collect(),
        id: row.id,
        course_code: row.course_code,
        section_code: row.section_code,
        title: row.title,
        term_id: row.term_id,
        capacity: row.capacity as u32,
        seats_taken: row.seats_taken as u32,
        seats_left,
        waitlist_capacity: row.waitlist_capacity as u32,
        waitlist_length: row.waitlist_length as u32,
        credits: row.credits as u32,
        min_credits: row.grading.min_credits as u32,
        max_credits: row.grading.max_credits as u32,
        grading_bases: row.grading.grading_bases,
        meetings: row.meetings.0.iter().map(MeetingDto::from).collect(),
        prerequisites: row.prerequisites,
        component: row.component,
        links: row.links,
        components: row.components,
        corequisites: row.corequisites,
    }
}

/// One section with its counters as committed.
pub async fn section(pool: &PgPool, id: Uuid) -> DbResult<Option<SectionView>> {
    let row: Option<SectionRow> = sqlx::query_as(concat!(section_select!(), "WHERE s.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(view))
}

/// A page of a term's sections in (course, section) order, after `cursor` (a section id).
pub async fn list_sections(
    pool: &PgPool,
    term: Uuid,
    filter: &SectionFilter,
) -> DbResult<Vec<SectionView>> {
    // A search matches a course code prefix (compared in canonical form: upper case, no
    // separator) or a substring of the title; LIKE's wildcards in it are taken literally.
    let escaped = filter.search.as_deref().map(|q| {
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    });
    let code_prefix = escaped
        .as_deref()
        .map(|q| format!("{}%", q.to_uppercase().replace([' ', '-'], "")));
    let title_part = escaped.as_deref().map(|q| format!("%{q}%"));
    let rows: Vec<SectionRow> = sqlx::query_as(concat!(
        section_select!(),
        "WHERE s.term_id = $1 AND ($2::text IS NULL OR s.course_code = $2)
            AND ($3::uuid IS NULL OR (s.course_code, s.section_code, s.id) >
                 (SELECT course_code, section_code, id FROM sections WHERE id = $3))
            AND ($5::text IS NULL OR s.course_code LIKE $5 OR c.title ILIKE $6)
            AND ($7::text IS NULL OR s.meetings @> jsonb_build_array(jsonb_build_object('day', $7::text)))
            AND ($8::text IS NULL OR NOT EXISTS
                 (SELECT 1 FROM jsonb_array_elements(s.meetings) m WHERE m->>'start' < $8))
            AND ($9::text IS NULL OR NOT EXISTS
                 (SELECT 1 FROM jsonb_array_elements(s.meetings) m WHERE m->>'end' > $9))
            AND (NOT $10 OR s.seats_taken < s.capacity)
          ORDER BY s.course_code, s.section_code, s.id LIMIT $4"
    ))
    .bind(term)
    .bind(filter.course.as_deref())
    .bind(filter.cursor)
    .bind(i64::from(filter.limit))
    .bind(code_prefix)
    .bind(title_part)
    .bind(filter.day.as_deref())
    .bind(filter.starts_after.as_deref())
    .bind(filter.ends_before.as_deref())
    .bind(filter.open_only)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(view).collect())
}

/// Which sections of a term to list (every field given must hold), and the page.
#[derive(Debug, Default)]
pub struct SectionFilter {
    /// Canonical course code.
    pub course: Option<String>,
    /// A course code prefix or words of the title.
    pub search: Option<String>,
    /// `mon` .. `sun`: meets that day.
    pub day: Option<String>,
    /// `HH:MM`: every meeting starts at or after it (zero-padded, so text order is time order).
    pub starts_after: Option<String>,
    /// `HH:MM`: every meeting ends at or before it.
    pub ends_before: Option<String>,
    /// Only sections with a free seat.
    pub open_only: bool,
    /// Start after this section.
    pub cursor: Option<Uuid>,
    /// Page size.
    pub limit: u32,
}

/// The fixed facts of a section joined with its course, for the student rules.
#[derive(sqlx::FromRow)]
struct FactsRow {
    /// Section id.
    id: Uuid,
    /// Term the section is offered in.
    term_id: Uuid,
    /// Course, e.g. `CS101`.
    course_code: String,
    /// Section within the course, e.g. `01`.
    section_code: String,
    /// The course's credits.
    credits: i16,
    /// The course's credit range and grading bases.
    #[sqlx(flatten)]
    grading: GradingRow,
    /// Weekly meetings; a row that does not decode fails the read (a section must never
    /// look free of meetings to the time-conflict rule).
    meetings: Json<Vec<Meeting>>,
    /// Course codes to complete first.
    prerequisites: Vec<String>,
    /// Which component of the course the section is.
    component: String,
    /// Sections linked to it, either side.
    links: Vec<Uuid>,
    /// The course's required components.
    components: Vec<String>,
    /// The course's corequisites.
    corequisites: Vec<String>,
    /// Who may take the section.
    restrictions: Json<Vec<Restriction>>,
    /// Whether adding it takes the instructor's consent.
    consent_required: bool,
}

/// A course's credit range and grading bases, as stored.
#[derive(sqlx::FromRow)]
struct GradingRow {
    /// Fewest credits.
    min_credits: i16,
    /// Most credits.
    max_credits: i16,
    /// Basis names (the table's CHECK admits only known ones).
    grading_bases: Vec<String>,
}

impl GradingRow {
    /// What the rules see, for a course of `credits`.
    fn rules(&self, credits: i16) -> DbResult<CourseGrading> {
        let bases = self
            .grading_bases
            .iter()
            .map(|b| {
                b.parse::<GradingBasis>()
                    .map_err(|e| DbError::Other(format!("stored grading basis: {e}")))
            })
            .collect::<DbResult<Vec<_>>>()?;
        Ok(CourseGrading {
            credits: credits as u32,
            min_credits: self.min_credits as u32,
            max_credits: self.max_credits as u32,
            bases,
        })
    }
}

/// The facts of sections, for the student rules (one query, links included).
pub async fn section_facts(pool: &PgPool, ids: &[Uuid]) -> DbResult<Vec<SectionFacts>> {
    let rows: Vec<FactsRow> = sqlx::query_as(concat!(
        "SELECT s.id, s.term_id, s.course_code, s.section_code, c.credits, s.meetings, c.prerequisites,
                c.min_credits, c.max_credits, c.grading_bases, s.component, c.components, c.corequisites, s.restrictions, s.consent_required, ",
        links_of_s!(),
        " FROM sections s JOIN courses c ON c.code = s.course_code WHERE s.id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(SectionFacts {
                term_id: row.term_id,
                section_code: row.section_code,
                grading: row.grading.rules(row.credits)?,
                offered: OfferedSection {
                    id: SectionId(row.id),
                    course_code: row.course_code,
                    credits: row.credits as u32,
                    meetings: row.meetings.0,
                    prerequisites: row.prerequisites,
                    component: component(&row.component)?,
                    required_components: components(&row.components)?,
                    links: row.links.into_iter().map(SectionId).collect(),
                    corequisites: row.corequisites,
                    restrictions: row.restrictions.0,
                    consent_required: row.consent_required,
                },
            })
        })
        .collect()
}

/// A section's committed counters, with the epoch they were read at.
#[derive(sqlx::FromRow)]
struct CountsRow {
    /// Section id.
    id: Uuid,
    /// Seats held.
    seats_taken: i32,
    /// Seats offered.
    capacity: i32,
    /// Students waiting.
    waitlist_length: i32,
    /// Waitlist places offered.
    waitlist_capacity: i32,
    /// The shard's ownership epoch when the row was read (or the row's, if newer).
    epoch: i64,
    /// Unused seats of the pools not released.
    reserved_left: i32,
}

/// The columns of a [`CountsRow`] (a macro so queries stay `&'static str`). The counts and
/// the shard's epoch come from one statement, so the read is a consistent point in the
/// section's history: after every commit of an older epoch (a move waits for those or
/// fences them), before every commit of this one. That is [`Version::read_at`].
macro_rules! counts_select {
    () => {
        "SELECT s.id, s.seats_taken, s.capacity, s.waitlist_length, s.waitlist_capacity,
                GREATEST(s.owner_epoch, COALESCE(o.epoch, 0)) AS epoch,
                COALESCE((SELECT sum(GREATEST(r.seats - (SELECT count(*) FROM enrollments e
                                     WHERE e.section_id = s.id AND e.reserve_id = r.id
                                       AND e.status IN ('enrolled', 'held', 'offered')), 0))
                            FROM section_reserves r
                           WHERE r.section_id = s.id AND r.released_at IS NULL), 0)::int4
                  AS reserved_left
           FROM sections s LEFT JOIN shard_owners o ON o.shard = s.shard "
    };
}

fn versioned(row: CountsRow) -> (SectionId, Version, Counts) {
    let counts = Counts {
        seats_taken: row.seats_taken as u32,
        capacity: row.capacity as u32,
        waitlist_length: row.waitlist_length as u32,
        waitlist_capacity: row.waitlist_capacity as u32,
        reserved_seats_left: (row.reserved_left as u32)
            .min((row.capacity - row.seats_taken).max(0) as u32),
    };
    (SectionId(row.id), Version::read_at(row.epoch), counts)
}

/// Every section's committed counts and their version (the Redis mirror is rebuilt from
/// them).
pub async fn all_section_counts(pool: &PgPool) -> DbResult<Vec<(SectionId, Version, Counts)>> {
    let rows: Vec<CountsRow> = sqlx::query_as(counts_select!()).fetch_all(pool).await?;
    Ok(rows.into_iter().map(versioned).collect())
}

/// The committed counts of the sections `ids` that exist, and their version (seat
/// streams start from them; the Redis mirror heals from them).
pub async fn section_counts(
    pool: &PgPool,
    ids: &[Uuid],
) -> DbResult<Vec<(SectionId, Version, Counts)>> {
    let rows: Vec<CountsRow> = sqlx::query_as(concat!(counts_select!(), "WHERE s.id = ANY($1)"))
        .bind(ids)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(versioned).collect())
}
