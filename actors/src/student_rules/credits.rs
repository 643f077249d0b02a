//! Variable credits and grading bases: what a course allows ([`CourseGrading`]: a credit
//! range and the grading bases it may be taken under) and what a student chose for one
//! enrollment ([`EnrollmentOptions`]), as Banner's variable-credit hours and grade modes
//! and PeopleSoft's units and grading basis have it.
//!
//! The seats never see these: the student's home node checks the options here, records
//! them before asking for the seat, and the credit limit counts what the student chose
//! ([`EnrollmentOptions::counted`]): an audited course earns nothing, so it counts nothing
//! toward the limit. A change of options on a section already held is checked again
//! against the limit ([`check_change`]) and closes with the term's `drop_by`.

use super::{Deadlines, OfferedSection, RuleViolation, credits_of};
use crate::ids::SectionId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How an enrollment is graded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradingBasis {
    /// A letter grade (the default where a course allows it).
    Letter,
    /// Pass or fail: the credits are earned, the grade does not enter the average.
    PassFail,
    /// Attended without credit: counts toward no credit limit or total.
    Audit,
}

impl GradingBasis {
    /// Every basis, in their order of preference as a default.
    pub const ALL: [GradingBasis; 3] = [
        GradingBasis::Letter,
        GradingBasis::PassFail,
        GradingBasis::Audit,
    ];

    /// The name, as serialized (`letter`, `pass_fail`, `audit`).
    pub fn as_str(self) -> &'static str {
        match self {
            GradingBasis::Letter => "letter",
            GradingBasis::PassFail => "pass_fail",
            GradingBasis::Audit => "audit",
        }
    }
}

impl FromStr for GradingBasis {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a grading basis (letter, pass_fail, audit)"))
    }
}

impl fmt::Display for GradingBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a course allows a student to choose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CourseGrading {
    /// The course's credits: what an enrollment that names none gets.
    pub credits: u32,
    /// The fewest credits a student may take it for (at most `credits`).
    pub min_credits: u32,
    /// The most credits a student may take it for (at least `credits`).
    pub max_credits: u32,
    /// The grading bases it may be taken under, never empty (stored in
    /// [`GradingBasis::ALL`]'s order).
    pub bases: Vec<GradingBasis>,
}

impl CourseGrading {
    /// A course of fixed `credits`, graded by letter only: what every course is unless its
    /// catalog entry says otherwise.
    pub fn fixed(credits: u32) -> Self {
        Self {
            credits,
            min_credits: credits,
            max_credits: credits,
            bases: vec![GradingBasis::Letter],
        }
    }

    /// The basis an enrollment that names none gets: `letter` if the course allows it,
    /// else the first it allows.
    pub fn default_basis(&self) -> GradingBasis {
        if self.bases.contains(&GradingBasis::Letter) {
            GradingBasis::Letter
        } else {
            self.bases.first().copied().unwrap_or(GradingBasis::Letter)
        }
    }

    /// The options of an enrollment that names none (or has none recorded): the course's
    /// credits under its default basis.
    pub fn default_options(&self) -> EnrollmentOptions {
        EnrollmentOptions {
            credits: self.credits,
            basis: self.default_basis(),
        }
    }

    /// The options of an enrollment asking for `credits` and `basis` (each defaulted when
    /// not given); refused when the course does not allow them.
    pub fn choose(
        &self,
        credits: Option<u32>,
        basis: Option<GradingBasis>,
    ) -> Result<EnrollmentOptions, RuleViolation> {
        let options = EnrollmentOptions {
            credits: credits.unwrap_or(self.credits),
            basis: basis.unwrap_or_else(|| self.default_basis()),
        };
        self.check(options)?;
        Ok(options)
    }

    /// Whether the course allows `options`.
    pub fn check(&self, options: EnrollmentOptions) -> Result<(), RuleViolation> {
        if options.credits < self.min_credits || options.credits > self.max_credits {
            return Err(RuleViolation::CreditsOutOfRange {
                credits: options.credits,
                min: self.min_credits,
                max: self.max_credits,
            });
        }
        if !self.bases.contains(&options.basis) {
            return Err(RuleViolation::GradingBasisNotAllowed {
                basis: options.basis,
                allowed: self.bases.clone(),
            });
        }
        Ok(())
    }
}

/// What a student chose for one enrollment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentOptions {
    /// The credits the student takes the course for.
    pub credits: u32,
    /// How it is graded.
    pub basis: GradingBasis,
}

