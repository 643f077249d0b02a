//! The registration flow: enroll, drop, swap, capacity changes and schedules.
//!
//! A student's requests are serialized by [`StudentLocks`], held across "read the rule
//! inputs → check the student rules → ask the section actor → note the answer", so the
//! rules always see the whole schedule. The inputs come from the [`RuleCache`], which the
//! flow keeps exact from the section actors' answers.
//!
//! The lock is held until the section actor has answered, not until the caller stops
//! waiting: each request runs in a task of its own, and the caller waits for it at most
//! the call timeout (then 503 `decision_pending`) or not at all (a client that hung up).
//! Otherwise the student's next request would run the rules while the earlier command
//! still sat in the actor's mailbox, and both could commit past a rule (two sections of
//! one course, the credit limit, a time conflict).
//!
//! In a cluster this runs on the student's home node (the owner of the student's shard),
//! which is what makes the lock and the cache exact cluster-wide: each request comes with
//! the [`HomePass`] the edge admitted it with (it keeps the student's shard here, and a
//! handoff of the shard waits for it), and the section actors are reached through the
//! [`SectionRouter`], on this node or the section's owner, with the pass's home claim.
//! Each accepted answer names the node whose actor decided it ([`Decision`]).
//!
//! Section-level decisions (seats, waitlist) belong to the section actors; this service
//! never decides a seat itself.

use super::rule_cache::{Membership, RuleCache};
use super::student_locks::StudentLocks;
use crate::cluster::home::{HomePass, NotHome};
use crate::cluster::router::SectionRouter;
use crate::metrics::DecisionCounter;
use crate::resources::{AskedOptions, SectionFacts, recorded};
use crate::store::permits::RulePermit;
use crate::store::{DbError, audit};
use chrono::{DateTime, Utc};
use registrar_actors::store::HomeClaim;
use registrar_actors::student_rules::{
    OfferedSection, Permit, PermitKind, RuleViolation, StudentProfile, Window, check_drop_set,
    check_enroll, check_enroll_set, check_seat_drop, seat_drop,
};
use registrar_actors::{
    Attribute, CallError, CapacityPermit, Command, Outcome, PermitId, Refusal, RequestId, SeatDrop,
    SectionId, SectionRegistry, StudentId,
};
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// The permits of `all` the rules may use in `term` at `now` (not expired).
fn usable_permits(all: &[RulePermit], term: Uuid, now: DateTime<Utc>) -> Vec<Permit> {
    all.iter()
        .filter(|p| p.term == term && p.expires_at.is_none_or(|e| now < e))
        .map(|p| p.permit.clone())
        .collect()
}

/// Why a registration request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// No such section.
    #[error("section not found")]
    SectionNotFound,
    /// The token's account is gone.
    #[error("student not found")]
    StudentNotFound,
    /// Staff accounts have no standing and cannot register.
    #[error("only students register for sections")]
    NotAStudent,
    /// A student rule refused it (nothing recorded but the audit row).
    #[error(transparent)]
    Rule(#[from] RuleViolation),
    /// The section actor refused it.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// No decision (overloaded, unavailable, pending).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A swap of the student's is under way and could not be finished yet (a section's
    /// owner could not commit): it will be, forwards only (see `service::swap`); nothing
    /// else is decided for the student meanwhile.
    #[error(
        "a swap is under way and will be completed; retry with the same Idempotency-Key to get its answer"
    )]
    SwapUnderWay,
    /// A section refused its part of a decision over several sections: nothing was
    /// taken.
    #[error("section {section}: {refusal}")]
    PartRefused {
        /// The section.
        section: Uuid,
        /// Its refusal.
        refusal: Refusal,
    },
    /// A decision over several sections was cancelled (its first refusal's `code`, or
    /// `unavailable`, `expired`, `abandoned`): every seat it held was given back.
    #[error("nothing was taken: {code}{}", section.map(|s| format!(" (section {s})")).unwrap_or_default())]
    SetCancelled {
        /// Why.
        code: String,
        /// The section whose refusal cancelled it.
        section: Option<Uuid>,
    },
    /// A decision over several sections is made but not carried out yet (a section's
    /// owner could not commit): it will be, forwards only (see `service::bundle`).
    #[error(
        "the decision is made and is being carried out; retry with the same Idempotency-Key to get its answer"
    )]
    DecisionUnderWay,
    /// This node is not the student's home (work of its own, such as finishing a swap,
    /// for a student served elsewhere now).
    #[error(transparent)]
    NotHome(#[from] NotHome),
    /// A bug: something that cannot happen did (logged, answered 500).
    #[error("bug: {0}")]
    Bug(String),
}

