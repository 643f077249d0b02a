//! The per-student registration rules, as pure functions over plain data.
//!
//! The server loads the student's profile and schedule under a per-student lock and calls
//! [`check_enroll_set`] (or [`check_enroll`] for one section) before asking the section
//! actors for seats; the lock makes the check and the enroll one step for that student, so
//! two concurrent requests cannot both pass the credit limit. Waitlisted sections count like
//! enrolled ones (credits and times), so a waitlist promotion can never break a rule that
//! held when the student joined.
//!
//! A course may have required components (lecture, lab, recitation...): a student takes one
//! section of each, and every non-primary one must be linked to the chosen primary (the
//! first component, usually the lecture), as Banner's link identifiers and PeopleSoft's
//! related sections do. Those sets are enrolled and dropped together ([`linked`]); courses
//! may also name corequisites, taken in the same term or completed ([`corequisites`]).

mod corequisites;
mod credits;
mod deadlines;
mod linked;
mod permits;
mod restrictions;

pub use corequisites::check_drop_set;
pub use credits::{
    CourseGrading, EnrollmentOptions, GradingBasis, check_change, check_change_deadline,
};
pub use deadlines::{Deadlines, check_add, check_seat_drop, seat_drop};
pub use linked::{Component, linked_set_of};
pub use permits::{Permit, PermitKind, PermitUse};
pub use restrictions::{Restriction, RestrictionMode, TimeTicket};

use crate::attributes::Attribute;
use crate::ids::SectionId;
use chrono::{DateTime, Utc};
use permits::Waivers;
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
    /// Credits of the course, as the credit limit counts them: for a section on a
    /// student's schedule (or asked for), what the student chose
    /// ([`EnrollmentOptions::counted`]: none when audited).
    pub credits: u32,
    /// Weekly meetings.
    pub meetings: Vec<Meeting>,
    /// Course codes that must be completed first.
    pub prerequisites: Vec<String>,
    /// Which component of its course this section is (`Lecture` for a plain course).
    pub component: Component,
    /// The course's required components, primary first; empty for a course taken as any
    /// one section, with no links.
    pub required_components: Vec<Component>,
    /// For a primary: the sections linked to it; for a non-primary: the primaries it
    /// links to (a link recorded on either side counts).
    pub links: Vec<SectionId>,
    /// Course codes to take in the same term (or to have completed).
    pub corequisites: Vec<String>,
    /// Who may take the section, by attribute (all must hold).
    pub restrictions: Vec<Restriction>,
    /// Whether a student needs the instructor's consent (a consent permit) to add it.
    pub consent_required: bool,
}

impl OfferedSection {
    /// A plain section: a lecture of a course without components, links or corequisites.
    pub fn plain(
        id: SectionId,
        course_code: impl Into<String>,
        credits: u32,
        meetings: Vec<Meeting>,
        prerequisites: Vec<String>,
    ) -> Self {
        Self {
            id,
            course_code: course_code.into(),
            credits,
            meetings,
            prerequisites,
            component: Component::Lecture,
            required_components: Vec::new(),
            links: Vec::new(),
            corequisites: Vec::new(),
            restrictions: Vec::new(),
            consent_required: false,
        }
    }

