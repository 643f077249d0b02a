//! Student attributes as the registration rules see them: a kind (major, program, cohort,
//! standing) and a value (`CS`, `BS-CS`, `HONORS`, `SENIOR`). Seat pools reserve seats for
//! one attribute ([`crate::ledger::ReservePool`]) and section restrictions include or
//! exclude students by them ([`crate::student_rules::Restriction`]); both compare values as
//! written here, upper case (the server normalises them on the way in).

use serde::{Deserialize, Serialize};
use std::fmt;

/// What an attribute describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeKind {
    /// A declared major (a student may have several).
    Major,
    /// The academic program (degree plan).
    Program,
    /// A cohort: honors, athletes, a learning community, an entry year.
    Cohort,
    /// Class standing (`FRESHMAN` ... `GRADUATE`).
    Standing,
}

impl AttributeKind {
    /// Every kind, in a fixed order.
    pub const ALL: [AttributeKind; 4] = [
        AttributeKind::Major,
        AttributeKind::Program,
        AttributeKind::Cohort,
        AttributeKind::Standing,
    ];

    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeKind::Major => "major",
            AttributeKind::Program => "program",
            AttributeKind::Cohort => "cohort",
            AttributeKind::Standing => "standing",
        }
    }
}

impl std::str::FromStr for AttributeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        AttributeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not one of major, program, cohort, standing"))
    }
}

/// One attribute of a student, or the attribute a pool or restriction names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attribute {
    /// What it describes.
    pub kind: AttributeKind,
    /// Its value, upper case.
    pub value: String,
}

impl Attribute {
    /// An attribute of `kind` with `value`.
    pub fn new(kind: AttributeKind, value: impl Into<String>) -> Self {
        Self {
            kind,
            value: value.into(),
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.value)
    }
}
