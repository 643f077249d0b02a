//! Property tests of variable credits and grading bases:
//! - a course's choice accepts exactly the credits within its range and the bases it lists,
//!   and names nothing it was not asked for: left out, the course's credits and its
//!   default basis;
//! - audited courses count nothing toward the credit limit: over random schedules of
//!   graded and audited courses, an enroll passes the limit exactly when the graded credits
//!   (chosen, once per course) fit, however many credits are audited;
//! - a change of options is refused for the limit only when it raises the credits counted
//!   above it: lowering, or auditing, always passes.

use chrono::{Duration, Utc};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use registrar_actors::SectionId;
use registrar_actors::student_rules::{
    CourseGrading, EnrollmentOptions, GradingBasis, OfferedSection, RuleViolation, StudentProfile,
    Window, check_change, check_enroll,
};
use uuid::Uuid;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

fn basis() -> impl Strategy<Value = GradingBasis> {
    prop::sample::select(GradingBasis::ALL.to_vec())
}

/// A course: credits 0-12 within a range, 1-3 bases in their canonical order.
fn course() -> impl Strategy<Value = CourseGrading> {
    (
        0u32..=12,
        0u32..=12,
        0u32..=12,
        prop::sample::subsequence(GradingBasis::ALL.to_vec(), 1..=3),
    )
        .prop_map(|(a, b, c, bases)| {
            let mut v = [a, b, c];
            v.sort_unstable();
            CourseGrading {
                min_credits: v[0],
                credits: v[1],
                max_credits: v[2],
                bases,
            }
        })
}

/// Section `n` of its own course, taken for `credits` under `basis`, meeting never.
fn taken(n: u128, credits: u32, basis: GradingBasis) -> OfferedSection {
    let plain = OfferedSection::plain(
        SectionId(Uuid::from_u128(n)),
        format!("C{n:03}"),
        credits,
        Vec::new(),
        Vec::new(),
    );
    EnrollmentOptions { credits, basis }.apply(&plain)
}

fn student(schedule: Vec<OfferedSection>, max_credits: u32) -> StudentProfile {
    StudentProfile {
        max_credits,
        schedule,
        ..StudentProfile::default()
    }
}

fn open() -> (Option<Window>, chrono::DateTime<Utc>) {
    let now = Utc::now();
    let w = Window {
        opens_at: now - Duration::hours(1),
        closes_at: now + Duration::hours(1),
    };
    (Some(w), now)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_choice_is_within_the_range_and_the_bases(
        c in course(), credits in prop::option::of(0u32..=14), asked in prop::option::of(basis()),
    ) {
        let got = c.choose(credits, asked);
        let want_credits = credits.unwrap_or(c.credits);
        let want_basis = asked.unwrap_or_else(|| c.default_basis());
        let fits = (c.min_credits..=c.max_credits).contains(&want_credits);
        match got {
            Ok(o) => {
                prop_assert!(fits && c.bases.contains(&want_basis));
                prop_assert_eq!(o, EnrollmentOptions { credits: want_credits, basis: want_basis });
            }
            Err(RuleViolation::CreditsOutOfRange { credits, min, max }) => {
                prop_assert!(!fits);
                prop_assert_eq!((credits, min, max), (want_credits, c.min_credits, c.max_credits));
            }
            Err(RuleViolation::GradingBasisNotAllowed { basis, .. }) => {
                prop_assert!(fits && !c.bases.contains(&want_basis));
                prop_assert_eq!(basis, want_basis);
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
        // Left out entirely, a course's own default always fits it.
        let default = c.default_options();
        prop_assert_eq!(c.choose(None, None), Ok(default));
        if c.bases.contains(&GradingBasis::Letter) {
            prop_assert_eq!(default.basis, GradingBasis::Letter);
        }
    }

    #[test]
    fn audited_credits_never_count_toward_the_limit(
        held in prop::collection::vec((0u32..=6, basis()), 0..6),
        target in (0u32..=6, basis()),
        max_credits in 0u32..=24,
    ) {
        let schedule: Vec<OfferedSection> = held
            .iter()
            .enumerate()
            .map(|(i, (c, b))| taken(i as u128 + 1, *c, *b))
            .collect();
        let graded = |(c, b): &(u32, GradingBasis)| if *b == GradingBasis::Audit { 0 } else { *c };
        let want = held.iter().map(graded).sum::<u32>() + graded(&target);
        let t = taken(100, target.0, target.1);
        let (w, now) = open();
        let verdict = check_enroll(&student(schedule, max_credits), &t, w, now, None);
        if want <= max_credits {
            prop_assert_eq!(verdict, Ok(()));
        } else {
            prop_assert_eq!(
                verdict,
                Err(RuleViolation::CreditLimitExceeded { limit: max_credits, would_be: want })
            );
        }
    }

    #[test]
    fn only_a_rise_past_the_limit_is_refused(
        held in prop::collection::vec(0u32..=6, 1..6),
        which in any::<prop::sample::Index>(),
        counted in 0u32..=8,
        max_credits in 0u32..=20,
    ) {
        let schedule: Vec<OfferedSection> = held
            .iter()
            .enumerate()
            .map(|(i, c)| taken(i as u128 + 1, *c, GradingBasis::Letter))
            .collect();
        let i = which.index(held.len());
        let before: u32 = held.iter().sum();
        let after = before - held[i] + counted;
        let verdict = check_change(&schedule, max_credits, schedule[i].id, counted);
        if after > max_credits && after > before {
            prop_assert_eq!(
                verdict,
                Err(RuleViolation::CreditLimitExceeded { limit: max_credits, would_be: after })
            );
        } else {
            prop_assert_eq!(verdict, Ok(()));
        }
    }
}