    /// Whether two sections of one course take the same place in a schedule: for a course
    /// with components, the same component; for a plain course, any two sections.
    fn same_slot(&self, other: &OfferedSection) -> bool {
        self.course_code == other.course_code
            && (self.required_components.is_empty() || self.component == other.component)
    }
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
    /// Majors, program, cohort and standing: what restrictions and reserved pools match.
    pub attributes: Vec<Attribute>,
    /// The student's registration appointment for the term, if one is assigned: it
    /// replaces the opening of the standing's window.
    pub ticket: Option<TimeTicket>,
    /// The term's add/drop deadlines.
    pub deadlines: Deadlines,
    /// The student's usable permits for the term (see [`permits`]).
    pub permits: Vec<Permit>,
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
    /// The term's last day to add has passed (and the student holds no late-add permit for
    /// the section).
    #[error("the last day to add sections this term was {add_by}")]
    AddDeadlinePassed {
        /// The add deadline.
        add_by: DateTime<Utc>,
    },
    /// The term's last day to withdraw has passed: a seat can no longer be dropped.
    #[error("the last day to withdraw this term was {withdraw_by}")]
    DropDeadlinePassed {
        /// The withdrawal deadline.
        withdraw_by: DateTime<Utc>,
    },
    /// The student's registration appointment (time ticket) has not come yet.
    #[error("registration opens for this student at {opens_at}")]
    NotOpenYet {
        /// When it opens.
        opens_at: DateTime<Utc>,
    },
    /// The section is restricted to other students.
    #[error("section {section} {reason}")]
    RestrictedSection {
        /// The section.
        section: SectionId,
        /// Why, e.g. `is open only to major CS, MATH`.
        reason: String,
    },
    /// The section needs the instructor's consent, and the student has no consent permit.
    #[error("section {section} requires the instructor's consent (a consent permit)")]
    ConsentRequired {
        /// The section.
        section: SectionId,
    },
    /// Another section of the same course (and, for a course with components, of the same
    /// component) is on the schedule or among the sections asked for.
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
    /// A course with required components would not have one section of each.
    #[error(
        "{course} needs one section of each of its components; missing: {}",
        linked::names(missing)
    )]
    LinkedSetIncomplete {
        /// The course.
        course: String,
        /// The components without a section, in the course's order.
        missing: Vec<Component>,
    },
    /// A non-primary section is not linked to the primary section chosen with it.
    #[error("section {section} is not linked to section {primary}")]
    NotLinked {
        /// The non-primary section (a lab, a recitation...).
        section: SectionId,
        /// The primary section it would be taken with.
        primary: SectionId,
    },
    /// Corequisites neither completed nor on the schedule.
    #[error("{course} must be taken with {}", missing.join(", "))]
    CorequisiteMissing {
        /// The course that names them.
        course: String,
        /// The corequisites missing.
        missing: Vec<String>,
    },
    /// A drop would leave a course without its corequisite.
    #[error("{course} is a corequisite of {by}, which stays on the schedule; drop both together")]
    CorequisiteRequired {
        /// The corequisite the drop would remove.
        course: String,
        /// The course on the schedule that requires it.
        by: String,
    },
    /// Credits outside the course's range.
    #[error("{credits} credits is outside the course's range of {min} to {max}")]
    CreditsOutOfRange {
        /// The credits asked for.
        credits: u32,
        /// The fewest allowed.
        min: u32,
        /// The most allowed.
        max: u32,
    },
    /// A grading basis the course does not allow.
    #[error("the course may not be taken {basis}; it allows {}", allowed.iter().map(|b| b.as_str()).collect::<Vec<_>>().join(", "))]
    GradingBasisNotAllowed {
        /// The basis asked for.
        basis: GradingBasis,
        /// The bases the course allows.
        allowed: Vec<GradingBasis>,
    },
    /// Credits and grading basis may no longer be changed this term.
    #[error("the last day to change credits or grading basis this term was {drop_by}")]
    OptionsDeadlinePassed {
        /// The term's drop deadline.
        drop_by: DateTime<Utc>,
    },
}

impl RuleViolation {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            RuleViolation::OnHold => "student_on_hold",
            RuleViolation::WindowClosed => "registration_window_closed",
            RuleViolation::NotOpenYet { .. } => "registration_not_open_yet",
            RuleViolation::AddDeadlinePassed { .. } => "add_deadline_passed",
            RuleViolation::DropDeadlinePassed { .. } => "drop_deadline_passed",
            RuleViolation::RestrictedSection { .. } => "restricted_section",
            RuleViolation::ConsentRequired { .. } => "consent_required",
            RuleViolation::DuplicateCourse { .. } => "duplicate_course",
            RuleViolation::PrerequisitesNotMet { .. } => "prerequisites_not_met",
            RuleViolation::TimeConflict { .. } => "time_conflict",
            RuleViolation::CreditLimitExceeded { .. } => "credit_limit_exceeded",
            RuleViolation::LinkedSetIncomplete { .. } => "linked_set_incomplete",
            RuleViolation::NotLinked { .. } => "not_linked",
            RuleViolation::CorequisiteMissing { .. } => "corequisite_missing",
            RuleViolation::CorequisiteRequired { .. } => "corequisite_required",
            RuleViolation::CreditsOutOfRange { .. } => "credits_out_of_range",
            RuleViolation::GradingBasisNotAllowed { .. } => "grading_basis_not_allowed",
            RuleViolation::OptionsDeadlinePassed { .. } => "options_deadline_passed",
        }
    }
}

