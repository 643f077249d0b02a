//! The per-student registration rules, as pure functions over plain data.
//!
//! The server loads the student's profile and schedule under a per-student lock and calls
//! [`check_enroll`] before asking the section actor for a seat; the lock makes the check and
//! the enroll one step for that student, so two concurrent requests cannot both pass the
//! credit limit. Waitlisted sections count like enrolled ones (credits and times), so a
//! waitlist promotion can never break a rule that held when the student joined.

use crate::ids::SectionId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Day of a meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Day {
    /// The lowercase three-letter name (`mon` ... `sun`), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Day::Mon => "mon",
            Day::Tue => "tue",
            Day::Wed => "wed",
            Day::Thu => "thu",
            Day::Fri => "fri",
            Day::Sat => "sat",
            Day::Sun => "sun",
        }
    }
}

/// A time of day in minutes since midnight, written `HH:MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

impl ClockTime {
    /// From hours and minutes; `None` when out of range.
    pub fn new(hours: u16, minutes: u16) -> Option<Self> {
        (hours < 24 && minutes < 60).then_some(Self(hours * 60 + minutes))
    }

    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl FromStr for ClockTime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a time of day as HH:MM");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        // Digits only: `u16::from_str` would also take a sign (`+9:00`).
        let digits = |x: &str| x.len() == 2 && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(h) || !digits(m) {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        Self::new(h, m).ok_or_else(bad)
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for ClockTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One weekly meeting of a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meeting {
    /// Day of the week.
    pub day: Day,
    /// Start (inclusive).
    pub start: ClockTime,
    /// End (exclusive); after `start`.
    pub end: ClockTime,
}

impl Meeting {
    /// Whether two meetings overlap in time.
    pub fn overlaps(&self, other: &Meeting) -> bool {
        self.day == other.day && self.start < other.end && other.start < self.end
    }
}

/// What the rules need to know about a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferedSection {
    /// The section.
    pub id: SectionId,
    /// Its course, e.g. `CS101`.
    pub course_code: String,
    /// Credits of the course.
    pub credits: u32,
    /// Weekly meetings.
    pub meetings: Vec<Meeting>,
    /// Course codes that must be completed first.
    pub prerequisites: Vec<String>,
}

/// What the rules need to know about a student, for one term.
#[derive(Clone, Debug, Default)]
pub struct StudentProfile {
    /// Active holds; any hold blocks registration.
    pub holds: u32,
    /// Credit limit for the term.
    pub max_credits: u32,
    /// Course codes already completed.
    pub completed: Vec<String>,
    /// Sections the student is enrolled or waitlisted in this term.
    pub schedule: Vec<OfferedSection>,
}

/// A registration window (for the student's standing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Opens (inclusive).
    pub opens_at: DateTime<Utc>,
    /// Closes (exclusive).
    pub closes_at: DateTime<Utc>,
}

/// A broken rule; each maps to one stable error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    /// The student has a hold.
    #[error("the student has an active hold")]
    OnHold,
    /// No window is open for the student's standing.
    #[error("registration is not open for this student's standing")]
    WindowClosed,
    /// Another section of the same course is already on the schedule.
    #[error("already registered in another section of {course}")]
    DuplicateCourse {
        /// The course.
        course: String,
    },
    /// Missing prerequisites.
    #[error("missing prerequisites: {}", missing.join(", "))]
    PrerequisitesNotMet {
        /// The missing course codes.
        missing: Vec<String>,
    },
    /// Meets at the same time as a section already on the schedule.
    #[error("meets at the same time as section {with}")]
    TimeConflict {
        /// The conflicting section.
        with: SectionId,
    },
    /// Over the credit limit.
    #[error("{would_be} credits would exceed the limit of {limit}")]
    CreditLimitExceeded {
        /// The limit.
        limit: u32,
        /// Credits after this enroll.
        would_be: u32,
    },
}

impl RuleViolation {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            RuleViolation::OnHold => "student_on_hold",
            RuleViolation::WindowClosed => "registration_window_closed",
            RuleViolation::DuplicateCourse { .. } => "duplicate_course",
            RuleViolation::PrerequisitesNotMet { .. } => "prerequisites_not_met",
            RuleViolation::TimeConflict { .. } => "time_conflict",
            RuleViolation::CreditLimitExceeded { .. } => "credit_limit_exceeded",
        }
    }
}