/// One student's request about one section: who, where, and the request id that makes a
/// retry idempotent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeatRequest {
    /// The student.
    pub student: Uuid,
    /// The section.
    pub section: Uuid,
    /// The request (derived from the `Idempotency-Key` when there is one).
    pub request: RequestId,
}

/// An accepted enroll.
#[derive(Clone, Debug)]
pub enum Enrolled {
    /// Holds a seat since `at`.
    Seat {
        /// When the seat was taken.
        at: DateTime<Utc>,
    },
    /// Waits at `position`.
    Waitlist {
        /// 1-based.
        position: u32,
    },
}

/// An accepted drop.
#[derive(Clone, Copy, Debug)]
pub struct Dropped {
    /// Whether the freed seat went to the waitlist head.
    pub promoted: bool,
    /// Whether it was a withdrawal: a seat left after the drop deadline, with a W.
    pub withdrawn: bool,
}

/// An accepted decision, and the node whose section actor made it: `None` when it was
/// read back from the record rather than decided now.
#[derive(Clone, Debug)]
pub struct Decision<T> {
    /// What was decided.
    pub value: T,
    /// The deciding node.
    pub by: Option<Arc<str>>,
}

impl<T> Decision<T> {
    /// The same node's decision about something else.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Decision<U> {
        Decision {
            value: f(self.value),
            by: self.by,
        }
    }
}

/// The outcome label a successful answer is counted under (`registrar_decisions_total`).
pub trait CountedAs {
    /// `enrolled`, `waitlisted`, `dropped`, `withdrawn` or `swapped`.
    fn outcome(&self) -> &'static str;
}

impl<T: CountedAs> CountedAs for Decision<T> {
    fn outcome(&self) -> &'static str {
        self.value.outcome()
    }
}

impl CountedAs for Enrolled {
    fn outcome(&self) -> &'static str {
        match self {
            Enrolled::Seat { .. } => "enrolled",
            Enrolled::Waitlist { .. } => "waitlisted",
        }
    }
}

impl CountedAs for Dropped {
    fn outcome(&self) -> &'static str {
        if self.withdrawn {
            "withdrawn"
        } else {
            "dropped"
        }
    }
}

impl CountedAs for (Enrolled, Dropped) {
    fn outcome(&self) -> &'static str {
        "swapped"
    }
}

impl RegistrationError {
    /// The outcome label this refusal or failure is counted under: the problem code the
    /// client sees where there is one.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::SectionNotFound | Self::Call(CallError::NotFound) => "section_not_found",
            Self::StudentNotFound => "student_not_found",
            Self::NotAStudent => "not_a_student",
            Self::Rule(v) => v.code(),
            Self::Refused(r) | Self::PartRefused { refusal: r, .. } => r.code(),
            Self::SetCancelled { .. } => "set_cancelled",
            Self::Call(CallError::Overloaded) => "overloaded",
            Self::Call(CallError::Pending) | Self::SwapUnderWay | Self::DecisionUnderWay => {
                "decision_pending"
            }
            Self::Call(CallError::Unavailable(_) | CallError::NotOwner)
            | Self::Db(_)
            | Self::NotHome(_) => "unavailable",
            Self::Bug(_) => "internal",
        }
    }
}