/// Check that `student` may take `target` at `now`. `replacing` is left out of the schedule
/// (the section a swap drops). A target already on the schedule passes: the section actor
/// answers `already_enrolled` / `already_waitlisted`, or replays a retried request. The
/// set of one section of [`check_enroll_set`].
pub fn check_enroll(
    student: &StudentProfile,
    target: &OfferedSection,
    window: Option<Window>,
    now: DateTime<Utc>,
    replacing: Option<SectionId>,
) -> Result<(), RuleViolation> {
    check_enroll_set(
        student,
        std::slice::from_ref(target),
        window,
        now,
        replacing.as_slice(),
    )
}

/// Check that `student` may take all of `targets` together at `now` (a lecture with its
/// lab, a course with its corequisite), with the sections of `replacing` left out of the
/// schedule (what a swap drops). The rules, in order, the first broken one answering:
/// holds; the add deadline, for targets not on the schedule yet; the window (or the
/// student's time ticket); targets already on the schedule pass
/// through (as in [`check_enroll`]); section restrictions; duplicate course (a component of a course taken twice); complete and
/// linked sets of courses with components; prerequisites; time conflicts; the credit limit
/// (credits count once per course); corequisites.
pub fn check_enroll_set(
    student: &StudentProfile,
    targets: &[OfferedSection],
    window: Option<Window>,
    now: DateTime<Utc>,
    replacing: &[SectionId],
) -> Result<(), RuleViolation> {
    check_enroll_permitted(student, targets, window, now, replacing).map(|_| ())
}

/// [`check_enroll_set`], with the student's permits: a rule a permit covers lets the
/// section through (the add deadline, restrictions, consent, prerequisites, a time
/// conflict, the credit limit up to an overload's limit). Returns the permits used, which
/// the seat's commit records (and a single-use permit is then used up).
pub fn check_enroll_permitted(
    student: &StudentProfile,
    targets: &[OfferedSection],
    window: Option<Window>,
    now: DateTime<Utc>,
    replacing: &[SectionId],
) -> Result<Vec<PermitUse>, RuleViolation> {
    if student.holds > 0 {
        return Err(RuleViolation::OnHold);
    }
    let mut waivers = Waivers::new(&student.permits);
    // Before the window: past the add deadline, the window's being closed too is the lesser
    // news (windows may reopen; the deadline does not).
    for t in targets
        .iter()
        .filter(|t| !student.schedule.iter().any(|s| s.id == t.id))
    {
        if let Err(passed) = deadlines::check_add(&student.deadlines, now, false)
            && !waivers.waive(PermitKind::LateAdd, t.id)
        {
            return Err(passed);
        }
    }
    restrictions::check_open(student.ticket, window, now)?;
    check_taking(student, targets, replacing, &mut waivers)?;
    Ok(waivers.used)
}

/// Check that `student` may take the seat offered to them in `target` (an offer-mode
/// waitlist): the rules again, as if the section were not on the schedule yet (a hold,
/// a time conflict or the credit limit may have come since they joined the waitlist), but
/// not the registration window nor the add deadline: an offer may be accepted while it
/// stands.
pub fn check_accept(
    student: &StudentProfile,
    target: &OfferedSection,
) -> Result<(), RuleViolation> {
    if student.holds > 0 {
        return Err(RuleViolation::OnHold);
    }
    let mut without = student.clone();
    without.schedule.retain(|s| s.id != target.id);
    let mut waivers = Waivers::again(&student.permits);
    check_taking(&without, std::slice::from_ref(target), &[], &mut waivers)
}

