//! Decisions over several sections: a linked set (lecture + lab + recitation) taken whole
//! or not at all, a swap inside a set (another lab, the same lecture), a set dropped whole.
//! Try-Confirm/Cancel with durable held seats, the decision made in one row:
//!
//! 1. **Record** (`store::decisions::begin`): a `pending` row naming the sections to take
//!    and to leave, with a deadline by the database clock. Written before any seat is
//!    held, so every hold has a row that decides its fate.
//! 2. **Try**: every section's actor, on whichever node owns it, is sent a `Hold`, one
//!    after another in the global order of section ids (see `hold_all` for why), stopping
//!    at the first refusal. A hold is decided and committed in the section's next batch like any
//!    enroll, under its epoch and the home's claim: it counts against the capacity, but
//!    it is not an enrollment, and nobody is told it is one.
//! 3. **Decide**: all held → `confirm` (a conditional UPDATE, only while pending and
//!    within the deadline); any refusal or failure → `cancel` (only while pending). The
//!    row changes state exactly once, whoever tries: the home, a retry, the finisher on a
//!    new home after a failover, a home that lost the student. Each reads the state back
//!    and follows it.
//! 4. **Carry out**, forwards only: confirmed → `Confirm` each hold (it becomes the
//!    enrollment, with the decision's id in its events) and `Drop` each section left;
//!    cancelled → `Release` each hold (a release of a hold that never arrived is
//!    accepted, and the hold is refused if it comes late). Confirms and releases carry no
//!    home claim: they follow the row, not the student rules. Then the row is `finished`.
//!
//! The student's answer comes after step 4: a seat is reported enrolled only once its
//! confirm committed. A request that cannot carry a decision out (a section's owner
//! could not commit) answers `decision_pending`; the decision stands and is carried out
//! by the student's next request, a retry, or the finisher (`swap::SwapFinisher`, which
//! also finishes decisions). A crash at any step ends all-or-nothing: before the row,
//! nothing happened; with the row pending, the deadline passes and the row is cancelled,
//! its holds released; with it decided, it is carried out. The bound is the deadline
//! plus the finisher's grace (both settings). A hold orphaned in a section (it arrived
//! after its release, or its home never came back) is released or confirmed by the
//! section owner's sweep ([`RegistrationService::sweep_holds`]).

use super::enrollment_options::AskedOptions;
use super::idempotency::part_of;
use super::registration::{CountedAs, Decision, RegistrationError, RegistrationService};
use crate::cluster::home::HomePass;
use crate::faults;
use crate::shutdown::Shutdown;
use crate::store::decisions::{self, DecisionRow, DecisionState};
use futures_util::future::join_all;
use registrar_actors::store::HomeClaim;
use registrar_actors::student_rules::linked_set_of;
use registrar_actors::{
    CallError, Command, DecisionId, Outcome, Refusal, RequestId, SeatDrop, SectionId, StudentId,
};
use std::sync::Arc;
use uuid::Uuid;

/// A decision over several sections asked for by a student.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetRequest {
    /// The student.
    pub student: Uuid,
    /// Sections to take a seat in, all or none.
    pub take: Vec<Uuid>,
    /// Sections to leave if (and only if) every seat is taken.
    pub leave: Vec<Uuid>,
    /// The request (a retry of it gets the same decision).
    pub request: RequestId,
    /// The credits and grading basis asked for each section of `take` (same order; one
    /// missing, or the list empty: chosen as `service::enrollment_options` says).
    pub asked: Vec<AskedOptions>,
}

/// A decision carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetTaken {
    /// The decision's id (also in the events of its changes).
    pub decision: Uuid,
    /// Sections now enrolled in.
    pub taken: Vec<Uuid>,
    /// Sections left.
    pub left: Vec<Uuid>,
    /// The sections left were withdrawn from (a set dropped after the drop deadline).
    pub withdrawn: bool,
}

