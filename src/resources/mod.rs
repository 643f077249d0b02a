//! The API's resources (terms, windows, courses, sections, students, holds) as clients
//! send and receive them, with the validation that turns client input into them.
//! Validation happens once, here; the store and the handlers trust these types. The rules
//! of registration proper (seats, waitlists, student rules) live in the `registrar-actors`
//! crate.

mod accounts;
mod catalog;
mod permits;
mod policy;

pub use accounts::*;
pub use catalog::*;
pub use permits::*;
pub use policy::*;

/// A validation failure: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Most sections one section may be linked to (a lecture's labs, or a lab's lectures).
pub const MAX_LINKS: usize = 50;

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        field,
        reason: reason.into(),
    }
}

/// Check a free-text field: not blank, at most `max` characters, no control characters
/// (a NUL cannot be stored in PostgreSQL text; the others have no business in a name).
/// [`TEXT_PATTERN`] says the same to the OpenAPI document.
pub(crate) fn text(field: &'static str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(invalid(field, format!("1 to {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "no control characters"));
    }
    Ok(())
}

/// What [`text`] accepts, as a JSON Schema pattern (besides the length): no control
/// character (`char::is_control`: U+0000-U+001F, U+007F-U+009F) and at least one character
/// that is not white space (Rust's `White_Space`, spelled out so every regex engine agrees).
const TEXT_PATTERN: &str = concat!(
    r"^[^\x00-\x1F\x7F-\x9F]*",
    r"[^\x00-\x20\x7F-\x9F\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"[^\x00-\x1F\x7F-\x9F]*$",
);

/// Every form [`normalize_course_code`] accepts, as a JSON Schema pattern: the blanks
/// around are those `str::trim` removes (Rust's `White_Space`).
const COURSE_CODE_PATTERN: &str = concat!(
    r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*",
    r"[A-Za-z]{2,8}[ -]?[0-9]{2,4}[A-Za-z]?",
    r"[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
);

/// `serde(deserialize_with)` for counts: a JSON number that is a whole number, written
/// `60` or `60.0` (JSON Schema's `integer` admits both), within `u32`.
pub(crate) fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    struct Whole;
    impl serde::de::Visitor<'_> for Whole {
        type Value = u32;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number from 0 to 4294967295")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u32, E> {
            u32::try_from(v)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u32, E> {
            if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                Ok(v as u32)
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
            }
        }
    }
    d.deserialize_any(Whole)
}

/// [`whole_number`] for an optional count: absent or `null` is `None`.
pub(crate) fn optional_whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<u32>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Whole(#[serde(deserialize_with = "whole_number")] u32);
    Ok(<Option<Whole> as serde::Deserialize>::deserialize(d)?.map(|w| w.0))
}

/// An optional field that, when present, must hold a value: left out is `None`, but
/// `null` is refused (the document types the field without `null`).
pub(crate) fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// OpenAPI schemas of the checked string fields (`#[schema(schema_with = ...)]`), built
/// from the same patterns and limits as the checks above, so the document says exactly
/// what the server accepts.
pub(crate) mod schema {
    use super::{COURSE_CODE_PATTERN, TEXT_PATTERN};
    use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, Type};

    fn text(max: usize, description: &str) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(TEXT_PATTERN))
            .build()
    }

    /// A name or title: 1-200 characters, not blank, no control characters.
    pub fn text_200() -> Object {
        text(200, "1-200 characters, not blank, no control characters")
    }

    /// A search: 1-60 characters, not blank, no control characters.
    pub fn search_60() -> Object {
        text(60, "1-60 characters, not blank, no control characters")
    }

    /// A hold's reason: 1-500 characters, not blank, no control characters.
    pub fn text_500() -> Object {
        text(500, "1-500 characters, not blank, no control characters")
    }

    fn code(max: usize, pattern: &str, description: &str, example: &str) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(pattern))
            .examples([example])
            .build()
    }

    /// A term's code: 1-32 letters, digits, `_` or `-`.
    pub fn term_code() -> Object {
        code(
            32,
            "^[A-Za-z0-9_-]+$",
            "1-32 letters, digits, `_` or `-`",
            "2027SP",
        )
    }

    /// A section's code within its course: 1-8 letters or digits.
    pub fn section_code() -> Object {
        code(8, "^[A-Za-z0-9]+$", "1-8 letters or digits", "01")
    }

    /// A course code in any form `normalize_course_code` accepts.
    pub fn course_code() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A course code such as `CS101`, `cs 101` or `MATH-2413`: 2-8 letters, an \
                 optional space or hyphen, 2-4 digits, an optional letter; answered upper \
                 case without separator",
            ))
            .pattern(Some(COURSE_CODE_PATTERN))
            .examples(["CS101"])
            .build()
    }

    /// A meeting's day, `mon` .. `sun`.
    pub fn meeting_day() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("`mon` .. `sun`"))
            .enum_values(Some(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]))
            .examples(["mon"])
            .build()
    }

    fn course_codes(max: usize) -> Array {
        ArrayBuilder::new()
            .items(course_code())
            .max_items(Some(max))
            .build()
    }

    /// A course's prerequisites: at most 20 course codes.
    pub fn prerequisites() -> Array {
        course_codes(20)
    }

    /// A course's corequisites: at most 20 course codes.
    pub fn corequisites() -> Array {
        course_codes(20)
    }

    /// A section's component: `lecture`, `lab`, `recitation`, `seminar` or `studio`.
    pub fn component() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "`lecture`, `lab`, `recitation`, `seminar` or `studio`",
            ))
            .enum_values(Some(
                registrar_actors::student_rules::Component::ALL.map(|c| c.as_str()),
            ))
            .examples(["lecture"])
            .build()
    }

    /// A course's required components, the primary first: at most 4, no repeats.
    pub fn components() -> Array {
        ArrayBuilder::new()
            .items(component())
            .max_items(Some(4))
            .unique_items(true)
            .build()
    }

    /// A grading basis: `letter`, `pass_fail` or `audit`.
    pub fn grading_basis() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("`letter`, `pass_fail` or `audit`"))
            .enum_values(Some(
                registrar_actors::student_rules::GradingBasis::ALL.map(|b| b.as_str()),
            ))
            .examples(["letter"])
            .build()
    }

    /// A grading basis a request may leave out: `letter`, `pass_fail`, `audit` or `null`.
    pub fn optional_grading_basis() -> Object {
        let mut names: Vec<serde_json::Value> = registrar_actors::student_rules::GradingBasis::ALL
            .iter()
            .map(|b| b.as_str().into())
            .collect();
        names.push(serde_json::Value::Null);
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::String,
                Type::Null,
            ]))
            .description(Some(
                "`letter`, `pass_fail` or `audit`; left out or `null`: chosen for the student",
            ))
            .enum_values(Some(names))
            .examples(["pass_fail"])
            .build()
    }

    /// The grading bases a course allows: 1-3, no repeats.
    pub fn grading_bases() -> Array {
        ArrayBuilder::new()
            .items(grading_basis())
            .min_items(Some(1))
            .max_items(Some(3))
            .unique_items(true)
            .build()
    }

    /// Linked sections: at most 50 section ids, no repeats.
    pub fn links() -> Array {
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Uuid,
                    )))
                    .build(),
            )
            .max_items(Some(super::MAX_LINKS))
            .unique_items(true)
            .build()
    }

    /// A student's completed courses.
    pub fn completed_courses() -> Array {
        course_codes(super::MAX_COMPLETED_COURSES)
    }
}