/// Check that `student` may take `target` at `now`. `replacing` is left out of the schedule
/// (the section a swap drops). A target already on the schedule passes: the section actor
/// answers `already_enrolled` / `already_waitlisted`, or replays a retried request.
pub fn check_enroll(
    student: &StudentProfile,
    target: &OfferedSection,
    window: Option<Window>,
    now: DateTime<Utc>,
    replacing: Option<SectionId>,
) -> Result<(), RuleViolation> {
    if student.holds > 0 {
        return Err(RuleViolation::OnHold);
    }
    match window {
        Some(w) if w.opens_at <= now && now < w.closes_at => {}
        _ => return Err(RuleViolation::WindowClosed),
    }
    if student.schedule.iter().any(|s| s.id == target.id) {
        return Ok(());
    }
    let others = || {
        student
            .schedule
            .iter()
            .filter(move |s| Some(s.id) != replacing)
    };
    if others().any(|s| s.course_code == target.course_code) {
        return Err(RuleViolation::DuplicateCourse {
            course: target.course_code.clone(),
        });
    }
    let missing: Vec<String> = target
        .prerequisites
        .iter()
        .filter(|p| !student.completed.contains(p))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(RuleViolation::PrerequisitesNotMet { missing });
    }
    if let Some(clash) = others().find(|s| {
        s.meetings
            .iter()
            .any(|m| target.meetings.iter().any(|t| t.overlaps(m)))
    }) {
        return Err(RuleViolation::TimeConflict { with: clash.id });
    }
    let would_be = others().map(|s| s.credits).sum::<u32>() + target.credits;
    if would_be > student.max_credits {
        return Err(RuleViolation::CreditLimitExceeded {
            limit: student.max_credits,
            would_be,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn meeting(day: Day, start: &str, end: &str) -> Meeting {
        Meeting {
            day,
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
        }
    }

    fn section(
        code: &str,
        credits: u32,
        meetings: Vec<Meeting>,
        prereqs: &[&str],
    ) -> OfferedSection {
        OfferedSection {
            id: SectionId::new_v4(),
            course_code: code.into(),
            credits,
            meetings,
            prerequisites: prereqs.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn open_window(now: DateTime<Utc>) -> Option<Window> {
        Some(Window {
            opens_at: now - Duration::hours(1),
            closes_at: now + Duration::hours(1),
        })
    }

    fn student() -> StudentProfile {
        StudentProfile {
            holds: 0,
            max_credits: 9,
            completed: vec!["CS100".into()],
            schedule: vec![section(
                "MATH101",
                4,
                vec![meeting(Day::Mon, "09:00", "10:15")],
                &[],
            )],
        }
    }

    #[test]
    fn each_rule_has_its_code() {
        let now = Utc::now();
        let w = open_window(now);
        let ok = section(
            "CS101",
            3,
            vec![meeting(Day::Tue, "09:00", "10:15")],
            &["CS100"],
        );
        assert_eq!(check_enroll(&student(), &ok, w, now, None), Ok(()));

        let mut held = student();
        held.holds = 1;
        assert_eq!(
            check_enroll(&held, &ok, w, now, None).unwrap_err().code(),
            "student_on_hold"
        );
        assert_eq!(
            check_enroll(&student(), &ok, None, now, None)
                .unwrap_err()
                .code(),
            "registration_window_closed"
        );
        let later = Some(Window {
            opens_at: now + Duration::minutes(1),
            closes_at: now + Duration::hours(1),
        });
        assert_eq!(
            check_enroll(&student(), &ok, later, now, None)
                .unwrap_err()
                .code(),
            "registration_window_closed"
        );

        let dup = section("MATH101", 4, vec![], &[]);
        assert_eq!(
            check_enroll(&student(), &dup, w, now, None)
                .unwrap_err()
                .code(),
            "duplicate_course"
        );
        let pre = section("CS201", 3, vec![], &["CS101", "CS100"]);
        assert_eq!(
            check_enroll(&student(), &pre, w, now, None),
            Err(RuleViolation::PrerequisitesNotMet {
                missing: vec!["CS101".into()]
            })
        );
        let clash = section("PHYS101", 3, vec![meeting(Day::Mon, "10:00", "11:00")], &[]);
        assert_eq!(
            check_enroll(&student(), &clash, w, now, None)
                .unwrap_err()
                .code(),
            "time_conflict"
        );
        let heavy = section("BIO101", 6, vec![], &[]);
        assert_eq!(
            check_enroll(&student(), &heavy, w, now, None),
            Err(RuleViolation::CreditLimitExceeded {
                limit: 9,
                would_be: 10
            })
        );
    }

    #[test]
    fn swap_ignores_the_section_being_replaced() {
        let now = Utc::now();
        let s = student();
        let other = section("MATH101", 4, vec![meeting(Day::Mon, "09:00", "10:15")], &[]);
        let replacing = s.schedule[0].id;
        assert_eq!(
            check_enroll(&s, &other, open_window(now), now, Some(replacing)),
            Ok(())
        );
    }

    #[test]
    fn back_to_back_meetings_do_not_conflict() {
        let a = meeting(Day::Wed, "09:00", "10:00");
        let b = meeting(Day::Wed, "10:00", "11:00");
        assert!(!a.overlaps(&b));
        assert!(a.overlaps(&meeting(Day::Wed, "09:59", "10:30")));
        assert!(!a.overlaps(&meeting(Day::Thu, "09:00", "10:00")));
    }

    #[test]
    fn clock_time_parses_strictly() {
        assert_eq!("09:05".parse::<ClockTime>().unwrap().minutes(), 545);
        for bad in [
            "9:05", "24:00", "12:60", "ab:cd", "1200", "", "+9:05", "09:+5",
        ] {
            assert!(bad.parse::<ClockTime>().is_err(), "{bad}");
        }
    }
}
