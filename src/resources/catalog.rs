//! The catalog: terms and their registration windows, courses, sections and their
//! meetings.

use super::{Invalid, Standing, invalid, text};
use chrono::{DateTime, Utc};
use registrar_actors::SectionId;
use registrar_actors::student_rules::{Meeting, OfferedSection};
use serde::{Deserialize, Serialize};
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
}

/// `POST /terms` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTerm {
    /// Short code: 1-32 letters, digits, `_` or `-`.
    pub code: String,
    /// Display name.
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
    /// Code, e.g. `CS101`: 2-8 capitals, 2-4 digits, optional capital suffix.
    pub code: String,
    /// Title.
    pub title: String,
    /// Credits, 0-12.
    pub credits: u32,
    /// Course codes to complete first.
    #[serde(default)]
    pub prerequisites: Vec<String>,
}

/// Whether `code` is a well-formed course code (`CS101`, `MATH2210H`).
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

impl Course {
    /// Check the fields.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !is_course_code(&self.code) {
            return Err(invalid("code", "like CS101: 2-8 capitals then 2-4 digits"));
        }
        text("title", &self.title, 200)?;
        if self.credits > 12 {
            return Err(invalid("credits", "0 to 12"));
        }
        if self.prerequisites.len() > 20 {
            return Err(invalid("prerequisites", "at most 20"));
        }
        if let Some(bad) = self
            .prerequisites
            .iter()
            .find(|p| !is_course_code(p) || **p == self.code)
        {
            return Err(invalid(
                "prerequisites",
                format!("`{bad}` is not another course code"),
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
    #[schema(example = "mon")]
    pub day: String,
    /// `HH:MM`.
    #[schema(example = "09:00")]
    pub start: String,
    /// `HH:MM`, after `start`.
    #[schema(example = "10:15")]
    pub end: String,
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
    /// Course.
    pub course_code: String,
    /// Section code within the course, e.g. `01`.
    pub section_code: String,
    /// Seats, 0-100000.
    pub capacity: u32,
    /// Waitlist places, 0-100000.
    #[serde(default)]
    pub waitlist_capacity: u32,
    /// Weekly meetings.
    #[serde(default)]
    pub meetings: Vec<MeetingDto>,
}

impl NewSection {
    /// Check the fields; returns the parsed meetings.
    pub fn validate(&self) -> Result<Vec<Meeting>, Invalid> {
        if !is_course_code(&self.course_code) {
            return Err(invalid("course_code", "like CS101"));
        }
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
        parse_meetings(&self.meetings)
    }
}

/// `PATCH /sections/{id}` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionPatch {
    /// New capacity: never below the seats taken; raising promotes from the waitlist.
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
    /// Credits.
    pub credits: u32,
    /// Weekly meetings.
    pub meetings: Vec<MeetingDto>,
    /// Course codes to complete first.
    pub prerequisites: Vec<String>,
}

/// The fixed facts of a section the student rules need (cached; they never change once
/// the section exists).
#[derive(Clone, Debug)]
pub struct SectionFacts {
    /// Term.
    pub term_id: Uuid,
    /// For the rules.
    pub offered: OfferedSection,
    /// For responses.
    pub section_code: String,
}

impl SectionFacts {
    /// The section id.
    pub fn id(&self) -> SectionId {
        self.offered.id
    }
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
