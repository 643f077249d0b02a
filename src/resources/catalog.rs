//! The catalog: terms with their registration windows and add/drop deadlines, courses (with their required
//! components and corequisites), sections with their meetings, and the links between a
//! course's primary sections and its labs or recitations.

use super::{
    Invalid, MAX_LINKS, Standing, invalid, optional_whole_number, present, schema, text,
    whole_number,
};
use chrono::{DateTime, Utc};
use registrar_actors::SectionId;
use registrar_actors::student_rules::{
    Component, CourseGrading, Deadlines, EnrollmentOptions, GradingBasis, Meeting, OfferedSection,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use uuid::Uuid;

/// A term.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Term {
    /// Id.
    pub id: Uuid,
    /// Short code, e.g. `2027SP`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// The term's add/drop deadlines (each null until an admin sets it).
    #[serde(default)]
    pub deadlines: TermDeadlines,
}

/// A term's add/drop deadlines (`PUT /terms/{id}/deadlines` replaces all three; one left
/// out or null is unset). Each is inclusive, judged by the database clock, and they come in
/// this order when given (equal ones allowed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TermDeadlines {
    /// The last instant a section may be added (enroll, swap, linked set, cart); after it
    /// an add is refused `add_deadline_passed`.
    #[serde(default)]
    pub add_by: Option<DateTime<Utc>>,
    /// The last instant a seat may be dropped with no record; after it a drop is a
    /// withdrawal (the seat is freed, the record keeps a W).
    #[serde(default)]
    pub drop_by: Option<DateTime<Utc>>,
    /// The last instant a seat may be withdrawn from; after it a seat's drop is refused
    /// `drop_deadline_passed` (a waitlist place may always be left).
    #[serde(default)]
    pub withdraw_by: Option<DateTime<Utc>>,
}

impl TermDeadlines {
    /// Check the fields: the deadlines given come in order.
    pub fn validate(&self) -> Result<(), Invalid> {
        let in_order = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| match (a, b) {
            (Some(a), Some(b)) => a <= b,
            _ => true,
        };
        if !in_order(self.add_by, self.drop_by) {
            return Err(invalid("drop_by", "must not be before add_by"));
        }
        if !in_order(self.drop_by, self.withdraw_by) {
            return Err(invalid("withdraw_by", "must not be before drop_by"));
        }
        if !in_order(self.add_by, self.withdraw_by) {
            return Err(invalid("withdraw_by", "must not be before add_by"));
        }
        debug_assert!(self.rules().in_order());
        Ok(())
    }

    /// The deadlines as the student rules take them.
    pub fn rules(&self) -> Deadlines {
        Deadlines {
            add_by: self.add_by,
            drop_by: self.drop_by,
            withdraw_by: self.withdraw_by,
        }
    }
}

/// `POST /terms` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTerm {
    /// Short code: 1-32 letters, digits, `_` or `-`.
    #[schema(schema_with = schema::term_code)]
    pub code: String,
    /// Display name.
    #[schema(schema_with = schema::text_200)]
    pub name: String,
}

impl NewTerm {
    /// Check the fields.
    pub fn validate(&self) -> Result<(), Invalid> {
        let ok = !self.code.is_empty()
            && self.code.len() <= 32
            && self
                .code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(invalid("code", "1-32 letters, digits, '_' or '-'"));
        }
        text("name", &self.name, 200)
    }
}

/// A registration window of a term for one standing.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RegistrationWindow {
    /// Id.
    pub id: Uuid,
    /// Term.
    pub term_id: Uuid,
    /// Who may register in it.
    pub standing: Standing,
    /// Opens (inclusive).
    pub opens_at: DateTime<Utc>,
    /// Closes (exclusive).
    pub closes_at: DateTime<Utc>,
}

/// `POST /terms/{id}/windows` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWindow {
    /// Standing.
    pub standing: Standing,
    /// Opens.
    pub opens_at: DateTime<Utc>,
    /// Closes; after `opens_at`.
    pub closes_at: DateTime<Utc>,
}

impl NewWindow {
    /// Check the fields.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.closes_at <= self.opens_at {
            return Err(invalid("closes_at", "must be after opens_at"));
        }
        Ok(())
    }
}

