//! Permits (overrides): a registrar's or instructor's leave for one student to pass one
//! rule, for one section (or, for a credit overload, for the term), as Banner's
//! registration overrides and PeopleSoft's class permissions give it.
//!
//! The rules consult the student's usable permits where a rule would refuse, and record
//! each permit that let something through ([`PermitUse`]); the server sends those uses
//! with the seat command, and the section's commit writes them with the seat, so a
//! single-use permit is used up exactly when the place it allowed is committed. A capacity
//! permit is not a student rule: the section's ledger decides whether it is needed (see
//! [`crate::ledger::CapacityPermit`]).

use crate::ids::{PermitId, SectionId};
use serde::{Deserialize, Serialize};

/// What a permit lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermitKind {
    /// A seat in a full (closed) section, beyond its capacity.
    Capacity,
    /// The section's prerequisites.
    Prerequisite,
    /// A time conflict of the section with the schedule.
    TimeConflict,
    /// The credit limit, up to the permit's `max_credits` (a term permit).
    CreditOverload,
    /// The section's restrictions (majors, program, cohort, standing).
    Restriction,
    /// The instructor's consent, for a section that requires it.
    Consent,
    /// The term's last day to add.
    LateAdd,
}

impl PermitKind {
    /// Every kind, in the order documented.
    pub const ALL: [PermitKind; 7] = [
        PermitKind::Capacity,
        PermitKind::Prerequisite,
        PermitKind::TimeConflict,
        PermitKind::CreditOverload,
        PermitKind::Restriction,
        PermitKind::Consent,
        PermitKind::LateAdd,
    ];

    /// The snake_case name, as serialized and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            PermitKind::Capacity => "capacity",
            PermitKind::Prerequisite => "prerequisite",
            PermitKind::TimeConflict => "time_conflict",
            PermitKind::CreditOverload => "credit_overload",
            PermitKind::Restriction => "restriction",
            PermitKind::Consent => "consent",
            PermitKind::LateAdd => "late_add",
        }
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether a permit of this kind is for the whole term rather than one section.
    pub fn is_term_wide(self) -> bool {
        self == PermitKind::CreditOverload
    }
}

/// One usable permit of the student's, as the rules see it (granted, not revoked, not
/// expired; a single-use one not used yet, or used for the place it is `spent_on`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permit {
    /// The permit.
    pub id: PermitId,
    /// What it lets through.
    pub kind: PermitKind,
    /// The section it is for; `None` for a term permit (credit overload).
    pub section: Option<SectionId>,
    /// A credit overload's new limit.
    pub max_credits: Option<u32>,
    /// A capacity permit: whether it seats the student ahead of students waiting.
    pub jump_waitlist: bool,
    /// A single-use permit already used for a place in this section, which the student
    /// still holds: it covers that place again (an offer accepted later), never another.
    pub spent_on: Option<SectionId>,
}

/// A permit that let a section through (what the seat's commit records).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermitUse {
    /// The permit.
    pub permit: PermitId,
    /// The section whose place it allowed (a term permit: the first section of the
    /// request that needed it).
    pub section: SectionId,
}

/// The permits of one check, and those it used.
pub(super) struct Waivers<'a> {
    permits: &'a [Permit],
    /// Whether spent permits cover their section again (accepting an offer).
    again: bool,
    pub(super) used: Vec<PermitUse>,
}

impl<'a> Waivers<'a> {
    /// For an add: only permits not spent.
    pub(super) fn new(permits: &'a [Permit]) -> Self {
        Self {
            permits,
            again: false,
            used: Vec::new(),
        }
    }

    /// For a place the student already holds (an offer): spent permits cover it too.
    pub(super) fn again(permits: &'a [Permit]) -> Self {
        Self {
            permits,
            again: true,
            used: Vec::new(),
        }
    }

    fn usable(&self, p: &Permit, section: SectionId) -> bool {
        match p.spent_on {
            None => true,
            Some(s) => self.again && s == section,
        }
    }

    /// Whether a permit of `kind` for `section` lets it through; records the use.
    pub(super) fn waive(&mut self, kind: PermitKind, section: SectionId) -> bool {
        let found = self
            .permits
            .iter()
            .find(|p| p.kind == kind && p.section == Some(section) && self.usable(p, section));
        self.record(found.map(|p| p.id), section)
    }

    /// Whether a credit overload lets `section` raise the schedule to `credits`; records
    /// the use.
    pub(super) fn overload(&mut self, credits: u32, section: SectionId) -> bool {
        let found = self
            .permits
            .iter()
            .filter(|p| p.kind == PermitKind::CreditOverload && self.usable(p, section))
            .filter(|p| p.max_credits.is_some_and(|m| m >= credits))
            .max_by_key(|p| p.max_credits);
        self.record(found.map(|p| p.id), section)
    }

    fn record(&mut self, permit: Option<PermitId>, section: SectionId) -> bool {
        let Some(permit) = permit else {
            return false;
        };
        if !self.used.iter().any(|u| u.permit == permit) {
            self.used.push(PermitUse { permit, section });
        }
        true
    }
}