/// The registration service (see module docs).
pub struct RegistrationService {
    pub(super) pool: PgPool,
    router: Arc<SectionRouter>,
    /// The student rules' inputs.
    pub(super) cache: RuleCache,
    /// One student's requests at a time.
    pub(super) locks: StudentLocks,
    /// Group-committed audit rows of rule refusals.
    refusals: audit::RefusalLog,
    /// Answers by outcome (exported by `/metrics`).
    decisions: DecisionCounter,
    /// Registration tasks still running, which shutdown waits for.
    in_flight: Arc<InFlight>,
    /// How long a decision over several sections may take to hold its seats.
    decision_deadline: Duration,
    /// Decisions this node's section actors made by a promotion ("drop if enrolled"),
    /// which this node carries out (see `bundle`).
    pub(super) promotions: tokio::sync::Mutex<
        Option<tokio::sync::mpsc::UnboundedReceiver<registrar_actors::DecisionId>>,
    >,
}

/// A count of running registration tasks, and a wake-up when it reaches zero.
#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// One running registration task; counted down when dropped.
struct Running(Arc<InFlight>);

impl InFlight {
    fn enter(self: &Arc<Self>) -> Running {
        self.count.fetch_add(1, Ordering::SeqCst);
        Running(self.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl RegistrationService {
    /// A service over `pool` reaching section actors through `router`.
    pub fn new(pool: PgPool, router: Arc<SectionRouter>) -> Self {
        Self {
            refusals: audit::RefusalLog::spawn(pool.clone()),
            cache: RuleCache::new(pool.clone()),
            locks: StudentLocks::default(),
            pool,
            router,
            decisions: DecisionCounter::default(),
            in_flight: Arc::default(),
            decision_deadline: Duration::from_secs(10),
            promotions: tokio::sync::Mutex::new(None),
        }
    }

    /// Carry out the decisions this node's promotions make, as they come from `promoted`.
    pub fn with_promotions(
        self,
        promoted: tokio::sync::mpsc::UnboundedReceiver<registrar_actors::DecisionId>,
    ) -> Self {
        Self {
            promotions: tokio::sync::Mutex::new(Some(promoted)),
            ..self
        }
    }

    /// Give decisions over several sections `deadline` to hold their seats.
    pub fn with_decision_deadline(mut self, deadline: Duration) -> Self {
        self.decision_deadline = deadline;
        self
    }

    /// How long a decision over several sections may take to hold its seats.
    pub(super) fn decision_deadline(&self) -> Duration {
        self.decision_deadline
    }

    /// Wait until no registration task is running, at most `limit`; whether none is.
    /// A task may outlive its HTTP request (its caller stopped waiting), and must reach
    /// its section actor before shutdown stops the actors.
    pub async fn settle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.in_flight.idle.notified();
            if self.in_flight.count.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.in_flight.count.load(Ordering::SeqCst) == 0;
            }
        }
    }

    /// Answers by outcome, counted in [`Self::decide_in_task`] (every enroll, drop and swap).
    pub fn decisions(&self) -> &DecisionCounter {
        &self.decisions
    }

    /// This node's section actors.
    pub fn registry(&self) -> &Arc<SectionRegistry> {
        self.router.registry()
    }

    /// The router to section owners.
    pub fn router(&self) -> &Arc<SectionRouter> {
        &self.router
    }

    /// The rule caches (admin edits invalidate what they change).
    pub fn cache(&self) -> &RuleCache {
        &self.cache
    }