/// A course.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Course {
    /// Code, e.g. `CS101`: 2-8 letters, 2-4 digits, an optional letter suffix. Sent in any
    /// case with one space or hyphen after the letters (`cs 101`, `MATH-2413`); stored and
    /// answered in the canonical form (`CS101`, `MATH2413`).
    #[schema(schema_with = schema::course_code)]
    pub code: String,
    /// Title.
    #[schema(schema_with = schema::text_200)]
    pub title: String,
    /// Credits, 0-12.
    #[serde(deserialize_with = "whole_number")]
    #[schema(maximum = 12)]
    pub credits: u32,
    /// Course codes to complete first (at most 20; not the course itself).
    #[serde(default)]
    #[schema(schema_with = schema::prerequisites)]
    pub prerequisites: Vec<String>,
    /// Required components, the primary first (at most 4, no repeats): `["lecture","lab"]`
    /// means a student takes one lecture and one lab linked to it. Empty (the default):
    /// any one section.
    #[serde(default)]
    #[schema(schema_with = schema::components)]
    pub components: Vec<String>,
    /// Course codes to take in the same term, unless completed (at most 20; not the
    /// course itself).
    #[serde(default)]
    #[schema(schema_with = schema::corequisites)]
    pub corequisites: Vec<String>,
    /// The fewest credits a student may take the course for, 0 to `credits`; default
    /// `credits` (fixed credits). Answered always.
    #[serde(default, deserialize_with = "optional_whole_number")]
    #[schema(maximum = 12)]
    pub min_credits: Option<u32>,
    /// The most credits a student may take the course for, `credits` to 12; default
    /// `credits`. Answered always.
    #[serde(default, deserialize_with = "optional_whole_number")]
    #[schema(maximum = 12)]
    pub max_credits: Option<u32>,
    /// The grading bases the course may be taken under (1-3 of `letter`, `pass_fail`,
    /// `audit`); default `["letter"]`. An enrollment naming none gets `letter` if listed,
    /// else the first listed. Answered always, in that order.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::grading_bases)]
    pub grading_bases: Option<Vec<String>>,
}

/// A change of a course's credit range or grading bases; what it leaves out stays.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CourseGradingPatch {
    /// The fewest credits, 0 to the course's `credits`.
    #[serde(default, deserialize_with = "optional_whole_number")]
    #[schema(value_type = Option<u32>, maximum = 12)]
    pub min_credits: Option<u32>,
    /// The most credits, the course's `credits` to 12.
    #[serde(default, deserialize_with = "optional_whole_number")]
    #[schema(value_type = Option<u32>, maximum = 12)]
    pub max_credits: Option<u32>,
    /// 1-3 of `letter`, `pass_fail`, `audit`, no repeats.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::grading_bases)]
    pub grading_bases: Option<Vec<String>>,
}

impl CourseGradingPatch {
    /// `course` with this change, checked as a new course is.
    pub fn applied_to(&self, course: &Course) -> Result<Course, Invalid> {
        let mut new = Course {
            min_credits: self.min_credits.or(course.min_credits),
            max_credits: self.max_credits.or(course.max_credits),
            grading_bases: self.grading_bases.clone().or(course.grading_bases.clone()),
            ..course.clone()
        };
        new.validate()?;
        Ok(new)
    }
}

/// Parse grading basis names for `field`: 1-3, each known, no repeats; in their canonical
/// order (`letter`, `pass_fail`, `audit`).
pub fn parse_grading_bases(
    field: &'static str,
    names: &[String],
) -> Result<Vec<GradingBasis>, Invalid> {
    if names.is_empty() || names.len() > 3 {
        return Err(invalid(field, "1 to 3 of letter, pass_fail, audit"));
    }
    let mut out: Vec<GradingBasis> = Vec::with_capacity(names.len());
    for name in names {
        let b: GradingBasis = name.parse().map_err(|e: String| invalid(field, e))?;
        if out.contains(&b) {
            return Err(invalid(field, format!("`{b}` is listed twice")));
        }
        out.push(b);
    }
    out.sort();
    Ok(out)
}

/// Parse component names for `field`: each known, no repeats, at most 4.
pub fn parse_components(field: &'static str, names: &[String]) -> Result<Vec<Component>, Invalid> {
    if names.len() > 4 {
        return Err(invalid(field, "at most 4"));
    }
    let mut out: Vec<Component> = Vec::with_capacity(names.len());
    for name in names {
        let c: Component = name.parse().map_err(|e: String| invalid(field, e))?;
        if out.contains(&c) {
            return Err(invalid(field, format!("`{c}` is listed twice")));
        }
        out.push(c);
    }
    Ok(out)
}