impl CountedAs for SetTaken {
    fn outcome(&self) -> &'static str {
        match (self.taken.is_empty(), self.withdrawn) {
            (true, true) => "withdrawn",
            (true, false) => "dropped",
            (false, _) => "enrolled_set",
        }
    }
}

/// The request id of `decision`'s hold in `section` (its confirm and release name it).
fn hold_id(decision: Uuid, section: Uuid) -> RequestId {
    part_of(RequestId(decision), &format!("hold:{section}"))
}

/// The request id of `row`'s hold in `section`: derived from the decision, or, for a
/// seat taken with "drop if enrolled" (one section, a decision derived from its request),
/// the request that asked for it.
fn hold_of(row: &DecisionRow, section: Uuid) -> RequestId {
    let request = RequestId(row.request_id);
    if DecisionId::of_replace(request).0 == row.id {
        request
    } else {
        hold_id(row.id, section)
    }
}

/// The request id of another part of `decision` in `section` (`confirm`, `release`,
/// `leave`).
fn part_id(decision: Uuid, part: &str, section: Uuid) -> RequestId {
    part_of(RequestId(decision), &format!("{part}:{section}"))
}

impl RegistrationService {
    /// Take every section of `r.take` and then leave `r.leave`, all or nothing (see the
    /// module docs), on this node as the student's home.
    pub async fn take_set(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        r: SetRequest,
    ) -> Result<Decision<SetTaken>, RegistrationError> {
        let student = r.student;
        self.changing_sections(home, student, async move |this, home| {
            this.take_set_locked(&home, r).await
        })
        .await
    }

    /// Drop the student's whole linked set that `section` belongs to (a drop of one
    /// member of a lecture + lab set drops the set), as one decision.
    pub async fn drop_set(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        student: Uuid,
        section: Uuid,
        request: RequestId,
    ) -> Result<Decision<SetTaken>, RegistrationError> {
        self.changing_sections(home, student, async move |this, home| {
            let members = this.set_members(student, section).await?;
            let r = SetRequest {
                student,
                take: Vec::new(),
                leave: members,
                request,
                asked: Vec::new(),
            };
            this.take_set_locked(&home, r).await
        })
        .await
    }

    /// The sections of `student`'s linked set that `section` belongs to (just `section`
    /// for a plain course); `not_enrolled` if the student holds no place in it, unless a
    /// decision of this request already dropped it (a retry).
    async fn set_members(
        &self,
        student: Uuid,
        section: Uuid,
    ) -> Result<Vec<Uuid>, RegistrationError> {
        let facts = self.facts(section).await?;
        let (profile, _, active) = self.profile(student, facts.term_id).await?;
        if !active.contains(&section) {
            return Ok(vec![section]);
        }
        Ok(linked_set_of(&profile.schedule, SectionId(section))
            .into_iter()
            .map(|s| s.0)
            .collect())
    }

