//! Corequisites: courses a course must be taken with in the same term, unless completed
//! before. An enroll must bring them (or find them on the schedule); a drop may not take
//! one away from a course that stays, so a student drops both in one request (as Banner
//! refuses such a drop).

use super::{OfferedSection, RuleViolation, StudentProfile};
use crate::ids::SectionId;

/// Every corequisite of every course of `new` is completed or in `after` (the schedule as
/// it would be).
pub(super) fn check_taken(
    student: &StudentProfile,
    new: &[&OfferedSection],
    after: &[&OfferedSection],
) -> Result<(), RuleViolation> {
    for t in new {
        let missing: Vec<String> = t
            .corequisites
            .iter()
            .filter(|c| {
                !student.completed.contains(c) && !after.iter().any(|s| &s.course_code == *c)
            })
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(RuleViolation::CorequisiteMissing {
                course: t.course_code.clone(),
                missing,
            });
        }
    }
    Ok(())
}

/// Check that `student` may drop the sections `leaving` together: no course that stays on
/// the schedule loses a corequisite it has there now (and has not completed). A
/// corequisite that was not on the schedule before is not the drop's doing, so it is not
/// asked for.
pub fn check_drop_set(
    student: &StudentProfile,
    leaving: &[SectionId],
) -> Result<(), RuleViolation> {
    let stays: Vec<&OfferedSection> = student
        .schedule
        .iter()
        .filter(|s| !leaving.contains(&s.id))
        .collect();
    let on = |sections: &[&OfferedSection], course: &str| {
        sections.iter().any(|s| s.course_code == course)
    };
    let before: Vec<&OfferedSection> = student.schedule.iter().collect();
    for s in &stays {
        for coreq in &s.corequisites {
            if !student.completed.contains(coreq) && on(&before, coreq) && !on(&stays, coreq) {
                return Err(RuleViolation::CorequisiteRequired {
                    course: coreq.clone(),
                    by: s.course_code.clone(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Window, check_enroll, check_enroll_set};
    use super::*;
    use chrono::{Duration, Utc};

    fn course(code: &str, coreqs: &[&str]) -> OfferedSection {
        OfferedSection {
            corequisites: coreqs.iter().map(|c| c.to_string()).collect(),
            ..OfferedSection::plain(SectionId::new_v4(), code, 4, vec![], vec![])
        }
    }

    fn student(schedule: Vec<OfferedSection>, completed: &[&str]) -> StudentProfile {
        StudentProfile {
            attributes: Vec::new(),
            ticket: None,
            deadlines: Default::default(),
            permits: Vec::new(),
            holds: 0,
            max_credits: 18,
            completed: completed.iter().map(|c| c.to_string()).collect(),
            schedule,
        }
    }

    #[test]
    fn a_corequisite_comes_along_is_on_the_schedule_or_was_completed() {
        let now = Utc::now();
        let w = Some(Window {
            opens_at: now - Duration::hours(1),
            closes_at: now + Duration::hours(1),
        });
        let phys = course("PHYS2425", &["MATH2413"]);
        let math = course("MATH2413", &[]);
        assert_eq!(
            check_enroll(&student(vec![], &[]), &phys, w, now, None),
            Err(RuleViolation::CorequisiteMissing {
                course: "PHYS2425".into(),
                missing: vec!["MATH2413".into()],
            })
        );
        let both = [phys.clone(), math.clone()];
        assert_eq!(
            check_enroll_set(&student(vec![], &[]), &both, w, now, &[]),
            Ok(())
        );
        assert_eq!(
            check_enroll(&student(vec![math.clone()], &[]), &phys, w, now, None),
            Ok(())
        );
        assert_eq!(
            check_enroll(&student(vec![], &["MATH2413"]), &phys, w, now, None),
            Ok(())
        );
        // A swap that drops the corequisite does not count it.
        let me = student(vec![math.clone()], &[]);
        assert_eq!(
            check_enroll(&me, &phys, w, now, Some(math.id))
                .unwrap_err()
                .code(),
            "corequisite_missing"
        );
    }

    #[test]
    fn a_drop_may_not_strand_a_course_without_its_corequisite() {
        let phys = course("PHYS2425", &["MATH2413"]);
        let math = course("MATH2413", &[]);
        let me = student(vec![phys.clone(), math.clone()], &[]);
        assert_eq!(
            check_drop_set(&me, &[math.id]),
            Err(RuleViolation::CorequisiteRequired {
                course: "MATH2413".into(),
                by: "PHYS2425".into(),
            })
        );
        assert_eq!(
            check_drop_set(&me, &[math.id]).unwrap_err().code(),
            "corequisite_required"
        );
        assert_eq!(check_drop_set(&me, &[math.id, phys.id]), Ok(()));
        assert_eq!(check_drop_set(&me, &[phys.id]), Ok(()));
        // Completed before, or never on the schedule: nothing to keep.
        let done = student(vec![phys.clone(), math.clone()], &["MATH2413"]);
        assert_eq!(check_drop_set(&done, &[math.id]), Ok(()));
        let other = course("HIST101", &[]);
        let alone = student(vec![phys.clone(), other.clone()], &[]);
        assert_eq!(check_drop_set(&alone, &[other.id]), Ok(()));
    }
}