/// The canonical form of a course code as catalogs write it, or `None` for anything else.
///
/// Accepted: 2-8 ASCII letters, then at most one separator (a space or a hyphen), then
/// 2-4 digits and an optional letter, in any case, with blanks around the whole
/// (`CS101`, `cs 101`, `MATH-2413`, `ENGL1301h`). Canonical: upper case, no separator
/// (`CS101`, `MATH2413`, `ENGL1301H`), the form the `courses` table's CHECK admits.
pub fn normalize_course_code(raw: &str) -> Option<String> {
    let code = raw.trim();
    let letters = code.chars().take_while(char::is_ascii_alphabetic).count();
    // ASCII letters are one byte each, so counts of them are byte offsets too.
    let rest = &code[letters..];
    let rest = rest
        .strip_prefix(' ')
        .or_else(|| rest.strip_prefix('-'))
        .unwrap_or(rest);
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let suffix = &rest[digits..];
    let suffix_ok =
        suffix.is_empty() || (suffix.len() == 1 && suffix.chars().all(|c| c.is_ascii_alphabetic()));
    if !(2..=8).contains(&letters) || !(2..=4).contains(&digits) || !suffix_ok {
        return None;
    }
    let canonical = format!("{}{}{}", &code[..letters], &rest[..digits], suffix);
    Some(canonical.to_ascii_uppercase())
}

/// Normalise every code of `codes` for `field` (dropping repeats, keeping the first
/// order); the first one that is not a course code is the error.
pub(crate) fn normalize_course_codes(
    field: &'static str,
    codes: &[String],
) -> Result<Vec<String>, Invalid> {
    let mut out: Vec<String> = Vec::with_capacity(codes.len());
    for raw in codes {
        let code = normalize_course_code(raw)
            .ok_or_else(|| invalid(field, format!("`{raw}` is not a course code like CS101")))?;
        if !out.contains(&code) {
            out.push(code);
        }
    }
    Ok(out)
}

/// Whether `code` is a course code in the canonical form (`CS101`, `MATH2210H`).
pub fn is_course_code(code: &str) -> bool {
    let letters = code.chars().take_while(|c| c.is_ascii_uppercase()).count();
    let rest = &code[letters..];
    let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
    let suffix = &rest[digits..];
    (2..=8).contains(&letters)
        && (2..=4).contains(&digits)
        && (suffix.is_empty()
            || (suffix.len() == 1 && suffix.chars().all(|c| c.is_ascii_uppercase())))
}

/// Whether a course of `credits` may be taken for `min`..=`max` of them: the range holds
/// the credits, within 0-12 (the field at fault and why, if not).
pub fn check_credit_range(credits: u32, min: u32, max: u32) -> Result<(), Invalid> {
    if min > credits {
        return Err(invalid("min_credits", "0 to the course's credits"));
    }
    if max < credits || max > 12 {
        return Err(invalid("max_credits", "the course's credits to 12"));
    }
    Ok(())
}

impl Course {
    /// Check the fields, bringing the course codes to their canonical form.
    pub fn validate(&mut self) -> Result<(), Invalid> {
        self.code = normalize_course_code(&self.code).ok_or_else(|| {
            invalid(
                "code",
                "like CS101 or MATH-2413: 2-8 letters, 2-4 digits, an optional letter",
            )
        })?;
        text("title", &self.title, 200)?;
        if self.credits > 12 {
            return Err(invalid("credits", "0 to 12"));
        }
        let min = *self.min_credits.get_or_insert(self.credits);
        let max = *self.max_credits.get_or_insert(self.credits);
        check_credit_range(self.credits, min, max)?;
        let bases = self
            .grading_bases
            .get_or_insert_with(|| vec![GradingBasis::Letter.as_str().to_string()]);
        *bases = parse_grading_bases("grading_bases", bases)?
            .iter()
            .map(|b| b.as_str().to_string())
            .collect();
        if self.prerequisites.len() > 20 {
            return Err(invalid("prerequisites", "at most 20"));
        }
        self.prerequisites = normalize_course_codes("prerequisites", &self.prerequisites)?;
        if self.prerequisites.contains(&self.code) {
            return Err(invalid(
                "prerequisites",
                format!("`{}` cannot be its own prerequisite", self.code),
            ));
        }
        parse_components("components", &self.components)?;
        if self.corequisites.len() > 20 {
            return Err(invalid("corequisites", "at most 20"));
        }
        self.corequisites = normalize_course_codes("corequisites", &self.corequisites)?;
        if self.corequisites.contains(&self.code) {
            return Err(invalid(
                "corequisites",
                format!("`{}` cannot be its own corequisite", self.code),
            ));
        }
        Ok(())
    }
}

