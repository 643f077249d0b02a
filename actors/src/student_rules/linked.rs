//! Linked sections: the components a course requires (lecture, lab, recitation...) and the
//! links between a course's primary sections and the others. A student of such a course
//! holds exactly one section of each component, and each non-primary section is linked to
//! the primary one, so the set is enrolled together and dropped together.

use super::{OfferedSection, RuleViolation};
use crate::ids::SectionId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A kind of section of a course; a course lists the ones it requires, the first being its
/// primary (the one the others link to).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// A lecture: the primary component of most courses, and of every plain one.
    #[default]
    Lecture,
    /// A laboratory.
    Lab,
    /// A recitation or discussion section.
    Recitation,
    /// A seminar.
    Seminar,
    /// A studio.
    Studio,
}

impl Component {
    /// Every component, in declaration order.
    pub const ALL: [Component; 5] = [
        Component::Lecture,
        Component::Lab,
        Component::Recitation,
        Component::Seminar,
        Component::Studio,
    ];

    /// The snake_case name, as serialized and stored (`lecture`, `lab`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Lecture => "lecture",
            Component::Lab => "lab",
            Component::Recitation => "recitation",
            Component::Seminar => "seminar",
            Component::Studio => "studio",
        }
    }
}

impl FromStr for Component {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Component::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a component (lecture, lab, recitation, seminar, studio)")
            })
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `lab, recitation`: components for a message.
pub(super) fn names(components: &[Component]) -> String {
    components
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `a` and `b` are linked (a link recorded on either side counts).
fn linked(a: &OfferedSection, b: &OfferedSection) -> bool {
    a.links.contains(&b.id) || b.links.contains(&a.id)
}

/// Check the set of `target`'s course in `after` (the schedule as it would be): one
/// section per required component, each non-primary one linked to the primary.
pub(super) fn check_set(
    target: &OfferedSection,
    after: &[&OfferedSection],
) -> Result<(), RuleViolation> {
    let required = &target.required_components;
    let members: Vec<&OfferedSection> = after
        .iter()
        .filter(|s| s.course_code == target.course_code)
        .copied()
        .collect();
    let missing: Vec<Component> = required
        .iter()
        .filter(|c| !members.iter().any(|m| m.component == **c))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(RuleViolation::LinkedSetIncomplete {
            course: target.course_code.clone(),
            missing,
        });
    }
    let Some(primary) = members
        .iter()
        .find(|m| Some(&m.component) == required.first())
    else {
        return Ok(());
    };
    for m in &members {
        if m.id != primary.id && required.contains(&m.component) && !linked(m, primary) {
            return Err(RuleViolation::NotLinked {
                section: m.id,
                primary: primary.id,
            });
        }
    }
    Ok(())
}