    async fn take_set_locked(
        &self,
        home: &HomeClaim,
        r: SetRequest,
    ) -> Result<Decision<SetTaken>, RegistrationError> {
        // A retry of a decision on record gets its end, never a second decision, unless
        // it ended for want of an answer: then the retry is decided afresh.
        if let Some(row) = decisions::latest_for(&self.pool, r.student, r.request.0).await? {
            let transient = row.state == DecisionState::Cancelled
                && row.finished_at.is_some()
                && decisions::transient(row.reason.as_deref());
            if !transient {
                return self.carry_out(row).await.map(|taken| Decision {
                    value: taken,
                    by: None,
                });
            }
        }
        self.finish_swaps(home, r.student, None).await?;
        self.finish_decisions(r.student).await?;
        let mut targets = Vec::with_capacity(r.take.len());
        for section in &r.take {
            targets.push(self.facts(*section).await?);
        }
        for section in &r.leave {
            self.facts(*section).await?;
        }
        let active = self
            .check_set_rules(r.student, &targets, &r.leave, r.request, &r.asked)
            .await?;
        if let Some(missing) = r.leave.iter().find(|s| !active.contains(s)) {
            return Err(RegistrationError::PartRefused {
                section: *missing,
                refusal: Refusal::NotEnrolled,
            });
        }
        // The options the rules just counted, committed before any seat is held.
        let chosen = self
            .choose_options(r.student, &targets, &r.asked, r.request, "enroll_set")
            .await?;
        let (new, options): (Vec<Uuid>, Vec<_>) = (r.take.iter().copied().zip(chosen))
            .filter(|(s, _)| !active.contains(s))
            .unzip();
        self.save_options(r.student, &new, &options).await?;
        // A set dropped whole is judged by the term's deadlines here, once: the row carries
        // a withdrawal to whoever carries it out. A set that takes seats is an add (past the
        // add deadline it was refused above), and leaves what it replaces plainly.
        let withdraw = r.take.is_empty()
            && self.check_set_drop(r.student, &r.leave, r.request).await? == SeatDrop::Withdraw;
        let deadline = self.decision_deadline().as_millis() as u64;
        let decision = Uuid::new_v4();
        let row = decisions::begin(
            &self.pool,
            decision,
            r.request.0,
            r.student,
            &r.take,
            &r.leave,
            deadline,
            withdraw,
        )
        .await?;
        let held = self.hold_all(home, &row).await;
        // Fault suite: every hold answered, nothing decided yet (a participant or the
        // home is killed here).
        faults::hold("bundle-holding", &r.student).await;
        if faults::hit("bundle-after-holds", &r.student) {
            return Err(RegistrationError::DecisionUnderWay);
        }
        let row = match &held {
            Ok(_) => decisions::confirm(&self.pool, decision).await?,
            Err(why) => {
                let (reason, by) = match why {
                    NotHeld::Refused { section, refusal } => (refusal.code(), Some(*section)),
                    NotHeld::Failed(e) => {
                        tracing::warn!(decision_id = %decision, error = %e,
                            "a hold got no answer; cancelling the decision");
                        ("unavailable", None)
                    }
                };
                decisions::cancel(&self.pool, decision, reason, by).await?
            }
        };
        // Fault suite: decided, nothing carried out yet.
        faults::hold("bundle-decided", &r.student).await;
        if faults::hit("bundle-after-decision", &r.student) {
            return Err(RegistrationError::DecisionUnderWay);
        }
        // Confirmed: every seat is enrolled; cancelled (refused, no answer, or past its
        // deadline): every hold goes back and the cancellation is the answer.
        let taken = self.carry_out(row).await?;
        Ok(Decision {
            value: taken,
            by: held.ok().flatten(),
        })
    }

    /// Send the holds of `row` one after another, in the order of the sections' ids, and
    /// stop at the first that is not held; the node that decided the last one, or why not
    /// all were held.
    ///
    /// In order, not all at once: when many students want the same sets, holds sent at
    /// once would let each section seat a different first few, so most sets would hold
    /// some seats and fail on others, refusing students while seats were about to go
    /// back. In one global order the first section a set needs decides who goes on, and
    /// the seats held further on belong to sets that got every earlier one. A set costs
    /// one commit per section instead of one in all, and never holds a seat it will not
    /// need because an earlier section refused it.
    async fn hold_all(
        &self,
        home: &HomeClaim,
        row: &DecisionRow,
    ) -> Result<Option<Arc<str>>, NotHeld> {
        let student = StudentId(row.student_id);
        let mut sections = row.take.clone();
        sections.sort_unstable();
        let mut by = None;
        let attrs = self
            .attributes(row.student_id)
            .await
            .map_err(NotHeld::Failed)?;
        for section in sections {
            let (permits, _) = self
                .section_permits(row.student_id, section)
                .await
                .map_err(NotHeld::Failed)?;
            let with_permits = !permits.is_empty();
            let command = Command::Hold {
                student,
                request: hold_id(row.id, section),
                decision: DecisionId(row.id),
                attrs: attrs.clone(),
                permits,
            };
            let answer = self
                .router()
                .call(SectionId(section), command, Some(home))
                .await;
            if with_permits {
                // Their uses (or, once a release gives them back, their return) are read
                // again.
                self.cache.forget_student(row.student_id);
            }
            match answer {
                Ok(routed) => match routed.reply.outcome {
                    Ok(Outcome::Held) => by = Some(routed.by),
                    Ok(other) => {
                        return Err(NotHeld::Failed(RegistrationError::Bug(format!(
                            "a hold was answered {other:?}"
                        ))));
                    }
                    Err(refusal) => return Err(NotHeld::Refused { section, refusal }),
                },
                Err(e) => return Err(NotHeld::Failed(e.into())),
            }
        }
        Ok(by)
    }

