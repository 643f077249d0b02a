//! Credits and grading basis of a student's places, on the student's home node under the
//! student's lock like every registration decision.
//!
//! An add (an enroll, a swap's add, a linked set, a cart item) chooses its options before
//! the rules are checked, so the credit limit counts what the student takes the course for
//! (nothing when audited): what the request asks, else what the student already takes the
//! course for (a section of the same course on the schedule: a swap of sections or of a
//! lab keeps the choice), else the course's defaults. The options are committed before the
//! section's actor is asked for the seat, so an acknowledged seat always has them; the
//! actors never see them.
//!
//! A change of options of a place held ([`RegistrationService::change_options`]) is checked
//! against the term's `drop_by`, the course and the credit limit again, and is recorded
//! with its `enrollment.options_changed` event in one transaction.

use super::registration::{
    CountedAs, Decision, RegistrationError, RegistrationService, SeatRequest,
};
use crate::cluster::home::HomePass;
pub use crate::resources::AskedOptions;
use crate::resources::{SectionFacts, recorded};
use crate::store::enrollment_options::{self as store, OptionsChange};
use chrono::{DateTime, Utc};
use registrar_actors::store::HomeClaim;
use registrar_actors::student_rules::{
    EnrollmentOptions, RuleViolation, check_change, check_change_deadline,
};
use registrar_actors::{Refusal, RequestId, SectionId};
use std::sync::Arc;
use uuid::Uuid;

/// A change of options, accepted.
#[derive(Clone, Debug)]
pub struct OptionsChanged {
    /// The options now.
    pub options: EnrollmentOptions,
    /// The sections of the course they apply to (a lecture and its lab change together).
    pub sections: Vec<Uuid>,
    /// When they were recorded; `None` when they were already so (nothing recorded).
    pub at: Option<DateTime<Utc>>,
}

impl CountedAs for OptionsChanged {
    fn outcome(&self) -> &'static str {
        "options_changed"
    }
}

impl RegistrationService {
    /// The options `student` takes each of `targets` with, `asked[i]` being what the
    /// request asks for `targets[i]` (missing: nothing; see the module docs); a request the
    /// course does not allow is refused and recorded in the audit trail under `action`.
    /// Call under the student's lock.
    pub(super) async fn choose_options(
        &self,
        student: Uuid,
        targets: &[Arc<SectionFacts>],
        asked: &[AskedOptions],
        request: RequestId,
        action: &'static str,
    ) -> Result<Vec<EnrollmentOptions>, RegistrationError> {
        match self.options_verdict(student, targets, asked).await? {
            Ok(chosen) => Ok(chosen),
            Err((section, v)) => Err(self.refuse(v, student, section, action, request).await),
        }
    }

    /// What [`Self::choose_options`] would choose, recording nothing: the options, or the
    /// section whose course does not allow what was asked and why.
    pub(super) async fn options_verdict(
        &self,
        student: Uuid,
        targets: &[Arc<SectionFacts>],
        asked: &[AskedOptions],
    ) -> Result<Result<Vec<EnrollmentOptions>, (Uuid, RuleViolation)>, RegistrationError> {
        let inputs = self
            .cache
            .rule_inputs(student)
            .await?
            .ok_or(RegistrationError::StudentNotFound)?;
        let held = self.cache.facts_many(&inputs.active_sections).await?;
        let mut chosen = Vec::with_capacity(targets.len());
        for (i, t) in targets.iter().enumerate() {
            let asked = asked.get(i).copied().unwrap_or_default();
            if !asked.is_empty() {
                match t.grading.choose(asked.credits, asked.basis) {
                    Ok(o) => chosen.push(o),
                    Err(v) => return Ok(Err((t.id().0, v))),
                }
                continue;
            }
            // What the student already takes the course for, if it still fits the course.
            let kept = held
                .iter()
                .filter(|h| {
                    h.id() != t.id()
                        && h.term_id == t.term_id
                        && h.offered.course_code == t.offered.course_code
                })
                .map(|h| {
                    recorded(&inputs.options, h.id().0)
                        .unwrap_or_else(|| h.grading.default_options())
                })
                .find(|o| t.grading.check(*o).is_ok());
            chosen.push(kept.unwrap_or_else(|| t.grading.default_options()));
        }
        Ok(Ok(chosen))
    }