    /// Record what a section actor's answer says about `student`'s membership of `section`
    /// (called under the student's lock).
    pub(super) fn note_membership<T>(
        &self,
        student: Uuid,
        section: Uuid,
        result: &Result<T, RegistrationError>,
        joining: bool,
    ) {
        let membership = match result {
            Ok(_) if joining => Membership::Member,
            Ok(_) => Membership::NotMember,
            Err(RegistrationError::Refused(
                Refusal::AlreadyEnrolled | Refusal::AlreadyWaitlisted,
            )) => Membership::Member,
            Err(RegistrationError::Refused(Refusal::NotEnrolled)) => Membership::NotMember,
            // Full, or refused before the actor: membership unchanged.
            Err(RegistrationError::Refused(_) | RegistrationError::Rule(_)) => return,
            // Unknown outcome: read the database next time.
            Err(_) => Membership::Unknown,
        };
        self.cache.note_membership(student, section, membership);
    }

    /// Run `change` (joining `section` or leaving it) under `student`'s lock, and note
    /// what its answer says about the student's membership of `section`.
    pub(super) async fn membership_change<T>(
        &self,
        r: SeatRequest,
        joining: bool,
        change: impl AsyncFnOnce() -> Result<T, RegistrationError>,
    ) -> Result<T, RegistrationError> {
        self.locks
            .serialized(r.student, async || {
                let result = change().await;
                self.note_membership(r.student, r.section, &result, joining);
                result
            })
            .await
    }

    /// The fixed facts of `section`.
    pub async fn facts(&self, section: Uuid) -> Result<Arc<SectionFacts>, RegistrationError> {
        self.cache
            .facts(section)
            .await?
            .ok_or(RegistrationError::SectionNotFound)
    }

    /// The student's rule inputs for `term`: their profile (the term's schedule), the
    /// window of their standing, and every section they hold a place in.
    pub(super) async fn profile(
        &self,
        student: Uuid,
        term: Uuid,
    ) -> Result<(StudentProfile, Option<Window>, Vec<Uuid>), RegistrationError> {
        let inputs = self
            .cache
            .rule_inputs(student)
            .await?
            .ok_or(RegistrationError::StudentNotFound)?;
        let standing = inputs.standing.ok_or(RegistrationError::NotAStudent)?;
        let window = self.cache.window(term, standing).await?;
        let schedule = self
            .cache
            .facts_many(&inputs.active_sections)
            .await?
            .into_iter()
            .filter(|f| f.term_id == term)
            .map(|f| f.offered_for(recorded(&inputs.options, f.id().0)))
            .collect();
        let ticket = inputs
            .tickets
            .iter()
            .find(|(t, _)| *t == term)
            .map(|(_, ticket)| *ticket);
        let profile = StudentProfile {
            holds: inputs.holds,
            max_credits: inputs.max_credits,
            completed: inputs.completed.clone(),
            schedule,
            attributes: inputs.attributes.clone(),
            ticket,
            deadlines: self.cache.deadlines(term).await?,
            permits: usable_permits(&inputs.permits, term, self.router.node().clock.now()),
        };
        Ok((profile, window, inputs.active_sections.clone()))
    }

    /// Record a rule refusal in the audit trail and return it.
    pub(super) async fn refuse(
        &self,
        violation: RuleViolation,
        student: Uuid,
        section: Uuid,
        action: &'static str,
        request: RequestId,
    ) -> RegistrationError {
        let refusal = audit::Refusal {
            request: request.0,
            student,
            section,
            action,
            code: violation.code(),
        };
        match self.refusals.record(refusal).await {
            Ok(()) => violation.into(),
            Err(e) => e.into(),
        }
    }

    /// Load the student and check the rules for taking `target` (dropping `replacing`).
    pub(super) async fn check_rules(
        &self,
        student: Uuid,
        target: &SectionFacts,
        replacing: Option<Uuid>,
        request: RequestId,
    ) -> Result<Vec<Uuid>, RegistrationError> {
        let (profile, window, active) = self.profile(student, target.term_id).await?;
        let replacing = replacing.map(SectionId);
        // The database's time, like the leases: a node whose clock is off must not open
        // a window early or close it late.
        let now = self.router.node().clock.now();
        if let Err(violation) = check_enroll(&profile, &target.offered, window, now, replacing) {
            return Err(self
                .refuse(violation, student, target.id().0, "enroll", request)
                .await);
        }
        Ok(active)
    }