/// A weekly meeting, e.g. `{"day":"mon","start":"09:00","end":"10:15"}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeetingDto {
    /// `mon` .. `sun`.
    #[schema(schema_with = schema::meeting_day)]
    pub day: String,
    /// `HH:MM`, 24-hour clock.
    #[schema(example = "09:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    /// `HH:MM`, after `start`.
    #[schema(example = "10:15", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub end: String,
}

impl From<&Meeting> for MeetingDto {
    fn from(m: &Meeting) -> Self {
        MeetingDto {
            day: m.day.as_str().into(),
            start: m.start.to_string(),
            end: m.end.to_string(),
        }
    }
}

/// Parse meetings, checking each.
pub fn parse_meetings(dtos: &[MeetingDto]) -> Result<Vec<Meeting>, Invalid> {
    if dtos.len() > 14 {
        return Err(invalid("meetings", "at most 14"));
    }
    dtos.iter()
        .map(|m| {
            let value = serde_json::json!({"day": m.day, "start": m.start, "end": m.end});
            let meeting: Meeting =
                serde_json::from_value(value).map_err(|e| invalid("meetings", e.to_string()))?;
            if meeting.end <= meeting.start {
                return Err(invalid("meetings", "end must be after start"));
            }
            Ok(meeting)
        })
        .collect()
}

/// `POST /sections` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSection {
    /// Term.
    pub term_id: Uuid,
    /// Course, in any form [`Course::code`] accepts.
    #[schema(schema_with = schema::course_code)]
    pub course_code: String,
    /// Section code within the course, e.g. `01`: 1-8 letters or digits.
    #[schema(schema_with = schema::section_code)]
    pub section_code: String,
    /// Seats, 0-100000.
    #[serde(deserialize_with = "whole_number")]
    #[schema(maximum = 100_000)]
    pub capacity: u32,
    /// Waitlist places, 0-100000.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(maximum = 100_000)]
    pub waitlist_capacity: u32,
    /// Weekly meetings (at most 14).
    #[serde(default)]
    #[schema(max_items = 14)]
    pub meetings: Vec<MeetingDto>,
    /// Which of the course's components this section is (default `lecture`).
    #[serde(default = "lecture")]
    #[schema(schema_with = schema::component)]
    pub component: String,
    /// Sections of the same course and term to link this one to (at most 50): a lab names
    /// its lecture(s), or a lecture names its labs. One side of each link must be the
    /// course's primary component.
    #[serde(default)]
    #[schema(schema_with = schema::links)]
    pub links: Vec<Uuid>,
    /// Seats set aside for students with an attribute (at most 10 pools; their seats
    /// together at most the capacity).
    #[serde(default)]
    #[schema(max_items = 10)]
    pub reserved: Vec<super::NewPool>,
    /// Who may take the section (at most 10; every one must let the student in).
    #[serde(default)]
    #[schema(max_items = 10)]
    pub restrictions: Vec<super::RestrictionDto>,
    /// How a freed seat goes to the waitlist: `auto` (the next student who may take it is
    /// enrolled at once; the default) or `offer` (it is offered to them, held until they
    /// accept or decline, for `offer_window_minutes`).
    #[serde(default = "auto")]
    #[schema(schema_with = super::policy::schema::waitlist_mode)]
    pub waitlist_mode: String,
    /// How long an offer stands, 1-43200 minutes (30 days; default 1440, a day).
    #[serde(default = "a_day", deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 43200, default = 1440)]
    pub offer_window_minutes: u32,
    /// Whether a student needs the instructor's consent (a `consent` permit) to add it.
    #[serde(default)]
    pub consent_required: bool,
}

fn auto() -> String {
    "auto".into()
}

fn a_day() -> u32 {
    1440
}

fn lecture() -> String {
    Component::Lecture.as_str().into()
}

