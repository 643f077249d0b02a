//! Registration policy resources: student attributes (majors, program, cohort), reserved
//! seat pools and restrictions of a section, and time tickets, as clients send and receive
//! them. Attribute values are codes such as `CS`, `BS-CS` or `HONORS`: 1-16 letters,
//! digits, `_` or `-`, stored and compared upper case.

use super::{Invalid, Standing, invalid};
use chrono::{DateTime, Utc};
use registrar_actors::student_rules::{Restriction, RestrictionMode};
use registrar_actors::{Attribute, AttributeKind, PoolId, ReservePool};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Most majors one student may declare.
pub const MAX_MAJORS: usize = 5;

/// Most reserved pools one section may have.
pub const MAX_POOLS: usize = 10;

/// Most restrictions one section may have, and values one restriction may name.
pub const MAX_RESTRICTIONS: usize = 10;

/// An attribute code as clients write it, as a JSON Schema pattern.
pub const ATTRIBUTE_CODE_PATTERN: &str = "^[A-Za-z0-9_-]{1,16}$";

/// The canonical (upper case) form of an attribute code, or why it is not one.
pub fn attribute_code(field: &'static str, raw: &str) -> Result<String, Invalid> {
    let ok = (1..=16).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(invalid(field, "1-16 letters, digits, '_' or '-'"));
    }
    Ok(raw.to_ascii_uppercase())
}

/// Canonical codes of `raw`, each once, at most `max`.
pub fn attribute_codes(
    field: &'static str,
    raw: &[String],
    max: usize,
) -> Result<Vec<String>, Invalid> {
    if raw.len() > max {
        return Err(invalid(field, format!("at most {max}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for r in raw {
        let code = attribute_code(field, r)?;
        if !out.contains(&code) {
            out.push(code);
        }
    }
    Ok(out)
}

/// A student's attributes as the rules match them: each major, the program, the cohort
/// and the standing (upper case).
pub fn attributes_of(
    standing: Option<Standing>,
    majors: &[String],
    program: Option<&str>,
    cohort: Option<&str>,
) -> Vec<Attribute> {
    let mut out: Vec<Attribute> = majors
        .iter()
        .map(|m| Attribute::new(AttributeKind::Major, m.clone()))
        .collect();
    out.extend(program.map(|p| Attribute::new(AttributeKind::Program, p)));
    out.extend(cohort.map(|c| Attribute::new(AttributeKind::Cohort, c)));
    out.extend(
        standing.map(|s| Attribute::new(AttributeKind::Standing, s.as_str().to_ascii_uppercase())),
    );
    out
}

/// `PATCH /students/{id}` body: the fields to change; absent ones stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StudentPatch {
    /// Class standing.
    pub standing: Option<Standing>,
    /// Credit limit per term, 0-40; `null` or absent: unchanged.
    #[serde(default, deserialize_with = "some_whole_number")]
    #[schema(maximum = 40, value_type = Option<u32>, nullable)]
    pub max_credits: Option<u32>,
    /// Declared majors (replaces them all; at most 5); absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::majors)]
    pub majors: Option<Vec<String>>,
    /// Program; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, pattern = "^[A-Za-z0-9_-]{1,16}$")]
    pub program: Option<Option<String>>,
    /// Cohort; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, pattern = "^[A-Za-z0-9_-]{1,16}$")]
    pub cohort: Option<Option<String>>,
}

/// `serde(deserialize_with)` telling a field sent as `null` (`Some(None)`) from one left out
/// (`None`, by `default`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// `serde(deserialize_with)` for an optional count: `null` is none, else a whole number.
pub(super) fn some_whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<u32>, D::Error> {
    /// A count as `whole_number` reads it.
    #[derive(Deserialize)]
    struct Whole(#[serde(deserialize_with = "super::whole_number")] u32);
    Ok(Option::<Whole>::deserialize(d)?.map(|w| w.0))
}

impl StudentPatch {
    /// Check the fields, bringing codes to their canonical form.
    pub fn validate(&mut self) -> Result<(), Invalid> {
        if self.max_credits.is_some_and(|m| m > 40) {
            return Err(invalid("max_credits", "0 to 40"));
        }
        if let Some(majors) = &self.majors {
            self.majors = Some(attribute_codes("majors", majors, MAX_MAJORS)?);
        }
        if let Some(Some(p)) = &self.program {
            self.program = Some(Some(attribute_code("program", p)?));
        }
        if let Some(Some(c)) = &self.cohort {
            self.cohort = Some(Some(attribute_code("cohort", c)?));
        }
        Ok(())
    }
}

/// A reserved pool as an admin sends it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPool {
    /// `major`, `program`, `cohort` or `standing`.
    #[schema(value_type = String, schema_with = schema::attribute_kind)]
    pub attribute: AttributeKind,
    /// The value students must have (a standing is written `SENIOR` or `senior`).
    #[schema(pattern = "^[A-Za-z0-9_-]{1,16}$")]
    pub value: String,
    /// Seats set aside, 0-100000 (all pools together at most the capacity).
    #[serde(deserialize_with = "super::whole_number")]
    #[schema(maximum = 100_000)]
    pub seats: u32,
    /// When unused seats join the general ones; `null` or absent: never.
    #[serde(default)]
    pub release_at: Option<DateTime<Utc>>,
}

/// Check pools for a section of `capacity` seats: at most [`MAX_POOLS`], one per
/// attribute, their seats together at most the capacity. Returns them with their values
/// canonical, in order.
pub fn check_pools(pools: &[NewPool], capacity: u32) -> Result<Vec<NewPool>, Invalid> {
    if pools.len() > MAX_POOLS {
        return Err(invalid("reserved", format!("at most {MAX_POOLS} pools")));
    }
    let mut out: Vec<NewPool> = Vec::with_capacity(pools.len());
    let mut total: u64 = 0;
    for p in pools {
        let value = attribute_code("reserved", &p.value)?;
        if p.seats > 100_000 {
            return Err(invalid("reserved", "seats: 0 to 100000"));
        }
        if out
            .iter()
            .any(|o| o.attribute == p.attribute && o.value == value)
        {
            return Err(invalid(
                "reserved",
                format!("two pools for {} {value}", p.attribute.as_str()),
            ));
        }
        total += u64::from(p.seats);
        out.push(NewPool { value, ..p.clone() });
    }
    if total > u64::from(capacity) {
        return Err(invalid(
            "reserved",
            format!("the pools reserve {total} seats, more than the capacity of {capacity}"),
        ));
    }
    Ok(out)
}

/// The pools `new` describes, keeping the id (and so the seats taken) of an existing pool
/// for the same attribute, so that replacing the pools never forgets who sits in them.
pub fn pools_from(new: &[NewPool], existing: &[ReservePool]) -> Vec<ReservePool> {
    new.iter()
        .map(|p| {
            let attribute = Attribute::new(p.attribute, p.value.clone());
            let old = existing.iter().find(|e| e.attribute == attribute);
            ReservePool {
                id: old.map_or_else(|| PoolId(Uuid::new_v4()), |e| e.id),
                attribute,
                seats: p.seats,
                release_at: p.release_at,
                // A pool already released stays so unless its time moved into the future.
                released: old.is_some_and(|e| e.released && e.release_at == p.release_at),
            }
        })
        .collect()
}

/// `PUT /sections/{id}/reserved` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservedPools {
    /// The pools, in the order a student matching several tries them (at most 10).
    #[schema(max_items = 10)]
    pub reserved: Vec<NewPool>,
}

/// A reserved pool as the catalog shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PoolView {
    /// Id.
    pub id: Uuid,
    /// `major`, `program`, `cohort` or `standing`.
    #[schema(value_type = String)]
    pub attribute: AttributeKind,
    /// The value students must have.
    pub value: String,
    /// Seats set aside.
    pub seats: u32,
    /// Of them, taken.
    pub taken: u32,
    /// Of them, free (0 once released: its free seats are general ones then).
    pub seats_left: u32,
    /// When its unused seats join the general ones.
    pub release_at: Option<DateTime<Utc>>,
    /// Whether that time has come.
    pub released: bool,
}