    /// Check that dropping `section` strands no corequisite of a course that stays, and
    /// say what leaving a seat in it is now by the term's deadlines (the section's actor
    /// applies that to a seat only: a waitlist place is always left plainly).
    async fn check_drop_rules(
        &self,
        student: Uuid,
        section: &SectionFacts,
        request: RequestId,
    ) -> Result<SeatDrop, RegistrationError> {
        let (profile, _, _) = self.profile(student, section.term_id).await?;
        if let Err(violation) = check_drop_set(&profile, &[section.id()]) {
            return Err(self
                .refuse(violation, student, section.id().0, "drop", request)
                .await);
        }
        // The database's time, as for the windows.
        Ok(seat_drop(
            &profile.deadlines,
            self.router.node().clock.now(),
        ))
    }

    /// What leaving the seats of `leaving` (a linked set dropped whole: seats only, a set
    /// is never waitlisted) is now, by the term's deadlines; past the last day to withdraw
    /// the drop is refused here, before anything is decided.
    pub(super) async fn check_set_drop(
        &self,
        student: Uuid,
        leaving: &[Uuid],
        request: RequestId,
    ) -> Result<SeatDrop, RegistrationError> {
        let Some(first) = leaving.first() else {
            return Ok(SeatDrop::Plain);
        };
        let facts = self.facts(*first).await?;
        let (profile, _, _) = self.profile(student, facts.term_id).await?;
        let now = self.router.node().clock.now();
        match check_seat_drop(&profile.deadlines, now) {
            Ok(seat) => Ok(seat),
            Err(violation) => Err(self
                .refuse(violation, student, *first, "drop_set", request)
                .await),
        }
    }

    /// Load the student and check the rules for taking every section of `targets` at once
    /// and leaving `leaving` (a decision over several sections: a linked set, a swap
    /// inside one, a set dropped whole); every section the student holds a place in.
    pub(super) async fn check_set_rules(
        &self,
        student: Uuid,
        targets: &[Arc<SectionFacts>],
        leaving: &[Uuid],
        request: RequestId,
        asked: &[AskedOptions],
    ) -> Result<Vec<Uuid>, RegistrationError> {
        let (verdict, active, section, action) =
            self.set_verdict(student, targets, leaving, asked).await?;
        if let Err(violation) = verdict {
            return Err(self
                .refuse(violation, student, section, action, request)
                .await);
        }
        Ok(active)
    }

    /// What the student rules say of taking `targets` together, with the credits and
    /// grading basis `asked` for each (same order; see `service::enrollment_options`), and
    /// leaving `leaving`, without recording anything: (the verdict, the student's active
    /// sections, the section and action a refusal is recorded under).
    pub(super) async fn set_verdict(
        &self,
        student: Uuid,
        targets: &[Arc<SectionFacts>],
        leaving: &[Uuid],
        asked: &[AskedOptions],
    ) -> Result<(Result<(), RuleViolation>, Vec<Uuid>, Uuid, &'static str), RegistrationError> {
        let first = match (targets.first(), leaving.first()) {
            (Some(t), _) => t.clone(),
            (None, Some(l)) => self.facts(*l).await?,
            (None, None) => return Err(RegistrationError::Bug("an empty decision".into())),
        };
        let (profile, window, active) = self.profile(student, first.term_id).await?;
        let leaving: Vec<SectionId> = leaving.iter().copied().map(SectionId).collect();
        let now = self.router.node().clock.now();
        // Each target as the student would take it: the credit limit counts the credits
        // chosen. A choice the course does not allow is the verdict.
        let chosen = match self.options_verdict(student, targets, asked).await? {
            Ok(chosen) => chosen,
            Err((section, v)) => return Ok((Err(v), active, section, "enroll_set")),
        };
        let offered: Vec<OfferedSection> = (targets.iter().zip(&chosen))
            .map(|(t, o)| o.apply(&t.offered))
            .collect();
        let (verdict, action) = if offered.is_empty() {
            (check_drop_set(&profile, &leaving), "drop_set")
        } else {
            let terms_differ = targets.iter().any(|t| t.term_id != first.term_id);
            if terms_differ {
                return Err(RegistrationError::Bug(
                    "a decision over sections of several terms".into(),
                ));
            }
            (
                check_enroll_set(&profile, &offered, window, now, &leaving),
                "enroll_set",
            )
        };
        Ok((verdict, active, first.id().0, action))
    }