/// Check a list of links: at most [`MAX_LINKS`], repeats dropped (first order kept), not
/// `this` itself.
pub fn check_link_ids(this: Option<Uuid>, links: &[Uuid]) -> Result<Vec<Uuid>, Invalid> {
    if links.len() > MAX_LINKS {
        return Err(invalid("links", format!("at most {MAX_LINKS}")));
    }
    let mut out: Vec<Uuid> = Vec::with_capacity(links.len());
    for id in links {
        if Some(*id) == this {
            return Err(invalid("links", "a section cannot be linked to itself"));
        }
        if !out.contains(id) {
            out.push(*id);
        }
    }
    Ok(out)
}

/// `PUT /sections/{id}/links` body: the sections linked to this one, replacing the links
/// it has (on either side).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionLinks {
    /// Sections of the same course and term (at most 50; empty unlinks the section).
    #[schema(schema_with = schema::links)]
    pub links: Vec<Uuid>,
}

/// What the link rules look at of a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkEnd {
    /// Id.
    pub id: Uuid,
    /// Term.
    pub term_id: Uuid,
    /// Course (canonical code).
    pub course_code: String,
    /// Its component.
    pub component: Component,
}

/// That `component` is one of the course's `components` (any component will do for a
/// course without any).
pub fn check_component(
    course: &str,
    components: &[Component],
    component: Component,
) -> Result<(), Invalid> {
    if components.is_empty() || components.contains(&component) {
        return Ok(());
    }
    let names: Vec<&str> = components.iter().map(|c| c.as_str()).collect();
    Err(invalid(
        "component",
        format!(
            "{course}'s components are {}; `{component}` is not one of them",
            names.join(", ")
        ),
    ))
}

/// The `(primary_id, linked_id)` rows that link `this` to each of `others`, checked: each
/// other section is of the same course and term, of another component, and one side of
/// each link is the course's primary component (`components[0]`).
pub fn link_pairs(
    this: &LinkEnd,
    components: &[Component],
    others: &[LinkEnd],
) -> Result<Vec<(Uuid, Uuid)>, Invalid> {
    let Some(primary) = components.first().copied() else {
        if others.is_empty() {
            return Ok(vec![]);
        }
        return Err(invalid(
            "links",
            format!(
                "{} has no components (lecture, lab, ...), so its sections are not linked",
                this.course_code
            ),
        ));
    };
    others
        .iter()
        .map(|o| {
            if o.term_id != this.term_id || o.course_code != this.course_code {
                return Err(invalid(
                    "links",
                    format!(
                        "section {} is not a section of {} in the same term",
                        o.id, this.course_code
                    ),
                ));
            }
            if o.component == this.component {
                return Err(invalid(
                    "links",
                    format!(
                        "section {} is a {} too; a link joins two different components",
                        o.id, o.component
                    ),
                ));
            }
            if this.component == primary {
                Ok((this.id, o.id))
            } else if o.component == primary {
                Ok((o.id, this.id))
            } else {
                Err(invalid(
                    "links",
                    format!(
                        "section {} is a {} and this one a {}: one side of a link must be \
                         {}'s primary component, {primary}",
                        o.id, o.component, this.component, this.course_code
                    ),
                ))
            }
        })
        .collect()
}

impl NewSection {
    /// Check the fields, bringing the course code to its canonical form; returns the
    /// parsed meetings.
    pub fn validate(&mut self) -> Result<Vec<Meeting>, Invalid> {
        self.course_code = normalize_course_code(&self.course_code)
            .ok_or_else(|| invalid("course_code", "like CS101 or MATH-2413"))?;
        let ok = !self.section_code.is_empty()
            && self.section_code.len() <= 8
            && self.section_code.chars().all(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(invalid("section_code", "1-8 letters or digits"));
        }
        if self.capacity > 100_000 {
            return Err(invalid("capacity", "0 to 100000"));
        }
        if self.waitlist_capacity > 100_000 {
            return Err(invalid("waitlist_capacity", "0 to 100000"));
        }
        let component: Component = self
            .component
            .parse()
            .map_err(|e: String| invalid("component", e))?;
        self.component = component.as_str().into();
        self.links = check_link_ids(None, &self.links)?;
        self.reserved = super::check_pools(&self.reserved, self.capacity)?;
        if !matches!(self.waitlist_mode.as_str(), "auto" | "offer") {
            return Err(invalid("waitlist_mode", "auto or offer"));
        }
        if !(1..=43_200).contains(&self.offer_window_minutes) {
            return Err(invalid("offer_window_minutes", "1 to 43200"));
        }
        self.restrictions = super::check_restrictions(&self.restrictions)?
            .iter()
            .map(super::RestrictionDto::from)
            .collect();
        parse_meetings(&self.meetings)
    }