/// The rules of [`check_enroll_set`] after the hold, the add deadline and the window.
fn check_taking(
    student: &StudentProfile,
    targets: &[OfferedSection],
    replacing: &[SectionId],
    waivers: &mut Waivers<'_>,
) -> Result<(), RuleViolation> {
    // The targets not on the schedule yet, each once.
    let mut new: Vec<&OfferedSection> = Vec::with_capacity(targets.len());
    for t in targets {
        if !student.schedule.iter().any(|s| s.id == t.id) && !new.iter().any(|n| n.id == t.id) {
            new.push(t);
        }
    }
    if new.is_empty() {
        return Ok(());
    }
    for t in &new {
        if let Err(restricted) = restrictions::check_allowed(t, &student.attributes)
            && !waivers.waive(PermitKind::Restriction, t.id)
        {
            return Err(restricted);
        }
        if t.consent_required && !waivers.waive(PermitKind::Consent, t.id) {
            return Err(RuleViolation::ConsentRequired { section: t.id });
        }
    }
    let kept: Vec<&OfferedSection> = student
        .schedule
        .iter()
        .filter(|s| !replacing.contains(&s.id))
        .collect();
    // The schedule as it would be.
    let after: Vec<&OfferedSection> = kept.iter().chain(new.iter()).copied().collect();

    for t in &new {
        if after.iter().any(|s| s.id != t.id && s.same_slot(t)) {
            return Err(RuleViolation::DuplicateCourse {
                course: t.course_code.clone(),
            });
        }
    }
    for (i, t) in new.iter().enumerate() {
        let first_of_course = !new[..i].iter().any(|n| n.course_code == t.course_code);
        if first_of_course && !t.required_components.is_empty() {
            linked::check_set(t, &after)?;
        }
    }
    for t in &new {
        let missing: Vec<String> = t
            .prerequisites
            .iter()
            .filter(|p| !student.completed.contains(p))
            .cloned()
            .collect();
        if !missing.is_empty() && !waivers.waive(PermitKind::Prerequisite, t.id) {
            return Err(RuleViolation::PrerequisitesNotMet { missing });
        }
    }
    for (i, t) in new.iter().enumerate() {
        let earlier = kept.iter().chain(new[..i].iter());
        if let Some(clash) = earlier.into_iter().find(|s| meets_with(s, t))
            && !waivers.waive(PermitKind::TimeConflict, t.id)
        {
            return Err(RuleViolation::TimeConflict { with: clash.id });
        }
    }
    let would_be = credits_of(&after);
    if would_be > student.max_credits && !waivers.overload(would_be, new[0].id) {
        return Err(RuleViolation::CreditLimitExceeded {
            limit: student.max_credits,
            would_be,
        });
    }
    corequisites::check_taken(student, &new, &after)
}

/// Whether two sections meet at the same time.
fn meets_with(a: &OfferedSection, b: &OfferedSection) -> bool {
    a.meetings
        .iter()
        .any(|m| b.meetings.iter().any(|t| t.overlaps(m)))
}