    /// Enroll the student in the section (seat, else waitlist), on this node as the
    /// student's home, with the course's default credits and grading basis.
    pub async fn enroll(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        r: SeatRequest,
    ) -> Result<Decision<Enrolled>, RegistrationError> {
        self.enroll_with(home, r, AskedOptions::default()).await
    }

    /// Enroll the student in the section (seat, else waitlist), on this node as the
    /// student's home, taking it with the credits and grading basis `asked` (see
    /// `service::enrollment_options`).
    pub async fn enroll_with(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        r: SeatRequest,
        asked: AskedOptions,
    ) -> Result<Decision<Enrolled>, RegistrationError> {
        self.decide_in_task(
            home,
            r.student,
            move |this: Arc<Self>, home: HomeClaim| async move {
                this.membership_change(r, true, async || {
                    this.finish_swaps(&home, r.student, None).await?;
                    this.finish_decisions(r.student).await?;
                    let facts = this.facts(r.section).await?;
                    let targets = std::slice::from_ref(&facts);
                    let options = this
                        .choose_options(r.student, targets, &[asked], r.request, "enroll")
                        .await?;
                    let target = facts.taken_with(options[0]);
                    let active = this
                        .check_rules(r.student, &target, None, r.request)
                        .await?;
                    // A place held already keeps its options (the actor answers
                    // `already_enrolled`, or replays a retry): they change by a PATCH.
                    if !active.contains(&r.section) {
                        this.save_options(r.student, &[r.section], &options).await?;
                    }
                    this.enroll_in_actor(&home, r, false).await
                })
                .await
            },
        )
        .await
    }

    /// Drop the student from the section (seat or waitlist place).
    pub async fn drop_enrollment(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        r: SeatRequest,
    ) -> Result<Decision<Dropped>, RegistrationError> {
        self.decide_in_task(
            home,
            r.student,
            move |this: Arc<Self>, home: HomeClaim| async move {
                this.membership_change(r, false, async || {
                    this.finish_swaps(&home, r.student, None).await?;
                    this.finish_decisions(r.student).await?;
                    let facts = this.facts(r.section).await?;
                    let seat = this.check_drop_rules(r.student, &facts, r.request).await?;
                    this.drop_in_actor(&home, r, seat).await
                })
                .await
            },
        )
        .await
    }

    /// Run `work` for `student`, admitted here as the student's home by `home`, in a task
    /// of its own, and wait for it at most the call timeout. The task runs to its end
    /// whatever the caller does, and holds the pass until then, so a student's lock taken
    /// inside it is held, and the student's shard kept here, until the section actor has
    /// answered (see the module docs). `work` gets the claim its section commands carry.
    pub(super) async fn decide_in_task<T, F, Fut>(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        student: Uuid,
        work: F,
    ) -> Result<T, RegistrationError>
    where
        T: CountedAs + Send + 'static,
        F: FnOnce(Arc<Self>, HomeClaim) -> Fut,
        Fut: Future<Output = Result<T, RegistrationError>> + Send + 'static,
    {
        if home.student() != student {
            return Err(RegistrationError::Bug(format!(
                "a pass for student {} used for student {student}",
                home.student()
            )));
        }
        let work = work(self.clone(), home.claim().clone());
        let running = self.in_flight.enter();
        let task = tokio::spawn(async move {
            let result = work.await;
            drop(home);
            drop(running);
            result
        });
        let result = match tokio::time::timeout(self.registry().call_timeout(), task).await {
            Err(_) => Err(CallError::Pending.into()),
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(RegistrationError::Bug(format!(
                "registration task failed: {e}"
            ))),
        };
        self.decisions.count(match &result {
            Ok(answer) => answer.outcome(),
            Err(e) => e.outcome(),
        });
        result
    }