    /// Commit the options `student` chose for `sections` (same order), before their seats
    /// are asked for, and note them in the rule cache; a default choice where no row is on
    /// record writes nothing. Call under the student's lock.
    pub(super) async fn save_options(
        &self,
        student: Uuid,
        sections: &[Uuid],
        options: &[EnrollmentOptions],
    ) -> Result<(), RegistrationError> {
        let inputs = self
            .cache
            .rule_inputs(student)
            .await?
            .ok_or(RegistrationError::StudentNotFound)?;
        let mut chosen: Vec<(Uuid, EnrollmentOptions)> = Vec::with_capacity(sections.len());
        for (section, o) in sections.iter().copied().zip(options.iter().copied()) {
            // A place without a row is the course's defaults: a default choice needs no
            // write (the hot path of a flood) unless a row is on record for the section
            // (an earlier choice, from a place since left or an add refused), which it
            // must replace.
            let on_record = inputs.options_on_record.contains(&section);
            if !on_record && self.facts(section).await?.grading.default_options() == o {
                continue;
            }
            chosen.push((section, o));
        }
        store::save(&self.pool, student, &chosen).await?;
        for (section, o) in chosen {
            self.cache.note_options(student, section, o);
        }
        Ok(())
    }

    /// Change the credits or grading basis of the place `r.student` holds (a seat, a
    /// waitlist place, an offer) in `r.section`, and of the other sections of its course
    /// on the schedule (see the module docs).
    pub async fn change_options(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        r: SeatRequest,
        asked: AskedOptions,
    ) -> Result<Decision<OptionsChanged>, RegistrationError> {
        self.decide_in_task(
            home,
            r.student,
            move |this: Arc<Self>, home: HomeClaim| async move {
                let locks = this.clone();
                locks
                    .locks
                    .serialized(r.student, async || {
                        this.finish_swaps(&home, r.student, None).await?;
                        this.finish_decisions(r.student).await?;
                        this.change_options_locked(r, asked).await
                    })
                    .await
            },
        )
        .await
    }

    async fn change_options_locked(
        &self,
        r: SeatRequest,
        asked: AskedOptions,
    ) -> Result<Decision<OptionsChanged>, RegistrationError> {
        const ACTION: &str = "change_options";
        let facts = self.facts(r.section).await?;
        let (profile, _, active) = self.profile(r.student, facts.term_id).await?;
        if !active.contains(&r.section) {
            return Err(Refusal::NotEnrolled.into());
        }
        let refuse = async |v| {
            self.refuse(v, r.student, r.section, ACTION, r.request)
                .await
        };
        // The database's time, as for the add and drop deadlines.
        let now = self.router().node().clock.now();
        if let Err(v) = check_change_deadline(&profile.deadlines, now) {
            return Err(refuse(v).await);
        }
        let inputs = self
            .cache
            .rule_inputs(r.student)
            .await?
            .ok_or(RegistrationError::StudentNotFound)?;
        let current = facts.options_or_default(recorded(&inputs.options, r.section));
        let options = match facts.grading.choose(
            Some(asked.credits.unwrap_or(current.credits)),
            Some(asked.basis.unwrap_or(current.basis)),
        ) {
            Ok(o) => o,
            Err(v) => return Err(refuse(v).await),
        };
        if let Err(v) = check_change(
            &profile.schedule,
            profile.max_credits,
            SectionId(r.section),
            options.counted(),
        ) {
            return Err(refuse(v).await);
        }
        let course = &facts.offered.course_code;
        let sections: Vec<Uuid> = profile
            .schedule
            .iter()
            .filter(|s| &s.course_code == course)
            .map(|s| s.id.0)
            .collect();
        let unchanged = sections.iter().all(|s| {
            recorded(&inputs.options, *s).unwrap_or_else(|| facts.grading.default_options())
                == options
        });
        if unchanged {
            return Ok(Decision {
                value: OptionsChanged {
                    options,
                    sections,
                    at: None,
                },
                by: None,
            });
        }
        let change = OptionsChange {
            student: r.student,
            sections: &sections,
            options,
            request: r.request.0,
        };
        let (at, changed) = store::change(&self.pool, &change).await?;
        for (section, done) in sections.iter().zip(&changed) {
            if *done {
                self.cache.note_options(r.student, *section, options);
            } else {
                // The place went meanwhile (a promotion cannot remove one, an offer's end
                // can): read the student afresh next time.
                self.cache.forget_student(r.student);
            }
        }
        Ok(Decision {
            value: OptionsChanged {
                options,
                sections,
                at: Some(at),
            },
            by: None,
        })
    }
}
