//! The API's resources (terms, windows, courses, sections, students, holds) as clients
//! send and receive them, with the validation that turns client input into them.
//! Validation happens once, here; the store and the handlers trust these types. The rules
//! of registration proper (seats, waitlists, student rules) live in the `registrar-actors`
//! crate.

mod accounts;
mod catalog;

pub use accounts::*;
pub use catalog::*;

/// A validation failure: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        field,
        reason: reason.into(),
    }
}

/// Check a free-text field: not blank, at most `max` characters.
pub(crate) fn text(field: &'static str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(invalid(field, format!("1 to {max} characters")));
    }
    Ok(())
}
