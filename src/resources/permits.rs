//! Permits (overrides) as clients send and receive them: a registrar's leave for one
//! student to pass one rule, for one section (or a whole term, for a credit overload),
//! single-use or until a date.

use super::{Invalid, invalid};
use chrono::{DateTime, Utc};
use registrar_actors::student_rules::PermitKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /permits` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPermit {
    /// The student it is for.
    pub student_id: Uuid,
    /// What it lets through: `capacity`, `prerequisite`, `time_conflict`,
    /// `credit_overload`, `restriction`, `consent` or `late_add`.
    #[schema(schema_with = schema::kind)]
    pub kind: String,
    /// The section it is for (every kind but `credit_overload`).
    #[serde(default)]
    pub section_id: Option<Uuid>,
    /// The term of a `credit_overload` (for the others, the section's term).
    #[serde(default)]
    pub term_id: Option<Uuid>,
    /// A `credit_overload`'s new credit limit for the term, 1-40.
    #[serde(default, deserialize_with = "super::policy::some_whole_number")]
    #[schema(minimum = 1, maximum = 40, value_type = Option<u32>, nullable)]
    pub max_credits: Option<u32>,
    /// A `capacity` permit: seat the student ahead of students already waiting (default:
    /// no; with others waiting, the student joins the waitlist like anyone).
    #[serde(default)]
    pub jump_waitlist: bool,
    /// Used up by the first place it allows (default); `false` needs `expires_at`. A
    /// `credit_overload` holds for its term whatever this says.
    #[serde(default = "yes")]
    pub single_use: bool,
    /// When it stops counting (in the future).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Why it was granted (at most 500 characters).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

fn yes() -> bool {
    true
}

impl NewPermit {
    /// Check the fields (not whether the student, section or term exist); the kind.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<PermitKind, Invalid> {
        let kind = PermitKind::parse(&self.kind).ok_or_else(|| {
            invalid(
                "kind",
                "capacity, prerequisite, time_conflict, credit_overload, restriction, consent or late_add",
            )
        })?;
        if kind.is_term_wide() {
            if self.section_id.is_some() {
                return Err(invalid("section_id", "absent for a credit_overload"));
            }
            if self.term_id.is_none() {
                return Err(invalid("term_id", "the term of a credit_overload"));
            }
            if !self.max_credits.is_some_and(|m| (1..=40).contains(&m)) {
                return Err(invalid("max_credits", "1 to 40 for a credit_overload"));
            }
        } else {
            if self.section_id.is_none() {
                return Err(invalid("section_id", "the section the permit is for"));
            }
            if self.term_id.is_some() {
                return Err(invalid("term_id", "absent: the section's term"));
            }
            if self.max_credits.is_some() {
                return Err(invalid("max_credits", "only for a credit_overload"));
            }
        }
        if self.jump_waitlist && kind != PermitKind::Capacity {
            return Err(invalid("jump_waitlist", "only for a capacity permit"));
        }
        if self.expires_at.is_some_and(|e| e <= now) {
            return Err(invalid("expires_at", "in the future"));
        }
        if !self.single_use && self.expires_at.is_none() && !kind.is_term_wide() {
            return Err(invalid(
                "expires_at",
                "required for a permit that is not single-use",
            ));
        }
        if self.note.as_ref().is_some_and(|n| n.chars().count() > 500) {
            return Err(invalid("note", "at most 500 characters"));
        }
        Ok(kind)
    }
}

/// A permit, with who granted it and its uses.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct PermitView {
    /// The permit.
    pub id: Uuid,
    /// The student.
    pub student_id: Uuid,
    /// The term.
    pub term_id: Uuid,
    /// The section; none for a credit overload.
    pub section_id: Option<Uuid>,
    /// What it lets through.
    #[schema(schema_with = schema::kind)]
    pub kind: String,
    /// A credit overload's limit.
    pub max_credits: Option<i16>,
    /// A capacity permit: ahead of students waiting.
    pub jump_waitlist: bool,
    /// Used up by the first place it allows.
    pub single_use: bool,
    /// When it stops counting.
    pub expires_at: Option<DateTime<Utc>>,
    /// Why it was granted.
    pub note: Option<String>,
    /// The staff account that granted it.
    pub granted_by: Option<Uuid>,
    /// When.
    pub granted_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The staff account that revoked it.
    pub revoked_by: Option<Uuid>,
    /// When it was last used (for a single-use permit: used up).
    pub used_at: Option<DateTime<Utc>>,
    /// The section of its last use.
    pub used_for: Option<Uuid>,
    /// `active`, `used`, `expired` or `revoked` (at the database's time of the answer).
    #[schema(schema_with = schema::state)]
    pub state: String,
}

/// `GET /permits` filters.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PermitFilter {
    /// Only this student's.
    pub student_id: Option<Uuid>,
    /// Only this section's.
    pub section_id: Option<Uuid>,
}

mod schema {
    use registrar_actors::student_rules::PermitKind;
    use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

    /// A permit kind.
    pub fn kind() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(PermitKind::ALL.map(PermitKind::as_str)))
            .examples(["prerequisite"])
            .build()
    }

    /// A permit's state.
    pub fn state() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["active", "used", "expired", "revoked"]))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permit(kind: &str) -> NewPermit {
        NewPermit {
            student_id: Uuid::new_v4(),
            kind: kind.into(),
            section_id: Some(Uuid::new_v4()),
            term_id: None,
            max_credits: None,
            jump_waitlist: false,
            single_use: true,
            expires_at: None,
            note: None,
        }
    }

    #[test]
    fn each_kind_names_what_it_is_for() {
        let now = Utc::now();
        assert_eq!(
            permit("prerequisite").validate(now),
            Ok(PermitKind::Prerequisite)
        );
        assert_eq!(permit("bogus").validate(now).unwrap_err().field, "kind");
        let mut overload = permit("credit_overload");
        assert_eq!(overload.validate(now).unwrap_err().field, "section_id");
        overload.section_id = None;
        overload.term_id = Some(Uuid::new_v4());
        assert_eq!(overload.validate(now).unwrap_err().field, "max_credits");
        overload.max_credits = Some(21);
        assert_eq!(overload.validate(now), Ok(PermitKind::CreditOverload));
        let mut jump = permit("time_conflict");
        jump.jump_waitlist = true;
        assert_eq!(jump.validate(now).unwrap_err().field, "jump_waitlist");
        let mut reusable = permit("consent");
        reusable.single_use = false;
        assert_eq!(reusable.validate(now).unwrap_err().field, "expires_at");
        reusable.expires_at = Some(now - chrono::Duration::minutes(1));
        assert_eq!(reusable.validate(now).unwrap_err().field, "expires_at");
        reusable.expires_at = Some(now + chrono::Duration::days(7));
        assert_eq!(reusable.validate(now), Ok(PermitKind::Consent));
    }
}
