//! A swap: take a seat in one section and then leave another, ending in exactly one of
//! the two whatever fails in between, under the student's lock like every registration
//! request (see `registration`).
//!
//! The swap is written down (`store::swaps`) before its add is sent, and only goes
//! forwards from there: once the add has a seat, the drop is owed, and it is retried (now,
//! by the student's next request, or by the [`SwapFinisher`] on the student's home node)
//! until it is done. Nothing is ever undone: an undo would be a third decision that can
//! itself fail or be lost, and a retried swap could then replay a seat that was given
//! back. Each part is sent under its own request id, derived from the swap's, which the
//! section actors recognise across reloads and failovers, so a part re-sent after its
//! commit is answered as the first time, never decided twice.
//!
//! While a swap is under way the student's other requests first finish it: a student
//! whose add is in doubt could otherwise pass the rules with a schedule that is about to
//! change (two sections of one course, the credit limit).

use super::idempotency::part_of;
use super::registration::{
    CountedAs, Decision, Dropped, Enrolled, RegistrationError, RegistrationService, SeatRequest,
};
use crate::cluster::home::HomePass;
use crate::faults;
use crate::shutdown::Shutdown;
use crate::store::audit::AttemptOutcome;
use crate::store::decisions;
use crate::store::swaps::{self, SwapIntent};
use registrar_actors::store::HomeClaim;
use registrar_actors::{Refusal, RequestId, SeatDrop};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A swap: leave `drop` only if a seat in `add` is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Swap {
    /// The student.
    pub student: Uuid,
    /// The section to leave.
    pub drop: Uuid,
    /// The section to join (a seat, not a waitlist place).
    pub add: Uuid,
    /// The request (its parts get ids derived from it).
    pub request: RequestId,
}

impl From<SwapIntent> for Swap {
    fn from(i: SwapIntent) -> Self {
        Self {
            student: i.student_id,
            drop: i.drop_section,
            add: i.add_section,
            request: RequestId(i.request_id),
        }
    }
}

impl From<Swap> for SwapIntent {
    fn from(s: Swap) -> Self {
        Self {
            request_id: s.request.0,
            student_id: s.student,
            drop_section: s.drop,
            add_section: s.add,
        }
    }
}

/// How a swap that was carried to its end ended.
pub(super) enum SwapEnd {
    /// The seat in `add` is taken and `drop` is left (the drop's decider named).
    Swapped(Decision<(Enrolled, Dropped)>),
    /// The add was refused: the student keeps `drop`.
    Refused(RegistrationError),
}

/// Tries of the drop within one request before the swap is left to be finished later.
const DROP_TRIES: u64 = 3;

impl RegistrationService {
    /// Take a seat in `add` and then leave `drop` (see the module docs). An answer other
    /// than success or a refusal of the add leaves the swap under way, to be finished:
    /// [`RegistrationError::SwapUnderWay`].
    pub async fn swap(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        swap: Swap,
    ) -> Result<Decision<(Enrolled, Dropped)>, RegistrationError> {
        // Two sections change, or a swap is left under way: the cache is read afresh.
        self.changing_sections(home, swap.student, async move |this, home| {
            this.swap_locked(&home, swap).await
        })
        .await
    }

    async fn swap_locked(
        &self,
        home: &HomeClaim,
        swap: Swap,
    ) -> Result<Decision<(Enrolled, Dropped)>, RegistrationError> {
        // A retry of a swap under way finishes that swap; other swaps under way are
        // finished first (see the module docs).
        if let Some(end) = self
            .finish_swaps(home, swap.student, Some(swap.request))
            .await?
        {
            return end_of(end);
        }
        let Swap {
            student,
            drop,
            add,
            request,
        } = swap;
        let facts = self.facts(add).await?;
        self.facts(drop).await?;
        // A swap between sections of one course keeps the credits and basis chosen.
        let options = self
            .choose_options(student, std::slice::from_ref(&facts), &[], request, "swap")
            .await?;
        let target = facts.taken_with(options[0]);
        let active = self
            .check_rules(student, &target, Some(drop), request)
            .await?;
        if active.contains(&drop) && !active.contains(&add) {
            self.save_options(student, &[add], &options).await?;
        }
        if !active.contains(&drop) {
            // A retry of this very swap that waited for the lock while its first try
            // finished: answer what was done, not `not_enrolled`.
            if let Some(done) = self.done_before(swap).await? {
                return Ok(Decision {
                    value: done,
                    by: None,
                });
            }
            return Err(Refusal::NotEnrolled.into());
        }
        swaps::record(&self.pool, &swap.into()).await?;
        end_of(self.carry_swap(home, swap).await?)
    }