/// The credits of a schedule: each course's once, however many of its sections (a lecture
/// and its lab are one course).
fn credits_of(schedule: &[&OfferedSection]) -> u32 {
    let mut seen: Vec<&str> = Vec::with_capacity(schedule.len());
    let mut total = 0;
    for s in schedule {
        if !seen.contains(&s.course_code.as_str()) {
            seen.push(&s.course_code);
            total += s.credits;
        }
    }
    total
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
        OfferedSection::plain(
            SectionId::new_v4(),
            code,
            credits,
            meetings,
            prereqs.iter().map(|s| s.to_string()).collect(),
        )
    }

    fn open_window(now: DateTime<Utc>) -> Option<Window> {
        Some(Window {
            opens_at: now - Duration::hours(1),
            closes_at: now + Duration::hours(1),
        })
    }

    fn student() -> StudentProfile {
        StudentProfile {
            attributes: Vec::new(),
            ticket: None,
            deadlines: Deadlines::default(),
            permits: Vec::new(),
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
    fn the_add_deadline_comes_before_the_window_and_spares_what_is_held() {
        let now = Utc::now();
        let target = section("CS101", 3, vec![], &["CS100"]);
        let mut s = student();
        s.deadlines.add_by = Some(now - Duration::minutes(1));
        let past = RuleViolation::AddDeadlinePassed {
            add_by: now - Duration::minutes(1),
        };
        assert_eq!(
            check_enroll(&s, &target, open_window(now), now, None),
            Err(past.clone())
        );
        // Past the deadline a closed window is the lesser news.
        assert_eq!(check_enroll(&s, &target, None, now, None), Err(past));
        // A section already on the schedule is no add (the actor answers it).
        let held = s.schedule[0].clone();
        assert_eq!(check_enroll(&s, &held, open_window(now), now, None), Ok(()));
        // A late-add permit for the section lets it in.
        s.permits.push(Permit {
            id: crate::ids::PermitId::new_v4(),
            kind: PermitKind::LateAdd,
            section: Some(target.id),
            max_credits: None,
            jump_waitlist: false,
            spent_on: None,
        });
        assert_eq!(
            check_enroll(&s, &target, open_window(now), now, None),
            Ok(())
        );
    }

    fn permit(kind: PermitKind, section: Option<SectionId>) -> Permit {
        Permit {
            id: crate::ids::PermitId::new_v4(),
            kind,
            section,
            max_credits: None,
            jump_waitlist: false,
            spent_on: None,
        }
    }

    #[test]
    fn a_permit_lets_its_rule_pass_for_its_section_and_says_so() {
        let now = Utc::now();
        let w = open_window(now);
        let pre = section("CS201", 3, vec![], &["CS101"]);
        let clash = section("PHYS101", 3, vec![meeting(Day::Mon, "10:00", "11:00")], &[]);
        let mut s = student();
        // A permit for another section counts for nothing.
        s.permits
            .push(permit(PermitKind::Prerequisite, Some(clash.id)));
        assert_eq!(
            check_enroll_permitted(&s, std::slice::from_ref(&pre), w, now, &[])
                .unwrap_err()
                .code(),
            "prerequisites_not_met"
        );
        let p = permit(PermitKind::Prerequisite, Some(pre.id));
        s.permits.push(p.clone());
        let used = check_enroll_permitted(&s, std::slice::from_ref(&pre), w, now, &[]).unwrap();
        assert_eq!(
            used,
            vec![PermitUse {
                permit: p.id,
                section: pre.id
            }]
        );
        // A spent permit no longer counts for an add, but covers its own place again (an
        // offer accepted later).
        s.permits.last_mut().unwrap().spent_on = Some(pre.id);
        assert!(check_enroll_permitted(&s, std::slice::from_ref(&pre), w, now, &[]).is_err());
        assert_eq!(check_accept(&s, &pre), Ok(()));

        // Time conflict, then the credit limit: an overload counts up to its limit only.
        let t = permit(PermitKind::TimeConflict, Some(clash.id));
        s.permits.push(t.clone());
        assert_eq!(check_enroll(&s, &clash, w, now, None), Ok(()));
        let heavy = section("BIO101", 6, vec![], &[]);
        let mut overload = permit(PermitKind::CreditOverload, None);
        overload.max_credits = Some(9);
        s.permits.push(overload.clone());
        assert_eq!(
            check_enroll(&s, &heavy, w, now, None).unwrap_err().code(),
            "credit_limit_exceeded"
        );
        s.permits.last_mut().unwrap().max_credits = Some(10);
        let used = check_enroll_permitted(&s, std::slice::from_ref(&heavy), w, now, &[]).unwrap();
        assert_eq!(
            used,
            vec![PermitUse {
                permit: overload.id,
                section: heavy.id
            }]
        );

        // Consent and restriction.
        let mut art = section("ART101", 1, vec![], &[]);
        art.consent_required = true;
        art.restrictions.push(Restriction {
            attribute: crate::attributes::AttributeKind::Major,
            mode: RestrictionMode::Include,
            values: vec!["ART".into()],
        });
        assert_eq!(
            check_enroll(&s, &art, w, now, None).unwrap_err().code(),
            "restricted_section"
        );
        s.permits
            .push(permit(PermitKind::Restriction, Some(art.id)));
        assert_eq!(
            check_enroll(&s, &art, w, now, None).unwrap_err().code(),
            "consent_required"
        );
        s.permits.push(permit(PermitKind::Consent, Some(art.id)));
        assert_eq!(
            check_enroll_permitted(&s, std::slice::from_ref(&art), w, now, &[])
                .unwrap()
                .len(),
            2
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