    /// Run `work` for `student` like [`Self::decide_in_task`], under the student's lock,
    /// and forget the student's cached rule inputs after it: for work that changes (or
    /// may change) several of the student's sections at once, so the next request reads
    /// the database.
    pub(super) async fn changing_sections<T, F, Fut>(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        student: Uuid,
        work: F,
    ) -> Result<T, RegistrationError>
    where
        T: CountedAs + Send + 'static,
        F: FnOnce(Arc<Self>, HomeClaim) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, RegistrationError>> + Send + 'static,
    {
        self.decide_in_task(
            home,
            student,
            move |this: Arc<Self>, home: HomeClaim| async move {
                let locks = this.clone();
                locks
                    .locks
                    .serialized(student, async || {
                        let result = work(this.clone(), home).await;
                        this.cache.forget_student(student);
                        result
                    })
                    .await
            },
        )
        .await
    }

    /// Ask `section`'s actor to decide `command` and wait for its answer, however long the
    /// commit takes; its outcome and when it was decided.
    /// `home` is the claim of the student's request the command belongs to, if any.
    pub(super) async fn decide(
        &self,
        section: Uuid,
        command: Command,
        home: Option<&HomeClaim>,
    ) -> Result<Decision<(Outcome, DateTime<Utc>)>, RegistrationError> {
        let routed = self.router.call(SectionId(section), command, home).await?;
        Ok(Decision {
            value: (routed.reply.outcome?, routed.reply.decided_at),
            by: Some(routed.by),
        })
    }

    /// The student's attributes, which a section's reserved pools match (from the rule
    /// cache the rules just read).
    pub(super) async fn attributes(
        &self,
        student: Uuid,
    ) -> Result<Vec<Attribute>, RegistrationError> {
        let inputs = self
            .cache
            .rule_inputs(student)
            .await?
            .ok_or(RegistrationError::StudentNotFound)?;
        Ok(inputs.attributes.clone())
    }

    /// The student's permits for a place in `section`: those its commit records as used
    /// (every usable permit for the section but a capacity one: a permit for a section is
    /// used by the place taken in it), and the capacity permit, which the section's ledger
    /// uses only if it has no seat for the student. Read from the rule cache, as the rules
    /// just were.
    pub(super) async fn section_permits(
        &self,
        student: Uuid,
        section: Uuid,
    ) -> Result<(Vec<PermitId>, Option<CapacityPermit>), RegistrationError> {
        let inputs = self
            .cache
            .rule_inputs(student)
            .await?
            .ok_or(RegistrationError::StudentNotFound)?;
        let now = self.router.node().clock.now();
        let mut used = Vec::new();
        let mut capacity = None;
        for p in inputs.permits.iter().filter(|p| {
            p.permit.section == Some(SectionId(section))
                && p.permit.spent_on.is_none()
                && p.expires_at.is_none_or(|e| now < e)
        }) {
            match p.permit.kind {
                PermitKind::Capacity => {
                    capacity = capacity.or(Some(CapacityPermit {
                        permit: p.permit.id,
                        jump_waitlist: p.permit.jump_waitlist,
                    }))
                }
                _ => used.push(p.permit.id),
            }
        }
        Ok((used, capacity))
    }