    /// The component, once [`NewSection::validate`] has passed.
    pub fn component(&self) -> Component {
        self.component.parse().unwrap_or_default()
    }
}

/// `PATCH /sections/{id}` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionPatch {
    /// New capacity, 0-100000: never below the seats taken; raising promotes from the
    /// waitlist.
    #[serde(deserialize_with = "whole_number")]
    #[schema(maximum = 100_000)]
    pub capacity: u32,
}

/// A section as the catalog shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SectionView {
    /// Id.
    pub id: Uuid,
    /// Course code.
    pub course_code: String,
    /// Section code.
    pub section_code: String,
    /// Course title.
    pub title: String,
    /// Term.
    pub term_id: Uuid,
    /// Seats offered.
    pub capacity: u32,
    /// Seats held.
    pub seats_taken: u32,
    /// Seats free.
    pub seats_left: u32,
    /// Waitlist places offered.
    pub waitlist_capacity: u32,
    /// Students waiting.
    pub waitlist_length: u32,
    /// Credits: what an enrollment naming none is taken for.
    pub credits: u32,
    /// The fewest credits the course may be taken for.
    #[serde(default)]
    pub min_credits: u32,
    /// The most credits the course may be taken for.
    #[serde(default)]
    pub max_credits: u32,
    /// The grading bases the course may be taken under.
    #[serde(default)]
    #[schema(schema_with = schema::grading_bases)]
    pub grading_bases: Vec<String>,
    /// Weekly meetings.
    pub meetings: Vec<MeetingDto>,
    /// Course codes to complete first.
    pub prerequisites: Vec<String>,
    /// Which of the course's components this section is.
    #[schema(schema_with = schema::component)]
    pub component: String,
    /// Sections linked to this one (either side of the link): a lecture's labs, a lab's
    /// lectures.
    pub links: Vec<Uuid>,
    /// The course's required components, the primary first; empty: any one section.
    #[schema(schema_with = schema::components)]
    pub components: Vec<String>,
    /// The course's corequisites: to take in the same term, unless completed.
    pub corequisites: Vec<String>,
    /// Free seats anyone may take: `seats_left` less those the pools hold back.
    #[serde(default)]
    pub general_seats_left: u32,
    /// Reserved seat pools, in the order a student matching several tries them.
    #[serde(default)]
    pub reserved: Vec<super::PoolView>,
    /// Who may take the section.
    #[serde(default)]
    pub restrictions: Vec<super::RestrictionDto>,
    /// `auto` or `offer` (see `POST /sections`).
    #[serde(default = "auto")]
    pub waitlist_mode: String,
    /// How long an offer stands, in minutes.
    #[serde(default = "a_day")]
    pub offer_window_minutes: u32,
    /// Whether adding it takes the instructor's consent (a `consent` permit).
    #[serde(default)]
    pub consent_required: bool,
}

/// The facts of a section the student rules need (cached; they never change once the
/// section exists, except its links, which an admin may replace).
#[derive(Clone, Debug)]
pub struct SectionFacts {
    /// Term.
    pub term_id: Uuid,
    /// For the rules.
    pub offered: OfferedSection,
    /// For responses.
    pub section_code: String,
    /// What the course lets a student choose: credits and grading basis.
    pub grading: CourseGrading,
}

impl SectionFacts {
    /// The section id.
    pub fn id(&self) -> SectionId {
        self.offered.id
    }

    /// The options of a place in the section: those recorded, else the course's defaults.
    pub fn options_or_default(&self, recorded: Option<EnrollmentOptions>) -> EnrollmentOptions {
        recorded.unwrap_or_else(|| self.grading.default_options())
    }

    /// The section as the student rules see it for a student with these options (or none
    /// recorded): its credits are those the student counts (none when audited).
    pub fn offered_for(&self, recorded: Option<EnrollmentOptions>) -> OfferedSection {
        self.options_or_default(recorded).apply(&self.offered)
    }

    /// These facts as the rules see them for a student taking the section with `options`.
    pub fn taken_with(&self, options: EnrollmentOptions) -> Arc<SectionFacts> {
        Arc::new(SectionFacts {
            offered: options.apply(&self.offered),
            ..self.clone()
        })
    }
}

