//! Seats offered from an offer-mode waitlist: the student accepts or declines, on their
//! home node under their lock like any enroll or drop. Accepting checks the student's rules
//! again (a hold, a time conflict or the credit limit may have come since they joined the
//! waitlist), as PeopleSoft does at promotion; a student the rules refuse keeps the offer
//! until it is declined or expires, and is told why.

use super::registration::{
    Decision, Dropped, Enrolled, RegistrationError, RegistrationService, SeatRequest,
    unreachable_outcome,
};
use crate::cluster::home::HomePass;
use registrar_actors::store::HomeClaim;
use registrar_actors::student_rules::check_accept;
use registrar_actors::{Command, Outcome, StudentId};
use std::sync::Arc;

impl RegistrationService {
    /// Take the seat offered to the student in `r.section`.
    pub async fn accept_offer(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        r: SeatRequest,
    ) -> Result<Decision<Enrolled>, RegistrationError> {
        self.decide_in_task(
            home,
            r.student,
            move |this: Arc<Self>, home: HomeClaim| async move {
                this.membership_change(r, true, async || {
                    this.finish_swaps(&home, r.student, None).await?;
                    this.finish_decisions(r.student).await?;
                    let target = this.facts(r.section).await?;
                    let (profile, _, _) = this.profile(r.student, target.term_id).await?;
                    // The section as the student takes it: with the options chosen on joining.
                    let offered = (profile.schedule.iter())
                        .find(|s| s.id == target.id())
                        .cloned()
                        .unwrap_or_else(|| target.offered.clone());
                    if let Err(violation) = check_accept(&profile, &offered) {
                        return Err(this
                            .refuse(violation, r.student, r.section, "accept_offer", r.request)
                            .await);
                    }
                    let command = Command::AcceptOffer {
                        student: StudentId(r.student),
                        request: r.request,
                    };
                    let decision = this.decide(r.section, command, Some(&home)).await?;
                    match decision.value {
                        (Outcome::Enrolled, at) => Ok(decision.map(|_| Enrolled::Seat { at })),
                        (other, _) => unreachable_outcome(other),
                    }
                })
                .await
            },
        )
        .await
    }

    /// Turn down the seat offered to the student in `r.section`: they leave the waitlist and
    /// the seat is offered to the next.
    pub async fn decline_offer(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        r: SeatRequest,
    ) -> Result<Decision<Dropped>, RegistrationError> {
        self.decide_in_task(
            home,
            r.student,
            move |this: Arc<Self>, home: HomeClaim| async move {
                this.membership_change(r, false, async || {
                    let command = Command::DeclineOffer {
                        student: StudentId(r.student),
                        request: r.request,
                    };
                    let decision = this.decide(r.section, command, Some(&home)).await?;
                    match decision.value {
                        (Outcome::Dropped { promoted, .. }, _) => Ok(decision.map(|_| Dropped {
                            promoted: promoted.is_some(),
                            withdrawn: false,
                        })),
                        (other, _) => unreachable_outcome(other),
                    }
                })
                .await
            },
        )
        .await
    }
}