/// A restriction as admins send it and the catalog shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestrictionDto {
    /// `major`, `program`, `cohort` or `standing`.
    #[schema(value_type = String, schema_with = schema::attribute_kind)]
    pub attribute: AttributeKind,
    /// `include` (only these) or `exclude` (all but these).
    #[schema(value_type = String, schema_with = schema::restriction_mode)]
    pub mode: RestrictionMode,
    /// The values (1-10).
    #[schema(min_items = 1, max_items = 10, schema_with = schema::codes)]
    pub values: Vec<String>,
}

/// Check restrictions, bringing their values to canonical form.
pub fn check_restrictions(dtos: &[RestrictionDto]) -> Result<Vec<Restriction>, Invalid> {
    if dtos.len() > MAX_RESTRICTIONS {
        return Err(invalid(
            "restrictions",
            format!("at most {MAX_RESTRICTIONS}"),
        ));
    }
    dtos.iter()
        .map(|d| {
            if d.values.is_empty() {
                return Err(invalid("restrictions", "values: at least one"));
            }
            Ok(Restriction {
                attribute: d.attribute,
                mode: d.mode,
                values: attribute_codes("restrictions", &d.values, MAX_RESTRICTIONS)?,
            })
        })
        .collect()
}

impl From<&Restriction> for RestrictionDto {
    fn from(r: &Restriction) -> Self {
        Self {
            attribute: r.attribute,
            mode: r.mode,
            values: r.values.clone(),
        }
    }
}

/// `PUT /terms/{term_id}/time-tickets/{student_id}` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTimeTicket {
    /// From when the student may register.
    pub opens_at: DateTime<Utc>,
    /// Until when (after `opens_at`); absent: until the standing's window closes.
    #[serde(default)]
    pub closes_at: Option<DateTime<Utc>>,
}