impl EnrollmentOptions {
    /// The credits this enrollment counts toward the credit limit and the schedule's
    /// total: none when audited.
    pub fn counted(self) -> u32 {
        match self.basis {
            GradingBasis::Audit => 0,
            GradingBasis::Letter | GradingBasis::PassFail => self.credits,
        }
    }

    /// `section` as the credit rules see it for a student who chose these options.
    pub fn apply(self, section: &OfferedSection) -> OfferedSection {
        OfferedSection {
            credits: self.counted(),
            ..section.clone()
        }
    }
}

/// Whether options may still be changed at `now`: until the term's `drop_by` (inclusive),
/// the last day a section may be left without a record; without one, always.
pub fn check_change_deadline(
    deadlines: &Deadlines,
    now: DateTime<Utc>,
) -> Result<(), RuleViolation> {
    match deadlines.drop_by {
        Some(drop_by) if now > drop_by => Err(RuleViolation::OptionsDeadlinePassed { drop_by }),
        _ => Ok(()),
    }
}

/// Whether a student whose term schedule is `schedule` (each section's credits already
/// those the student counts) and whose limit is `max_credits` may count `counted` credits
/// for the course of `section` instead: the credit limit again, over the schedule as it
/// would be. Only a rise can break it: a student over the limit (their limit was lowered)
/// may still lower their credits or audit.
pub fn check_change(
    schedule: &[OfferedSection],
    max_credits: u32,
    section: SectionId,
    counted: u32,
) -> Result<(), RuleViolation> {
    let Some(course) = schedule.iter().find(|s| s.id == section) else {
        return Ok(());
    };
    let before: Vec<&OfferedSection> = schedule.iter().collect();
    // Every section of the course counts the course's credits once: change them all.
    let changed: Vec<OfferedSection> = schedule
        .iter()
        .map(|s| {
            if s.course_code == course.course_code {
                OfferedSection {
                    credits: counted,
                    ..s.clone()
                }
            } else {
                s.clone()
            }
        })
        .collect();
    let after: Vec<&OfferedSection> = changed.iter().collect();
    let would_be = credits_of(&after);
    if would_be > max_credits && would_be > credits_of(&before) {
        return Err(RuleViolation::CreditLimitExceeded {
            limit: max_credits,
            would_be,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn course() -> CourseGrading {
        CourseGrading {
            credits: 3,
            min_credits: 1,
            max_credits: 4,
            bases: vec![GradingBasis::Letter, GradingBasis::Audit],
        }
    }

    #[test]
    fn defaults_are_the_course_credits_and_letter() {
        assert_eq!(
            course().choose(None, None),
            Ok(EnrollmentOptions {
                credits: 3,
                basis: GradingBasis::Letter
            })
        );
        let pf_only = CourseGrading {
            bases: vec![GradingBasis::PassFail],
            ..CourseGrading::fixed(2)
        };
        assert_eq!(pf_only.default_basis(), GradingBasis::PassFail);
        // Letter wherever it is listed, whatever the order the bases were stored in.
        let audit_first = CourseGrading {
            bases: vec![GradingBasis::Audit, GradingBasis::Letter],
            ..CourseGrading::fixed(2)
        };
        assert_eq!(audit_first.default_basis(), GradingBasis::Letter);
    }

    #[test]
    fn the_range_and_the_bases_bound_the_choice() {
        assert!(course().choose(Some(1), None).is_ok());
        assert!(course().choose(Some(4), None).is_ok());
        assert_eq!(
            course().choose(Some(5), None).unwrap_err().code(),
            "credits_out_of_range"
        );
        assert_eq!(
            course().choose(Some(0), None).unwrap_err().code(),
            "credits_out_of_range"
        );
        assert_eq!(
            course()
                .choose(None, Some(GradingBasis::PassFail))
                .unwrap_err()
                .code(),
            "grading_basis_not_allowed"
        );
        assert_eq!(
            CourseGrading::fixed(3).choose(Some(2), None).unwrap_err(),
            RuleViolation::CreditsOutOfRange {
                credits: 2,
                min: 3,
                max: 3
            }
        );
    }

    #[test]
    fn bases_parse_by_their_names_only() {
        for b in GradingBasis::ALL {
            assert_eq!(b.as_str().parse::<GradingBasis>(), Ok(b));
        }
        for bad in ["", "Letter", "pass-fail", "pf", "audit "] {
            assert!(bad.parse::<GradingBasis>().is_err(), "{bad}");
        }
    }
}