/// The sections a drop of `section` takes with it: the sections of its course on
/// `schedule` when the course has required components (its whole linked set), else just
/// `section` (also when it is not on the schedule).
pub fn linked_set_of(schedule: &[OfferedSection], section: SectionId) -> Vec<SectionId> {
    match schedule.iter().find(|s| s.id == section) {
        Some(s) if !s.required_components.is_empty() => {
            let mut set: Vec<SectionId> = schedule
                .iter()
                .filter(|o| o.course_code == s.course_code)
                .map(|o| o.id)
                .collect();
            // The asked-for section first, the rest in schedule order.
            set.retain(|id| *id != section);
            set.insert(0, section);
            set
        }
        _ => vec![section],
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Day, Meeting, StudentProfile, Window, check_enroll, check_enroll_set};
    use super::*;
    use chrono::{DateTime, Duration, Utc};

    fn at(day: Day, start: &str, end: &str) -> Vec<Meeting> {
        vec![Meeting {
            day,
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
        }]
    }

    /// A section of CHEM1411 (lecture, lab, recitation), 4 credits.
    fn chem(component: Component, meetings: Vec<Meeting>) -> OfferedSection {
        OfferedSection {
            component,
            required_components: vec![Component::Lecture, Component::Lab, Component::Recitation],
            ..OfferedSection::plain(SectionId::new_v4(), "CHEM1411", 4, meetings, vec![])
        }
    }

    fn link(primary: &mut OfferedSection, other: &mut OfferedSection) {
        primary.links.push(other.id);
        other.links.push(primary.id);
    }

    fn open(now: DateTime<Utc>) -> Option<Window> {
        Some(Window {
            opens_at: now - Duration::hours(1),
            closes_at: now + Duration::hours(1),
        })
    }

    fn student(schedule: Vec<OfferedSection>) -> StudentProfile {
        StudentProfile {
            attributes: Vec::new(),
            ticket: None,
            deadlines: Default::default(),
            permits: Vec::new(),
            holds: 0,
            max_credits: 18,
            completed: vec![],
            schedule,
        }
    }

    /// A lecture with one linked lab and one linked recitation, at different times.
    fn chem_set() -> [OfferedSection; 3] {
        let mut lec = chem(Component::Lecture, at(Day::Mon, "09:00", "10:15"));
        let mut lab = chem(Component::Lab, at(Day::Tue, "14:00", "16:50"));
        let mut rec = chem(Component::Recitation, at(Day::Fri, "11:00", "11:50"));
        link(&mut lec, &mut lab);
        link(&mut lec, &mut rec);
        [lec, lab, rec]
    }

    #[test]
    fn a_complete_linked_set_passes_and_each_part_alone_fails() {
        let now = Utc::now();
        let set = chem_set();
        assert_eq!(
            check_enroll_set(&student(vec![]), &set, open(now), now, &[]),
            Ok(())
        );
        assert_eq!(
            check_enroll(&student(vec![]), &set[0], open(now), now, None),
            Err(RuleViolation::LinkedSetIncomplete {
                course: "CHEM1411".into(),
                missing: vec![Component::Lab, Component::Recitation],
            })
        );
        let err = check_enroll_set(&student(vec![]), &set[1..], open(now), now, &[]).unwrap_err();
        assert_eq!(err.code(), "linked_set_incomplete");
        assert!(err.to_string().contains("lecture"), "{err}");
    }

    #[test]
    fn a_link_on_either_side_counts() {
        let now = Utc::now();
        let [mut lec, mut lab, rec] = chem_set();
        lec.links.retain(|id| *id != lab.id);
        assert_eq!(
            check_enroll_set(
                &student(vec![]),
                &[lec.clone(), lab.clone(), rec.clone()],
                open(now),
                now,
                &[]
            ),
            Ok(())
        );
        lab.links.clear();
        assert_eq!(
            check_enroll_set(
                &student(vec![]),
                &[lec.clone(), lab.clone(), rec],
                open(now),
                now,
                &[]
            ),
            Err(RuleViolation::NotLinked {
                section: lab.id,
                primary: lec.id,
            })
        );
        assert_eq!(lec.links.len(), 1);
    }

    #[test]
    fn the_rest_of_a_set_on_the_schedule_completes_it() {
        let now = Utc::now();
        let [lec, lab, rec] = chem_set();
        let me = student(vec![lec.clone(), lab.clone()]);
        assert_eq!(check_enroll(&me, &rec, open(now), now, None), Ok(()));
        // A second lab of the same course is a duplicate, not a second set.
        let mut lab2 = chem(Component::Lab, at(Day::Wed, "14:00", "16:50"));
        lab2.links.push(lec.id);
        assert_eq!(
            check_enroll(&me, &lab2, open(now), now, None)
                .unwrap_err()
                .code(),
            "duplicate_course"
        );
        // A swap of the lab for another one linked to the lecture passes with the
        // recitation brought along; an unlinked one does not.
        let me = student(vec![lec.clone(), lab.clone(), rec.clone()]);
        assert_eq!(
            check_enroll(&me, &lab2, open(now), now, Some(lab.id)),
            Ok(())
        );
        lab2.links.clear();
        assert_eq!(
            check_enroll(&me, &lab2, open(now), now, Some(lab.id))
                .unwrap_err()
                .code(),
            "not_linked"
        );
    }

    #[test]
    fn credits_of_a_set_count_once() {
        let now = Utc::now();
        let set = chem_set();
        let mut me = student(vec![]);
        me.max_credits = 4;
        assert_eq!(check_enroll_set(&me, &set, open(now), now, &[]), Ok(()));
        me.max_credits = 3;
        assert_eq!(
            check_enroll_set(&me, &set, open(now), now, &[]),
            Err(RuleViolation::CreditLimitExceeded {
                limit: 3,
                would_be: 4
            })
        );
    }

    #[test]
    fn sections_of_a_set_may_not_overlap() {
        let now = Utc::now();
        let [lec, mut lab, rec] = chem_set();
        lab.meetings = lec.meetings.clone();
        assert_eq!(
            check_enroll_set(
                &student(vec![]),
                &[lec.clone(), lab, rec],
                open(now),
                now,
                &[]
            ),
            Err(RuleViolation::TimeConflict { with: lec.id })
        );
    }

    #[test]
    fn a_drop_of_one_member_drops_the_set() {
        let [lec, lab, rec] = chem_set();
        let other = OfferedSection::plain(SectionId::new_v4(), "HIST101", 3, vec![], vec![]);
        let schedule = vec![other.clone(), lec.clone(), lab.clone(), rec.clone()];
        assert_eq!(
            linked_set_of(&schedule, lab.id),
            vec![lab.id, lec.id, rec.id]
        );
        assert_eq!(linked_set_of(&schedule, other.id), vec![other.id]);
        let stranger = SectionId::new_v4();
        assert_eq!(linked_set_of(&schedule, stranger), vec![stranger]);
    }

    #[test]
    fn components_round_trip() {
        for c in Component::ALL {
            assert_eq!(c.as_str().parse::<Component>(), Ok(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
        assert!("Lecture".parse::<Component>().is_err());
        assert_eq!(Component::default(), Component::Lecture);
    }
}