impl NewTimeTicket {
    /// Check the fields.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.closes_at.is_some_and(|c| c <= self.opens_at) {
            return Err(invalid("closes_at", "after opens_at"));
        }
        Ok(())
    }
}

/// `POST /terms/{term_id}/time-tickets/assign` body: registration appointments for many
/// students at once, by credits earned (most first, as registrars reward progress toward
/// the degree), in groups a step apart.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRule {
    /// The rule: `credits_earned` (the credits of the student's completed courses).
    #[schema(schema_with = schema::ticket_rule)]
    pub by: String,
    /// When the first group opens.
    pub first_opens_at: DateTime<Utc>,
    /// Students per group, 1-100000.
    #[serde(deserialize_with = "super::whole_number")]
    #[schema(minimum = 1, maximum = 100_000)]
    pub group_size: u32,
    /// Minutes between two groups, 0-10080.
    #[serde(deserialize_with = "super::whole_number")]
    #[schema(maximum = 10_080)]
    pub step_minutes: u32,
    /// When every ticket closes; absent: at the standing's window close.
    #[serde(default)]
    pub closes_at: Option<DateTime<Utc>>,
    /// Only students of these standings (default: every student).
    #[serde(default)]
    #[schema(max_items = 5)]
    pub standings: Vec<Standing>,
}

impl TicketRule {
    /// Check the fields.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.by != "credits_earned" {
            return Err(invalid("by", "credits_earned"));
        }
        if !(1..=100_000).contains(&self.group_size) {
            return Err(invalid("group_size", "1 to 100000"));
        }
        if self.step_minutes > 10_080 {
            return Err(invalid("step_minutes", "0 to 10080"));
        }
        if self.closes_at.is_some_and(|c| c <= self.first_opens_at) {
            return Err(invalid("closes_at", "after first_opens_at"));
        }
        if self.standings.len() > 5 {
            return Err(invalid("standings", "at most 5"));
        }
        Ok(())
    }
}

/// A student's time ticket in a term.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct TimeTicketView {
    /// Term.
    pub term_id: Uuid,
    /// Student.
    pub student_id: Uuid,
    /// From when the student may register.
    pub opens_at: DateTime<Utc>,
    /// Until when; none: until the standing's window closes.
    pub closes_at: Option<DateTime<Utc>>,
}

/// OpenAPI schemas of the policy fields.
pub(crate) mod schema {
    use super::ATTRIBUTE_CODE_PATTERN;
    use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, Type};

    /// An attribute code.
    pub fn code() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("1-16 letters, digits, `_` or `-`; stored upper case"))
            .pattern(Some(ATTRIBUTE_CODE_PATTERN))
            .examples(["CS"])
            .build()
    }

    /// A list of attribute codes (at most 10).
    pub fn codes() -> Array {
        ArrayBuilder::new()
            .items(code())
            .max_items(Some(10))
            .build()
    }

    /// A student's majors (at most [`super::MAX_MAJORS`]).
    pub fn majors() -> Array {
        ArrayBuilder::new()
            .items(code())
            .max_items(Some(super::MAX_MAJORS))
            .build()
    }

    /// `major`, `program`, `cohort` or `standing`.
    pub fn attribute_kind() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["major", "program", "cohort", "standing"]))
            .examples(["major"])
            .build()
    }

    /// The rules tickets may be assigned by.
    pub fn ticket_rule() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["credits_earned"]))
            .examples(["credits_earned"])
            .build()
    }

    /// `auto` or `offer`.
    pub fn waitlist_mode() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["auto", "offer"]))
            .default(Some("auto".into()))
            .examples(["offer"])
            .build()
    }

    /// `include` or `exclude`.
    pub fn restriction_mode() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["include", "exclude"]))
            .examples(["include"])
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_upper_case_and_bounded() {
        assert_eq!(attribute_code("x", "bs-cs").unwrap(), "BS-CS");
        for bad in ["", "a b", "toolongtoolongtoo", "é", "CS!"] {
            assert!(attribute_code("x", bad).is_err(), "{bad}");
        }
        let majors = vec!["cs".to_string(), "CS".into(), "math".into()];
        assert_eq!(
            attribute_codes("majors", &majors, 5).unwrap(),
            vec!["CS", "MATH"]
        );
    }

    #[test]
    fn pools_fit_the_capacity_and_keep_their_ids() {
        let pool = |value: &str, seats| NewPool {
            attribute: AttributeKind::Major,
            value: value.into(),
            seats,
            release_at: None,
        };
        assert!(check_pools(&[pool("cs", 3), pool("math", 3)], 5).is_err());
        assert!(check_pools(&[pool("cs", 1), pool("CS", 1)], 5).is_err());
        let ok = check_pools(&[pool("cs", 3), pool("math", 2)], 5).unwrap();
        let first = pools_from(&ok, &[]);
        let again = pools_from(&ok, &first);
        assert_eq!(first[0].id, again[0].id);
        assert_eq!(first[0].attribute.value, "CS");
    }
}
