//! Property tests of the student rules over linked sections and corequisites:
//! - a complete linked set (one section per required component, each non-primary linked to
//!   the primary) passes, in any order; leaving out any one member fails with
//!   `linked_set_incomplete` naming that component, and unlinking a non-primary fails with
//!   `not_linked` naming it;
//! - credits count once per course, however many of its sections are taken;
//! - for plain courses (no components, no corequisites) [`check_enroll`] decides exactly as
//!   the one-section rules did before sets (a reference model of them);
//! - a drop of a whole schedule, or of nothing, never strands a corequisite.

use chrono::{Duration, Utc};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use registrar_actors::SectionId;
use registrar_actors::student_rules::{
    Component, Day, Meeting, OfferedSection, RuleViolation, StudentProfile, Window, check_drop_set,
    check_enroll, check_enroll_set, linked_set_of,
};
use uuid::Uuid;

fn window() -> (Option<Window>, chrono::DateTime<Utc>) {
    let now = Utc::now();
    (
        Some(Window {
            opens_at: now - Duration::hours(1),
            closes_at: now + Duration::hours(1),
        }),
        now,
    )
}

fn id(n: u128) -> SectionId {
    SectionId(Uuid::from_u128(n))
}

fn student(schedule: Vec<OfferedSection>, max_credits: u32) -> StudentProfile {
    StudentProfile {
        attributes: Vec::new(),
        ticket: None,
        deadlines: Default::default(),
        permits: Vec::new(),
        holds: 0,
        max_credits,
        completed: vec![],
        schedule,
    }
}

/// 1-4 distinct components, in a random order (the first is the primary).
fn components() -> impl Strategy<Value = Vec<Component>> {
    Just(Component::ALL.to_vec())
        .prop_shuffle()
        .prop_flat_map(|all| (1usize..=4).prop_map(move |n| all[..n].to_vec()))
}

/// The sections of one linked set of `course`: one per component, each non-primary linked
/// to the primary from the side `from_primary[i]` says, meeting at distinct hours.
fn linked_set(course: &str, required: &[Component], from_primary: &[bool]) -> Vec<OfferedSection> {
    let mut set: Vec<OfferedSection> = required
        .iter()
        .enumerate()
        .map(|(i, c)| OfferedSection {
            component: *c,
            required_components: required.to_vec(),
            ..OfferedSection::plain(
                id(1000 + i as u128),
                course,
                4,
                vec![Meeting {
                    day: Day::Mon,
                    start: registrar_actors::student_rules::ClockTime::new(8 + i as u16, 0)
                        .unwrap(),
                    end: registrar_actors::student_rules::ClockTime::new(8 + i as u16, 50).unwrap(),
                }],
                vec![],
            )
        })
        .collect();
    let primary = set[0].id;
    for i in 1..set.len() {
        if from_primary[i % from_primary.len()] {
            let other = set[i].id;
            set[0].links.push(other);
        } else {
            set[i].links.push(primary);
        }
    }
    set
}

/// The one-section rules as they were before sets, for plain sections.
fn reference(
    student: &StudentProfile,
    target: &OfferedSection,
    replacing: Option<SectionId>,
) -> Result<(), &'static str> {
    if student.schedule.iter().any(|s| s.id == target.id) {
        return Ok(());
    }
    let others: Vec<&OfferedSection> = student
        .schedule
        .iter()
        .filter(|s| Some(s.id) != replacing)
        .collect();
    if others.iter().any(|s| s.course_code == target.course_code) {
        return Err("duplicate_course");
    }
    if target
        .prerequisites
        .iter()
        .any(|p| !student.completed.contains(p))
    {
        return Err("prerequisites_not_met");
    }
    if others.iter().any(|s| {
        s.meetings
            .iter()
            .any(|m| target.meetings.iter().any(|t| t.overlaps(m)))
    }) {
        return Err("time_conflict");
    }
    if others.iter().map(|s| s.credits).sum::<u32>() + target.credits > student.max_credits {
        return Err("credit_limit_exceeded");
    }
    Ok(())
}

/// A plain section of one of a few courses, meeting at one of a few hours.
fn plain() -> impl Strategy<Value = OfferedSection> {
    (
        0u128..12,
        0usize..4,
        1u32..6,
        prop::option::of(0u16..4),
        prop::bool::ANY,
    )
        .prop_map(|(n, course, credits, hour, prereq)| {
            let meetings = hour
                .map(|h| {
                    vec![Meeting {
                        day: Day::Tue,
                        start: registrar_actors::student_rules::ClockTime::new(9 + h, 0).unwrap(),
                        end: registrar_actors::student_rules::ClockTime::new(10 + h, 30).unwrap(),
                    }]
                })
                .unwrap_or_default();
            let prerequisites = if prereq {
                vec!["CS100".to_string()]
            } else {
                vec![]
            };
            OfferedSection::plain(
                id(n),
                format!("CS{}", 101 + course),
                credits,
                meetings,
                prerequisites,
            )
        })
}

