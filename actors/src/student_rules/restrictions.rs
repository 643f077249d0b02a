//! Who may register, and when: section restrictions by attribute (open only to some
//! majors, closed to freshmen), and time tickets (a student's own registration
//! appointment, which replaces the opening of their standing's window).

use super::{OfferedSection, RuleViolation, Window};
use crate::attributes::{Attribute, AttributeKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether a restriction lets in or keeps out the students it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestrictionMode {
    /// Only students with one of the values may take the section.
    Include,
    /// Students with one of the values may not.
    Exclude,
}

/// One restriction of a section: include or exclude students by one kind of attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restriction {
    /// The attribute kind it looks at.
    pub attribute: AttributeKind,
    /// Include or exclude.
    pub mode: RestrictionMode,
    /// The values it names (upper case).
    pub values: Vec<String>,
}

impl Restriction {
    /// Whether a student with `attrs` passes.
    pub fn allows(&self, attrs: &[Attribute]) -> bool {
        let named = attrs
            .iter()
            .any(|a| a.kind == self.attribute && self.values.contains(&a.value));
        match self.mode {
            RestrictionMode::Include => named,
            RestrictionMode::Exclude => !named,
        }
    }

    /// `is open only to major CS, MATH` / `is closed to standing FRESHMAN`.
    pub fn reason(&self) -> String {
        let how = match self.mode {
            RestrictionMode::Include => "is open only to",
            RestrictionMode::Exclude => "is closed to",
        };
        format!(
            "{how} {} {}",
            self.attribute.as_str(),
            self.values.join(", ")
        )
    }
}

/// A student's registration appointment for a term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeTicket {
    /// From when the student may register (instead of the window's opening).
    pub opens_at: DateTime<Utc>,
    /// Until when; none: until the standing's window closes (or for good, without one).
    pub closes_at: Option<DateTime<Utc>>,
}

/// Whether registration is open for the student at `now`: by their time ticket when they
/// have one, else by their standing's window.
pub(super) fn check_open(
    ticket: Option<TimeTicket>,
    window: Option<Window>,
    now: DateTime<Utc>,
) -> Result<(), RuleViolation> {
    match (ticket, window) {
        (Some(t), w) => {
            if now < t.opens_at {
                return Err(RuleViolation::NotOpenYet {
                    opens_at: t.opens_at,
                });
            }
            let closes = t.closes_at.or(w.map(|w| w.closes_at));
            if closes.is_some_and(|c| now >= c) {
                return Err(RuleViolation::WindowClosed);
            }
            Ok(())
        }
        (None, Some(w)) if w.opens_at <= now && now < w.closes_at => Ok(()),
        (None, _) => Err(RuleViolation::WindowClosed),
    }
}

/// Whether the restrictions of `section` let a student with `attrs` in.
pub(super) fn check_allowed(
    section: &OfferedSection,
    attrs: &[Attribute],
) -> Result<(), RuleViolation> {
    match section.restrictions.iter().find(|r| !r.allows(attrs)) {
        Some(r) => Err(RuleViolation::RestrictedSection {
            section: section.id,
            reason: r.reason(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn attrs() -> Vec<Attribute> {
        vec![
            Attribute::new(AttributeKind::Major, "CS"),
            Attribute::new(AttributeKind::Standing, "JUNIOR"),
        ]
    }

    #[test]
    fn include_and_exclude() {
        let only_cs = Restriction {
            attribute: AttributeKind::Major,
            mode: RestrictionMode::Include,
            values: vec!["CS".into(), "MATH".into()],
        };
        assert!(only_cs.allows(&attrs()));
        assert!(!only_cs.allows(&[Attribute::new(AttributeKind::Major, "ART")]));
        assert!(!only_cs.allows(&[]), "no major: not in");
        let no_juniors = Restriction {
            attribute: AttributeKind::Standing,
            mode: RestrictionMode::Exclude,
            values: vec!["JUNIOR".into()],
        };
        assert!(!no_juniors.allows(&attrs()));
        assert!(no_juniors.allows(&[]));
        assert_eq!(no_juniors.reason(), "is closed to standing JUNIOR");
    }

    #[test]
    fn a_ticket_replaces_the_windows_opening() {
        let now = Utc::now();
        let window = Some(Window {
            opens_at: now - Duration::hours(1),
            closes_at: now + Duration::hours(1),
        });
        let later = TimeTicket {
            opens_at: now + Duration::minutes(5),
            closes_at: None,
        };
        assert_eq!(
            check_open(Some(later), window, now),
            Err(RuleViolation::NotOpenYet {
                opens_at: later.opens_at
            })
        );
        let early = TimeTicket {
            opens_at: now - Duration::days(1),
            closes_at: None,
        };
        let not_yet = Some(Window {
            opens_at: now + Duration::hours(1),
            closes_at: now + Duration::hours(2),
        });
        assert_eq!(check_open(Some(early), not_yet, now), Ok(()));
        let closed = Some(Window {
            opens_at: now - Duration::hours(2),
            closes_at: now - Duration::hours(1),
        });
        assert_eq!(
            check_open(Some(early), closed, now),
            Err(RuleViolation::WindowClosed)
        );
        assert_eq!(check_open(Some(early), None, now), Ok(()));
        assert_eq!(check_open(None, window, now), Ok(()));
        assert_eq!(
            check_open(None, None, now),
            Err(RuleViolation::WindowClosed)
        );
    }
}