    /// Finish `student`'s swaps under way, if the rule inputs say there are any (call
    /// under the student's lock). Returns how the one with request id `this` ended, if it
    /// was among them. A swap that still cannot be finished stops here:
    /// [`RegistrationError::SwapUnderWay`], and nothing else is decided for the student.
    pub(super) async fn finish_swaps(
        &self,
        home: &HomeClaim,
        student: Uuid,
        this: Option<RequestId>,
    ) -> Result<Option<SwapEnd>, RegistrationError> {
        let pending = match self.cache.rule_inputs(student).await? {
            Some(inputs) => inputs.swap_pending,
            None => return Ok(None),
        };
        if !pending {
            return Ok(None);
        }
        let mut ended = None;
        for intent in swaps::of_student(&self.pool, student).await? {
            let swap = Swap::from(intent);
            let end = self.carry_swap(home, swap).await;
            // Either way the student's sections may have changed.
            self.cache.forget_student(student);
            let end = end?;
            if Some(swap.request) == this {
                ended = Some(end);
            }
        }
        Ok(ended)
    }

    /// The answer of `swap` if both its parts are on record as done.
    async fn done_before(
        &self,
        swap: Swap,
    ) -> Result<Option<(Enrolled, Dropped)>, RegistrationError> {
        let add = part_of(swap.request, "add").0;
        let drop = part_of(swap.request, "drop").0;
        let parts = swaps::parts_on_record(&self.pool, swap.student, add, drop).await?;
        Ok(match (parts.add, parts.drop) {
            (Some((AttemptOutcome::Enrolled, at)), Some((AttemptOutcome::Dropped, promoted))) => {
                Some((
                    Enrolled::Seat { at },
                    Dropped {
                        promoted: promoted.unwrap_or(false),
                        withdrawn: false,
                    },
                ))
            }
            _ => None,
        })
    }

    /// Carry a recorded swap forwards to its end: the add (sent again under its id, so an
    /// add already decided is answered as it was), then the drop, then the record goes.
    async fn carry_swap(&self, home: &HomeClaim, swap: Swap) -> Result<SwapEnd, RegistrationError> {
        let part = |section, name| SeatRequest {
            student: swap.student,
            section,
            request: part_of(swap.request, name),
        };
        let enrolled = match self
            .enroll_in_actor(home, part(swap.add, "add"), true)
            .await
        {
            Ok(enrolled) => enrolled.value,
            Err(refused @ (RegistrationError::Refused(_) | RegistrationError::SectionNotFound)) => {
                swaps::finish(&self.pool, swap.request.0).await?;
                return Ok(SwapEnd::Refused(refused));
            }
            Err(e) => return Err(under_way(swap, "add", e)),
        };
        if faults::hit("swap-between-halves", &swap.student) {
            return Err(under_way(
                swap,
                "drop",
                RegistrationError::Bug("failpoint swap-between-halves".into()),
            ));
        }
        let mut last = None;
        for attempt in 0..DROP_TRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            // A swap is an add (refused past the add deadline, which comes no later than
            // the drop deadline): its drop half leaves the section plainly.
            let drop = part(swap.drop, "drop");
            match self.drop_in_actor(home, drop, SeatDrop::Plain).await {
                Ok(dropped) => {
                    swaps::finish(&self.pool, swap.request.0).await?;
                    return Ok(SwapEnd::Swapped(dropped.map(|d| (enrolled, d))));
                }
                // Left already (an admin's drop meanwhile): the swap ends in `add` alone.
                Err(RegistrationError::Refused(Refusal::NotEnrolled)) => {
                    swaps::finish(&self.pool, swap.request.0).await?;
                    return Ok(SwapEnd::Swapped(Decision {
                        value: (
                            enrolled,
                            Dropped {
                                promoted: false,
                                withdrawn: false,
                            },
                        ),
                        by: None,
                    }));
                }
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| RegistrationError::Bug("no drop tried".into()));
        Err(under_way(swap, "drop", e))
    }
}