/// The options a request asks for; each one left out is chosen for it (see the module
/// docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AskedOptions {
    /// Credits within the course's range.
    pub credits: Option<u32>,
    /// A basis the course allows.
    pub basis: Option<GradingBasis>,
}

impl AskedOptions {
    /// Whether the request names neither.
    pub fn is_empty(self) -> bool {
        self.credits.is_none() && self.basis.is_none()
    }

    /// The words that tell this request's options apart for its `Idempotency-Key` (none
    /// when it names none, so such a request reads as it did before options existed).
    pub fn fingerprint(self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = self.credits {
            out.push(format!("credits={c}"));
        }
        if let Some(b) = self.basis {
            out.push(format!("basis={b}"));
        }
        out
    }
}

/// The options recorded for `section` among `options`.
pub fn recorded(options: &[(Uuid, EnrollmentOptions)], section: Uuid) -> Option<EnrollmentOptions> {
    options.iter().find(|(s, _)| *s == section).map(|(_, o)| *o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn course_codes() {
        for ok in ["CS101", "MATH2210", "PHYS10H", "CS10"] {
            assert!(is_course_code(ok), "{ok}");
        }
        for bad in ["cs101", "C101", "CS1", "CS12345", "CS101hh", "", "CS-101"] {
            assert!(!is_course_code(bad), "{bad}");
        }
    }

    #[test]
    fn common_forms_normalise_to_one_code() {
        let cases: &[(&str, &[&str])] = &[
            (
                "CS101",
                &["CS101", "cs101", "CS 101", "cs-101", "Cs 101", " CS101 "],
            ),
            ("MATH2413", &["MATH-2413", "math 2413", "Math2413"]),
            ("ENGL1301H", &["ENGL1301H", "engl 1301h", "ENGL-1301H"]),
        ];
        for (canonical, forms) in cases {
            for form in *forms {
                assert_eq!(
                    normalize_course_code(form).as_deref(),
                    Some(*canonical),
                    "{form:?}"
                );
            }
        }
    }

    #[test]
    fn garbage_is_not_a_course_code() {
        for bad in [
            "",
            "C101",
            "CS1",
            "CS12345",
            "CS101HH",
            "CS--101",
            "CS 101 H",
            "CS  101",
            "CS_101",
            "CS.101",
            "101CS",
            "CS 1O1",
            "ÉCO101",
            "CS101-",
            "ABCDEFGHI101",
        ] {
            assert_eq!(normalize_course_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_course_is_stored_with_canonical_codes() {
        let mut course = Course {
            code: "math-2413".into(),
            title: "Calculus".into(),
            credits: 4,
            prerequisites: vec!["cs 101".into(), "CS101".into(), "MATH-1314".into()],
            components: vec![],
            corequisites: vec![],
            min_credits: None,
            max_credits: None,
            grading_bases: None,
        };
        course.validate().unwrap();
        assert_eq!(course.code, "MATH2413");
        assert_eq!(course.prerequisites, ["CS101", "MATH1314"]);
        course.prerequisites = vec!["Math 2413".into()];
        assert_eq!(course.validate().unwrap_err().field, "prerequisites");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Every spelling of a code (case, separator, blanks around) has the same
            /// canonical form, which the database's CHECK admits and which is its own
            /// canonical form.
            #[test]
            fn spellings_of_one_code_agree(
                letters in "[A-Z]{2,8}",
                digits in "[0-9]{2,4}",
                suffix in "[A-Z]?",
                separator in prop::sample::select(vec!["", " ", "-"]),
                lower in any::<u32>(),
                pad in prop::sample::select(vec!["", " ", "\t"]),
            ) {
                let canonical = format!("{letters}{digits}{suffix}");
                let spelled: String = format!("{letters}{separator}{digits}{suffix}")
                    .chars()
                    .enumerate()
                    .map(|(i, c)| if lower >> (i % 32) & 1 == 1 { c.to_ascii_lowercase() } else { c })
                    .collect();
                let spelled = format!("{pad}{spelled}{pad}");
                let normal = normalize_course_code(&spelled);
                prop_assert_eq!(normal.as_deref(), Some(canonical.as_str()));
                prop_assert!(is_course_code(&canonical));
                prop_assert_eq!(normalize_course_code(&canonical), Some(canonical.clone()));
            }

            /// Whatever the input, an answer is a canonical code.
            #[test]
            fn any_answer_is_canonical(raw in "\\PC{0,16}") {
                if let Some(code) = normalize_course_code(&raw) {
                    prop_assert!(is_course_code(&code), "{raw:?} -> {code:?}");
                }
            }

            /// A character other than letters, digits, one space or hyphen inside, or
            /// blanks around, is never accepted.
            #[test]
            fn foreign_characters_are_refused(
                code in "[A-Z]{2,8}[0-9]{2,4}",
                at in 1usize..6,
                junk in "[^A-Za-z0-9 \\-\\s]",
            ) {
                let mut chars: Vec<char> = code.chars().collect();
                chars.insert(at.min(chars.len() - 1), junk.chars().next().unwrap());
                let raw: String = chars.into_iter().collect();
                prop_assert_eq!(normalize_course_code(&raw), None, "{:?}", raw);
            }
        }
    }

    #[test]
    fn components_and_corequisites_are_checked() {
        let mut course = Course {
            code: "PHYS2425".into(),
            title: "Physics".into(),
            credits: 4,
            prerequisites: vec![],
            components: vec!["lecture".into(), "lab".into()],
            corequisites: vec!["math 2413".into(), "MATH-2413".into()],
            min_credits: None,
            max_credits: None,
            grading_bases: None,
        };
        course.validate().unwrap();
        assert_eq!(course.corequisites, ["MATH2413"]);
        for bad in [
            vec!["lab", "lab"],
            vec!["Lecture"],
            vec!["lecture", "lab", "recitation", "seminar", "studio"],
        ] {
            course.components = bad.iter().map(|s| s.to_string()).collect();
            assert_eq!(
                course.validate().unwrap_err().field,
                "components",
                "{bad:?}"
            );
        }
        course.components = vec![];
        course.corequisites = vec!["phys 2425".into()];
        assert_eq!(course.validate().unwrap_err().field, "corequisites");
    }

    #[test]
    fn links_join_a_primary_to_another_component_of_its_course() {
        let term = Uuid::new_v4();
        let end = |course: &str, component: Component| LinkEnd {
            id: Uuid::new_v4(),
            term_id: term,
            course_code: course.into(),
            component,
        };
        let parts = [Component::Lecture, Component::Lab, Component::Recitation];
        let lec = end("CHEM1411", Component::Lecture);
        let lab = end("CHEM1411", Component::Lab);
        let rec = end("CHEM1411", Component::Recitation);
        assert_eq!(
            link_pairs(&lec, &parts, &[lab.clone(), rec.clone()]),
            Ok(vec![(lec.id, lab.id), (lec.id, rec.id)])
        );
        assert_eq!(
            link_pairs(&lab, &parts, std::slice::from_ref(&lec)),
            Ok(vec![(lec.id, lab.id)])
        );
        assert!(link_pairs(&lab, &parts, std::slice::from_ref(&rec)).is_err());
        assert!(link_pairs(&lab, &parts, &[end("CHEM1411", Component::Lab)]).is_err());
        assert!(link_pairs(&lab, &parts, &[end("BIOL1406", Component::Lecture)]).is_err());
        let mut elsewhere = end("CHEM1411", Component::Lecture);
        elsewhere.term_id = Uuid::new_v4();
        assert!(link_pairs(&lab, &parts, &[elsewhere]).is_err());
        assert!(link_pairs(&lec, &[], std::slice::from_ref(&lab)).is_err());
        assert_eq!(link_pairs(&lec, &[], &[]), Ok(vec![]));
        assert!(check_component("CHEM1411", &parts, Component::Studio).is_err());
        assert!(check_component("CS101", &[], Component::Studio).is_ok());
        let this = Uuid::new_v4();
        assert!(check_link_ids(Some(this), &[this]).is_err());
        assert_eq!(check_link_ids(None, &[this, this]), Ok(vec![this]));
    }

    #[test]
    fn meetings_are_checked() {
        let m = |d: &str, s: &str, e: &str| MeetingDto {
            day: d.into(),
            start: s.into(),
            end: e.into(),
        };
        assert!(parse_meetings(&[m("mon", "09:00", "10:00")]).is_ok());
        assert!(parse_meetings(&[m("mon", "10:00", "09:00")]).is_err());
        assert!(parse_meetings(&[m("monday", "09:00", "10:00")]).is_err());
        assert!(parse_meetings(&[m("mon", "9", "10:00")]).is_err());
    }
}