/// Failures are kept beside this file (`student_rules_props.proptest-regressions`).
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_complete_linked_set_passes_and_any_member_missing_fails(
        required in components(),
        from_primary in prop::collection::vec(any::<bool>(), 1..4),
        order in Just((0..4usize).collect::<Vec<_>>()).prop_shuffle(),
        drop in 0usize..4,
    ) {
        let (w, now) = window();
        let set = linked_set("CHEM1411", &required, &from_primary);
        let shuffled: Vec<OfferedSection> =
            order.iter().filter(|i| **i < set.len()).map(|i| set[*i].clone()).collect();
        prop_assert_eq!(check_enroll_set(&student(vec![], 18), &shuffled, w, now, &[]), Ok(()));

        let drop = drop % set.len();
        let rest: Vec<OfferedSection> =
            set.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, s)| s.clone()).collect();
        if !rest.is_empty() {
            prop_assert_eq!(
                check_enroll_set(&student(vec![], 18), &rest, w, now, &[]),
                Err(RuleViolation::LinkedSetIncomplete {
                    course: "CHEM1411".into(),
                    missing: vec![required[drop]],
                })
            );
            // The same set split between the schedule and the request decides alike.
            let (on, asked) = rest.split_at(rest.len() / 2);
            prop_assert_eq!(
                check_enroll_set(&student(on.to_vec(), 18), asked, w, now, &[])
                    .map_err(|v| v.code()),
                if asked.is_empty() { Ok(()) } else { Err("linked_set_incomplete") }
            );
        }
        if drop > 0 {
            let mut unlinked = set.clone();
            let gone = unlinked[drop].id;
            unlinked[0].links.retain(|l| *l != gone);
            unlinked[drop].links.clear();
            prop_assert_eq!(
                check_enroll_set(&student(vec![], 18), &unlinked, w, now, &[]),
                Err(RuleViolation::NotLinked { section: gone, primary: set[0].id })
            );
        }
        // Every member's linked set on the schedule is the whole set.
        for s in &set {
            let mut got = linked_set_of(&set, s.id);
            prop_assert_eq!(got[0], s.id);
            got.sort();
            let mut all: Vec<SectionId> = set.iter().map(|s| s.id).collect();
            all.sort();
            prop_assert_eq!(got, all);
        }
    }

    #[test]
    fn credits_of_one_course_count_once(
        required in components(),
        limit in 0u32..12,
        other_credits in 0u32..6,
    ) {
        let (w, now) = window();
        let set = linked_set("BIO1406", &required, &[true]);
        let other = OfferedSection::plain(id(1), "HIST101", other_credits, vec![], vec![]);
        let me = student(vec![other], limit);
        let would_be = 4 + other_credits;
        let expected = if would_be > limit {
            Err(RuleViolation::CreditLimitExceeded { limit, would_be })
        } else {
            Ok(())
        };
        prop_assert_eq!(check_enroll_set(&me, &set, w, now, &[]), expected);
    }

    #[test]
    fn plain_sections_decide_as_before(
        schedule in prop::collection::vec(plain(), 0..5),
        target in plain(),
        limit in 0u32..16,
        completed in any::<bool>(),
        replace in prop::option::of(0usize..5),
    ) {
        let (w, now) = window();
        // A schedule the rules admitted: one section per course, each once.
        let mut me = student(vec![], limit);
        for s in schedule {
            if !me.schedule.iter().any(|o| o.id == s.id || o.course_code == s.course_code) {
                me.schedule.push(s);
            }
        }
        if completed {
            me.completed.push("CS100".into());
        }
        let replacing = replace.and_then(|i| me.schedule.get(i)).map(|s| s.id);
        prop_assert_eq!(
            check_enroll(&me, &target, w, now, replacing).map_err(|v| v.code()),
            reference(&me, &target, replacing)
        );
    }

    #[test]
    fn dropping_everything_or_nothing_strands_no_corequisite(
        courses in prop::collection::vec((0usize..5, prop::collection::vec(0usize..5, 0..3)), 0..5),
    ) {
        let schedule: Vec<OfferedSection> = courses
            .iter()
            .enumerate()
            .map(|(i, (c, coreqs))| OfferedSection {
                corequisites: coreqs.iter().map(|k| format!("PHYS{}", 101 + k)).collect(),
                ..OfferedSection::plain(id(i as u128), format!("PHYS{}", 101 + c), 3, vec![], vec![])
            })
            .collect();
        let all: Vec<SectionId> = schedule.iter().map(|s| s.id).collect();
        let me = student(schedule, 18);
        prop_assert_eq!(check_drop_set(&me, &all), Ok(()));
        // Nothing leaves, so nothing that was there goes missing.
        prop_assert_eq!(check_drop_set(&me, &[]), Ok(()));
    }
}