/// The answer of a swap that ended.
fn end_of(end: SwapEnd) -> Result<Decision<(Enrolled, Dropped)>, RegistrationError> {
    match end {
        SwapEnd::Swapped(decision) => Ok(decision),
        SwapEnd::Refused(e) => Err(e),
    }
}

/// A swap left under way because its `part` got no decision (`cause`).
fn under_way(swap: Swap, part: &'static str, cause: RegistrationError) -> RegistrationError {
    tracing::warn!(student_id = %swap.student, add = %swap.add, drop = %swap.drop, part, error = %cause,
        "swap left under way; it will be finished");
    RegistrationError::SwapUnderWay
}

/// Finishes swaps left under way whose student has this node as home: their requests
/// ended (the drop's owner could not commit, the home node died between the two halves)
/// and the student has not come back.
pub struct SwapFinisher {
    service: Arc<RegistrationService>,
    /// A swap is left to its own request (and its retries) this long first.
    grace: Duration,
}

impl SwapFinisher {
    /// A finisher over `service`, leaving each swap alone for `grace` first.
    pub fn new(service: Arc<RegistrationService>, grace: Duration) -> Arc<Self> {
        Arc::new(Self { service, grace })
    }

    /// Every `grace / 2`, finish the swaps older than `grace`, until `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let every = (self.grace / 2).max(Duration::from_millis(100));
        loop {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "finishing swaps under way failed; retrying later");
            }
            if shutdown.sleep(every).await {
                return;
            }
        }
    }

    /// One pass over the students with a swap under way, or a decision over several
    /// sections unfinished, for longer than the grace; then over the seats held in this
    /// node's sections for decisions that ended (see `service::bundle`), and the reserved
    /// pools and offers of this node's sections whose time has come (see `service::policy`).
    pub async fn round(&self) -> Result<(), RegistrationError> {
        let grace = self.grace.as_millis() as i64;
        let mut students = swaps::stale_students(&self.service.pool, grace, 100).await?;
        for student in decisions::stale_students(&self.service.pool, grace, 100).await? {
            if !students.contains(&student) {
                students.push(student);
            }
        }
        for student in students {
            match self.service.finish_for(student).await {
                // Another node is the student's home: it finishes them.
                Ok(()) | Err(RegistrationError::NotHome(_)) => {}
                Err(e) => {
                    tracing::debug!(student_id = %student, error = %e, "swap not finished yet");
                }
            }
        }
        // Twice the grace: a hold's own home gets the first chance to carry it out.
        self.service.sweep_holds(grace * 2).await?;
        self.service.settle_due_times().await?;
        self.service.recheck_stale_waitlists(50).await?;
        Ok(())
    }
}

impl RegistrationService {
    /// Finish `student`'s swaps under way on this node as their home, under their lock.
    pub async fn finish_for(self: &Arc<Self>, student: Uuid) -> Result<(), RegistrationError> {
        let home = Arc::new(self.router().enter_home(student).await?);
        self.decide_in_task(
            home,
            student,
            move |this: Arc<Self>, home: HomeClaim| async move {
                this.locks
                    .serialized(student, async || {
                        // Read the database: the swap may have been left by another node.
                        this.cache.forget_student(student);
                        this.finish_swaps(&home, student, None).await?;
                        this.finish_decisions(student).await.map(|()| Finished)
                    })
                    .await
            },
        )
        .await
        .map(|Finished| ())
    }
}

/// Swaps finished (counted as `swaps_finished`).
struct Finished;

impl CountedAs for Finished {
    fn outcome(&self) -> &'static str {
        "swaps_finished"
    }
}
