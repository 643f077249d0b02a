//! A student's schedule: the sections they hold a seat in or wait for, with the credits and
//! grading basis each is taken for, and the W history: the seats they withdrew from (left
//! after a term's drop deadline). Audited courses earn no credits: their credits are
//! totalled apart.

use super::registration::{RegistrationError, RegistrationService};
use crate::store;
use crate::store::enrollment_options::OptionsRow;
use chrono::{DateTime, Utc};
use registrar_actors::student_rules::GradingBasis;
use uuid::Uuid;

/// One line of a schedule.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ScheduleEntry {
    /// Section.
    pub section_id: Uuid,
    /// Course code.
    pub course_code: String,
    /// Section code.
    pub section_code: String,
    /// Credits the student takes the course for (a lecture and its lab are one course's
    /// credits): chosen within the course's range, else the course's.
    pub credits: u32,
    /// How it is graded: `letter`, `pass_fail` or `audit`.
    #[schema(schema_with = crate::resources::schema::grading_basis)]
    pub grading_basis: String,
    /// The section's component (`lecture`, `lab`, ...).
    pub component: String,
    /// Weekly meetings (so a calendar needs no read per section).
    pub meetings: Vec<crate::resources::MeetingDto>,
    /// Waitlist position (waitlisted entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// When the seat was taken (enrolled and withdrawn entries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrolled_at: Option<DateTime<Utc>>,
    /// Until when the seat offered waits (offered entries only): accept or decline it
    /// before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_expires_at: Option<DateTime<Utc>>,
    /// When the seat was withdrawn from (withdrawn entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// Waitlisted entries the student is skipped in at promotion: the code of the rule they
    /// no longer pass (e.g. `student_on_hold`); they keep their place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_for: Option<String>,
}

/// A student's schedule.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Schedule {
    /// Sections with a seat.
    pub enrolled: Vec<ScheduleEntry>,
    /// Sections waited for.
    pub waitlisted: Vec<ScheduleEntry>,
    /// Seats held for a decision over several sections under way: not enrolled yet
    /// (they become enrollments, or go back, in a moment).
    pub held: Vec<ScheduleEntry>,
    /// Seats an offer-mode waitlist offers the student: accept or decline each before its
    /// `offer_expires_at`.
    pub offered: Vec<ScheduleEntry>,
    /// Seats withdrawn from (left after the term's drop deadline), oldest first: each keeps
    /// a W on the record and earns no credits.
    pub withdrawn: Vec<ScheduleEntry>,
    /// Credits of the enrolled sections' courses (each course once), audited ones left
    /// out.
    pub credits: u32,
    /// Credits of the enrolled sections' audited courses (each course once): attended,
    /// earning nothing, counting toward no limit.
    pub audit_credits: u32,
}

impl RegistrationService {
    /// The student's schedule.
    pub async fn schedule(&self, student: Uuid) -> Result<Schedule, RegistrationError> {
        let rows = store::students::schedule(&self.pool, student).await?;
        let withdrawals = store::students::withdrawals(&self.pool, student).await?;
        let ids: Vec<Uuid> = (rows.iter().map(|r| r.section_id))
            .chain(withdrawals.iter().map(|w| w.section_id))
            .collect();
        let facts = self.cache().facts_many(&ids).await?;
        // Every enrollment references an existing section (foreign key).
        let entry_of = |section: Uuid, recorded: &OptionsRow| {
            let Some(f) = facts.iter().find(|f| f.id().0 == section) else {
                return Err(RegistrationError::Bug(format!(
                    "section {section} of a place has no facts"
                )));
            };
            let options = f.options_or_default(recorded.options());
            Ok(ScheduleEntry {
                section_id: section,
                course_code: f.offered.course_code.clone(),
                section_code: f.section_code.clone(),
                credits: options.credits,
                grading_basis: options.basis.as_str().to_string(),
                component: f.offered.component.as_str().to_string(),
                meetings: f
                    .offered
                    .meetings
                    .iter()
                    .map(crate::resources::MeetingDto::from)
                    .collect(),
                position: None,
                enrolled_at: None,
                offer_expires_at: None,
                withdrawn_at: None,
                skipped_for: None,
            })
        };
        let mut out = Schedule {
            enrolled: vec![],
            waitlisted: vec![],
            held: vec![],
            offered: vec![],
            withdrawn: vec![],
            credits: 0,
            audit_credits: 0,
        };
        for w in &withdrawals {
            out.withdrawn.push(ScheduleEntry {
                enrolled_at: w.enrolled_at,
                withdrawn_at: Some(w.withdrawn_at),
                ..entry_of(w.section_id, &w.options)?
            });
        }
        let mut counted: Vec<String> = Vec::new();
        for place in rows {
            let entry = ScheduleEntry {
                position: place.position.map(|p| p as u32),
                enrolled_at: place.enrolled_at,
                offer_expires_at: place.offer_expires_at,
                skipped_for: place.blocked_reason,
                ..entry_of(place.section_id, &place.options)?
            };
            match place.status.as_str() {
                "enrolled" => {
                    if !counted.contains(&entry.course_code) {
                        counted.push(entry.course_code.clone());
                        if entry.grading_basis == GradingBasis::Audit.as_str() {
                            out.audit_credits += entry.credits;
                        } else {
                            out.credits += entry.credits;
                        }
                    }
                    out.enrolled.push(entry);
                }
                "held" => out.held.push(entry),
                "offered" => out.offered.push(entry),
                _ => out.waitlisted.push(entry),
            }
        }
        Ok(out)
    }
}