    /// Carry a decision out to its end (see the module docs): a pending one is cancelled
    /// first (its own request ended without deciding it). Its end, or why it stays
    /// unfinished: [`RegistrationError::DecisionUnderWay`].
    pub(super) async fn carry_out(&self, row: DecisionRow) -> Result<SetTaken, RegistrationError> {
        let row = match row.state {
            DecisionState::Pending => {
                decisions::cancel(&self.pool, row.id, "abandoned", None).await?
            }
            _ => row,
        };
        let student = StudentId(row.student_id);
        let decision = DecisionId(row.id);
        let confirmed = row.state == DecisionState::Confirmed;
        let mut parts: Vec<(Uuid, Command)> = row
            .take
            .iter()
            .map(|&section| {
                let hold = hold_of(&row, section);
                let command = if confirmed {
                    Command::Confirm {
                        student,
                        request: part_id(row.id, "confirm", section),
                        hold,
                        decision,
                    }
                } else {
                    Command::Release {
                        student,
                        request: part_id(row.id, "release", section),
                        hold,
                        decision,
                    }
                };
                (section, command)
            })
            .collect();
        if confirmed {
            parts.extend(row.leave.iter().map(|&section| {
                let seat = if row.withdraw {
                    SeatDrop::Withdraw
                } else {
                    SeatDrop::Plain
                };
                let command = Command::Drop {
                    student,
                    request: part_id(row.id, "leave", section),
                    seat,
                };
                (section, command)
            }));
        }
        let calls = parts.into_iter().map(|(section, command)| async move {
            let answer = self.router().call(SectionId(section), command, None).await;
            (section, answer)
        });
        let mut unfinished = false;
        for (section, answer) in join_all(calls).await {
            let done = match answer {
                Ok(routed) => match routed.reply.outcome {
                    Ok(_) => true,
                    // Left already (an admin's drop meanwhile): nothing more to do there.
                    Err(Refusal::NotEnrolled) => true,
                    Err(refusal) => {
                        // The row and the section disagree: a bug, never papered over.
                        tracing::error!(decision_id = %row.id, section_id = %section, code = refusal.code(),
                            "a part of a decision was refused");
                        false
                    }
                },
                Err(CallError::NotFound) => true,
                Err(e) => {
                    tracing::warn!(decision_id = %row.id, section_id = %section, error = %e,
                        "a part of a decision got no answer; it will be carried out later");
                    false
                }
            };
            unfinished |= !done;
        }
        if unfinished {
            return Err(RegistrationError::DecisionUnderWay);
        }
        decisions::finish(&self.pool, row.id).await?;
        if confirmed {
            Ok(SetTaken {
                decision: row.id,
                taken: row.take,
                left: row.leave,
                withdrawn: row.withdraw,
            })
        } else {
            Err(RegistrationError::SetCancelled {
                code: row.reason.unwrap_or_else(|| "unavailable".into()),
                section: row.refused_by,
            })
        }
    }