    /// A seat, or with `seat_only` false a waitlist place if the section is full.
    pub(super) async fn enroll_in_actor(
        &self,
        home: &HomeClaim,
        r: SeatRequest,
        seat_only: bool,
    ) -> Result<Decision<Enrolled>, RegistrationError> {
        let (permits, capacity_permit) = self.section_permits(r.student, r.section).await?;
        let with_permits = !permits.is_empty() || capacity_permit.is_some();
        let command = Command::Enroll {
            student: StudentId(r.student),
            request: r.request,
            seat_only,
            attrs: self.attributes(r.student).await?,
            permits,
            capacity_permit,
        };
        let decision = self.decide(r.section, command, Some(home)).await;
        if with_permits {
            // Whatever the answer, the permits' uses are read again.
            self.cache.forget_student(r.student);
        }
        let decision = decision?;
        let enrolled = match decision.value {
            (Outcome::Enrolled, at) => Enrolled::Seat { at },
            (Outcome::Waitlisted { position }, _) => Enrolled::Waitlist { position },
            (other, _) => return unreachable_outcome(other),
        };
        Ok(decision.map(|_| enrolled))
    }

    /// Leave the section (seat or waitlist place); a seat is left as `seat` says (see
    /// [`Command::Drop`]).
    pub(super) async fn drop_in_actor(
        &self,
        home: &HomeClaim,
        r: SeatRequest,
        seat: SeatDrop,
    ) -> Result<Decision<Dropped>, RegistrationError> {
        let command = Command::Drop {
            student: StudentId(r.student),
            request: r.request,
            seat,
        };
        let decision = self.decide(r.section, command, Some(home)).await?;
        let dropped = match decision.value {
            (
                Outcome::Dropped {
                    promoted,
                    withdrawn,
                    ..
                },
                _,
            ) => Dropped {
                promoted: promoted.is_some(),
                withdrawn,
            },
            (other, _) => return unreachable_outcome(other),
        };
        Ok(decision.map(|_| dropped))
    }

    /// Change a section's capacity (admin); returns the promoted students.
    pub async fn set_capacity(
        &self,
        section: Uuid,
        capacity: u32,
    ) -> Result<Vec<StudentId>, RegistrationError> {
        self.facts(section).await?;
        let command = Command::SetCapacity {
            capacity,
            request: RequestId::new_v4(),
        };
        match self.decide_admin(section, command).await? {
            Outcome::CapacityChanged { promoted } => Ok(promoted),
            other => unreachable_outcome(other),
        }
    }

    /// Ask `section`'s actor to decide an admin's `command` (no student, no home claim),
    /// waiting at most the call timeout (then `decision_pending`).
    pub(super) async fn decide_admin(
        &self,
        section: Uuid,
        command: Command,
    ) -> Result<Outcome, RegistrationError> {
        let decided = tokio::time::timeout(
            self.registry().call_timeout(),
            self.decide(section, command, None),
        )
        .await
        .map_err(|_| CallError::Pending)??;
        Ok(decided.value.0)
    }
}

impl crate::cluster::node::RuleCaches for RegistrationService {
    fn forget_shards(&self, shards: &std::collections::HashSet<u32>, total: u32) {
        self.cache.forget_shards(shards, total);
    }

    fn forget_student(&self, student: Uuid) {
        self.cache.forget_student(student);
    }

    fn forget_windows(&self) {
        self.cache.forget_windows();
    }

    fn forget_all_students(&self) {
        self.cache.forget_all_students();
    }

    fn forget_section(&self, section: Uuid) {
        self.cache.forget_facts(&[section]);
    }
}

pub(super) fn unreachable_outcome<T>(outcome: Outcome) -> Result<T, RegistrationError> {
    Err(RegistrationError::Bug(format!(
        "section actor answered a different command: {outcome:?}"
    )))
}