    /// Carry out `student`'s unfinished decisions (call under the student's lock).
    /// A decision that cannot be finished yet stops here: nothing else is decided for the
    /// student meanwhile ([`RegistrationError::DecisionUnderWay`]).
    pub(super) async fn finish_decisions(&self, student: Uuid) -> Result<(), RegistrationError> {
        let pending = match self.cache.rule_inputs(student).await? {
            Some(inputs) => inputs.decision_pending,
            None => return Ok(()),
        };
        if !pending {
            return Ok(());
        }
        for row in decisions::unfinished_of(&self.pool, student).await? {
            let ended = self.carry_out(row).await;
            self.cache.forget_student(student);
            match ended {
                Ok(_) | Err(RegistrationError::SetCancelled { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Release or confirm the seats held in sections this node owns for decisions that
    /// ended (or whose deadline passed) longer than `grace_ms` ago: holds whose home did
    /// not carry them out, or that arrived after their release. Returns how many it
    /// settled.
    pub async fn sweep_holds(&self, grace_ms: i64) -> Result<usize, RegistrationError> {
        let node = self.router().node().id.clone();
        let stale = decisions::stale_holds(&self.pool, &node, grace_ms, 200).await?;
        let mut settled = 0;
        for hold in stale {
            let row = match hold.state {
                DecisionState::Pending => {
                    decisions::cancel(&self.pool, hold.decision_id, "expired", None).await?
                }
                _ => match decisions::get(&self.pool, hold.decision_id).await? {
                    Some(row) => row,
                    None => continue,
                },
            };
            let (student, decision) = (StudentId(hold.student_id), DecisionId(row.id));
            let section = hold.section_id;
            let command = match row.state {
                DecisionState::Confirmed => Command::Confirm {
                    student,
                    request: part_id(row.id, "confirm", section),
                    hold: RequestId(hold.request_id),
                    decision,
                },
                _ => Command::Release {
                    student,
                    request: part_id(row.id, "release", section),
                    hold: RequestId(hold.request_id),
                    decision,
                },
            };
            match self.router().call(SectionId(section), command, None).await {
                Ok(routed) if routed.reply.outcome.is_ok() => {
                    settled += 1;
                    self.cache.forget_student(hold.student_id);
                }
                Ok(routed) => {
                    tracing::error!(decision_id = %row.id, section_id = %section, outcome = ?routed.reply.outcome,
                        "a stale hold could not be settled");
                }
                Err(e) => {
                    tracing::debug!(decision_id = %row.id, section_id = %section, error = %e, "stale hold not settled yet");
                }
            }
        }
        Ok(settled)
    }
}

/// Why not every seat of a decision was held.
enum NotHeld {
    /// A section refused its hold (full, already enrolled, ...).
    Refused {
        /// The section.
        section: Uuid,
        /// Its refusal.
        refusal: Refusal,
    },
    /// A section gave no answer (its owner is down, overloaded, or the hold is in doubt).
    Failed(RegistrationError),
}

/// How a swap that may wait ended: swapped now, or waiting with "drop if enrolled".
#[derive(Clone, Debug)]
pub enum SwapOrWait {
    /// The seat was taken and the other section left, in one decision.
    Swapped(SetTaken),
    /// The section is full: the student waits at `position`, and leaves the other section
    /// in the same decision as the promotion.
    Waiting {
        /// 1-based.
        position: u32,
    },
}

impl CountedAs for SwapOrWait {
    fn outcome(&self) -> &'static str {
        match self {
            SwapOrWait::Swapped(_) => "swapped",
            SwapOrWait::Waiting { .. } => "waitlisted",
        }
    }
}

impl RegistrationService {
    /// Take a seat in `add` and leave `drop` in one decision; if `add` is full, wait for a
    /// seat there and leave `drop` when it comes (PeopleSoft's "drop if enrolled"): the
    /// promotion holds the seat and records the decision, confirmed, in its own commit,
    /// and the drop is carried out after it, forwards only.
    pub async fn swap_or_wait(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        student: Uuid,
        drop: Uuid,
        add: Uuid,
        request: RequestId,
    ) -> Result<Decision<SwapOrWait>, RegistrationError> {
        self.changing_sections(home, student, async move |this, home| {
            this.swap_or_wait_locked(&home, student, drop, add, request)
                .await
        })
        .await
    }

    async fn swap_or_wait_locked(
        &self,
        home: &HomeClaim,
        student: Uuid,
        drop: Uuid,
        add: Uuid,
        request: RequestId,
    ) -> Result<Decision<SwapOrWait>, RegistrationError> {
        let decision = DecisionId::of_replace(request).0;
        // A retry of a swap whose seat was taken gets the decision's end.
        if let Some(row) = decisions::get(&self.pool, decision).await? {
            let taken = self.carry_out(row).await?;
            return Ok(Decision {
                value: SwapOrWait::Swapped(taken),
                by: None,
            });
        }
        self.finish_swaps(home, student, None).await?;
        self.finish_decisions(student).await?;
        let facts = self.facts(add).await?;
        self.facts(drop).await?;
        let options = self
            .choose_options(student, std::slice::from_ref(&facts), &[], request, "swap")
            .await?;
        let target = facts.taken_with(options[0]);
        let active = self
            .check_rules(student, &target, Some(drop), request)
            .await?;
        if !active.contains(&drop) {
            return Err(Refusal::NotEnrolled.into());
        }
        if !active.contains(&add) {
            self.save_options(student, &[add], &options).await?;
        }
        let (permits, _) = self.section_permits(student, add).await?;
        let with_permits = !permits.is_empty();
        let command = Command::Replace {
            student: StudentId(student),
            request,
            drop: SectionId(drop),
            attrs: self.attributes(student).await?,
            permits,
        };
        let routed = self
            .router()
            .call(SectionId(add), command, Some(home))
            .await;
        if with_permits {
            self.cache.forget_student(student);
        }
        let routed = routed?;
        match routed.reply.outcome? {
            Outcome::Held => {
                let row = decisions::get(&self.pool, decision).await?.ok_or_else(|| {
                    RegistrationError::Bug(format!(
                        "decision {decision} not recorded with its hold"
                    ))
                })?;
                let taken = self.carry_out(row).await?;
                Ok(Decision {
                    value: SwapOrWait::Swapped(taken),
                    by: Some(routed.by),
                })
            }
            Outcome::Waitlisted { position } => Ok(Decision {
                value: SwapOrWait::Waiting { position },
                by: Some(routed.by),
            }),
            other => Err(RegistrationError::Bug(format!(
                "a replace was answered {other:?}"
            ))),
        }
    }

    /// Carry out, as they come, the decisions this node's promotions made ("drop if
    /// enrolled": confirm the held seat, drop the other section), until `shutdown`. One
    /// that cannot be carried out now is left to the finisher.
    pub async fn carry_out_promotions(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut promoted = self.promotions.lock().await;
        let Some(rx) = promoted.as_mut() else {
            shutdown.recv().await;
            return;
        };
        loop {
            let decision = tokio::select! {
                next = rx.recv() => match next {
                    Some(d) => d,
                    None => return,
                },
                () = shutdown.recv() => return,
            };
            if let Err(e) = self.carry_out_promotion(decision.0).await {
                tracing::debug!(decision_id = %decision, error = %e, "promotion not carried out yet; the finisher will");
            }
        }
    }

    async fn carry_out_promotion(&self, decision: Uuid) -> Result<(), RegistrationError> {
        let Some(row) = decisions::get(&self.pool, decision).await? else {
            return Ok(());
        };
        if row.finished_at.is_some() {
            return Ok(());
        }
        let student = row.student_id;
        let result = self.carry_out(row).await.map(|_| ());
        // The student's home caches their schedule: tell it (and this node) it changed.
        self.cache.forget_student(student);
        crate::store::cluster::notify_rules(
            &self.pool,
            crate::store::cluster::Notice::Student(student),
        )
        .await?;
        result
    }
}
