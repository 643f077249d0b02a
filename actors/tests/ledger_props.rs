//! Property tests of [`SeatLedger`]: random sequences of enrolls (seat-only or not), drops,
//! capacity changes, seats held for a multi-section decision and their confirms and
//! releases (of holds that arrived, and of holds that never did), and re-sent requests over a small pool of students, checked step by
//! step against the ledger's invariants and against a plain reference model (a `VecDeque`
//! waitlist), plus a check that a ledger restored from its persisted rows decides the
//! future exactly like the original.
//!
//! What is checked after every command:
//! - `seats_taken <= capacity` and `waitlist_length <= waitlist_capacity`;
//! - a held seat counts in `seats_taken` and is never an enrollment until confirmed; a
//!   hold that arrives after its release is refused;
//! - no student is both enrolled and waitlisted (or holds a seat as well), and `placement`/`position` agree with
//!   `enrolled()`/`waitlist()`;
//! - nobody waits while a seat is free;
//! - FIFO: promoted students are exactly the oldest waiting ones, in order, and the
//!   waitlist order equals the reference model's;
//! - outcomes and the replay flag equal the reference model's;
//! - the changes are exactly the ones the outcome implies, each stamped with the counts
//!   obtained by applying the changes one by one to the counts before the command (so the
//!   last one equals `ledger.counts()`);
//! - refusals and replays change nothing (state and `next_seq` identical, no changes);
//! - a request sent again returns the same outcome as the first time while the placement
//!   it created still stands (a waitlist position may only have moved forward).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use registrar_actors::ledger::Decision;
use registrar_actors::{
    ChangeKind, Command, Counts, DecisionId, Outcome, Placement, Refusal, RequestId, SeatDrop,
    SeatLedger, SectionId, StudentId, WaitlistEntry,
};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use uuid::Uuid;

/// Students in the pool; small so that students collide and come back often.
const POOL: usize = 6;

fn student(i: usize) -> StudentId {
    StudentId(Uuid::from_u128(0x5eed_0000 + i as u128))
}

/// A generated step; turned into a [`Command`] with a fresh or a re-sent request id.
#[derive(Clone, Debug)]
enum Op {
    Enroll {
        student: usize,
        seat_only: bool,
    },
    Drop {
        student: usize,
    },
    SetCapacity {
        capacity: u32,
    },
    /// Hold a seat for a decision.
    Hold {
        student: usize,
    },
    /// Take a seat leaving another section, or wait with "drop if enrolled".
    Replace {
        student: usize,
    },
    /// Confirm an earlier hold (`pick` modulo the holds sent).
    Confirm {
        pick: usize,
    },
    /// Release an earlier hold.
    Release {
        pick: usize,
    },
    /// Release a hold that was never sent (it may still come: then it must be refused).
    ReleaseUnsent {
        student: usize,
    },
    /// Send an earlier command again, same request id (`pick` modulo the commands sent).
    Resend {
        pick: usize,
    },
    /// Send the previous command again at once.
    ResendLast,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..POOL, any::<bool>())
            .prop_map(|(student, seat_only)| Op::Enroll { student, seat_only }),
        3 => (0..POOL).prop_map(|student| Op::Drop { student }),
        1 => (0..=POOL as u32).prop_map(|capacity| Op::SetCapacity { capacity }),
        3 => (0..POOL).prop_map(|student| Op::Hold { student }),
        2 => (0..POOL).prop_map(|student| Op::Replace { student }),
        2 => any::<usize>().prop_map(|pick| Op::Confirm { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        1 => (0..POOL).prop_map(|student| Op::ReleaseUnsent { student }),
        2 => any::<usize>().prop_map(|pick| Op::Resend { pick }),
        1 => Just(Op::ResendLast),
    ]
}

/// Turns ops into commands, minting request ids deterministically (shrinking stays stable).
#[derive(Default)]
struct Sender {
    sent: Vec<Command>,
    /// (student, hold request) of every hold minted, sent or not.
    holds: Vec<(StudentId, RequestId)>,
}

fn decision_of(hold: RequestId) -> DecisionId {
    DecisionId(hold.0)
}

/// The section a `Replace` leaves.
fn other_section() -> SectionId {
    SectionId(Uuid::from_u128(0x07e5_0000))
}

impl Sender {
    fn fresh(&self) -> RequestId {
        RequestId(Uuid::from_u128(0x7e57_0000_0000 + self.sent.len() as u128))
    }

    /// The command for `op`, or `None` when there is nothing to re-send yet.
    fn command(&mut self, op: &Op) -> Option<Command> {
        let request = self.fresh();
        let command = match *op {
            Op::Enroll {
                student: s,
                seat_only,
            } => Command::Enroll {
                student: student(s),
                request,
                seat_only,
                attrs: Vec::new(),
                permits: Vec::new(),
                capacity_permit: None,
            },
            Op::Drop { student: s } => Command::Drop {
                student: student(s),
                request,
                seat: SeatDrop::Plain,
            },
            Op::SetCapacity { capacity } => Command::SetCapacity { capacity, request },
            Op::Replace { student: s } => {
                // Its seat is held like a hold's: confirms and releases may pick it.
                self.holds.push((student(s), request));
                Command::Replace {
                    student: student(s),
                    request,
                    drop: other_section(),
                    attrs: Vec::new(),
                    permits: Vec::new(),
                }
            }
            Op::Hold { student: s } => {
                self.holds.push((student(s), request));
                Command::Hold {
                    student: student(s),
                    request,
                    decision: decision_of(request),
                    attrs: Vec::new(),
                    permits: Vec::new(),
                }
            }
            Op::Confirm { pick } | Op::Release { pick } => {
                if self.holds.is_empty() {
                    return None;
                }
                let (student, hold) = self.holds[pick % self.holds.len()];
                let decision = decision_of(hold);
                if matches!(op, Op::Confirm { .. }) {
                    Command::Confirm {
                        student,
                        request,
                        hold,
                        decision,
                    }
                } else {
                    Command::Release {
                        student,
                        request,
                        hold,
                        decision,
                    }
                }
            }
            Op::ReleaseUnsent { student: s } => {
                // A hold id of its own, minted but never sent (unless a later pick
                // releases or confirms it again).
                let hold = RequestId(Uuid::from_u128(0x401d_0000_0000 + self.sent.len() as u128));
                self.holds.push((student(s), hold));
                Command::Release {
                    student: student(s),
                    request,
                    hold,
                    decision: decision_of(hold),
                }
            }
            Op::Resend { pick } => {
                if self.sent.is_empty() {
                    return None;
                }
                self.sent[pick % self.sent.len()].clone()
            }
            Op::ResendLast => self.sent.last()?.clone(),
        };
        self.sent.push(command.clone());
        Some(command)
    }
}

/// The reference model: the same rules written as plainly as possible.
///
/// Like the ledger, it only remembers the request behind each *current* placement: a
/// request whose placement is gone (dropped, or refused in the first place) is decided
/// afresh, and drops and capacity changes are not deduplicated by request id.
#[derive(Clone, Debug)]
struct Model {
    capacity: u32,
    waitlist_capacity: u32,
    enrolled: HashMap<StudentId, RequestId>,
    held: HashMap<StudentId, RequestId>,
    /// Waiting students who asked to leave another section when seated here.
    replacing: HashMap<StudentId, SectionId>,
    waitlist: VecDeque<(StudentId, RequestId)>,
    /// First answer of every decided request: a re-send gets it again.
    answered: HashMap<RequestId, Result<Outcome, Refusal>>,
}

impl Model {
    fn new(capacity: u32, waitlist_capacity: u32) -> Self {
        Self {
            capacity,
            waitlist_capacity,
            enrolled: HashMap::new(),
            held: HashMap::new(),
            replacing: HashMap::new(),
            answered: HashMap::new(),
            waitlist: VecDeque::new(),
        }
    }

    fn seat_free(&self) -> bool {
        ((self.enrolled.len() + self.held.len()) as u32) < self.capacity
    }

    /// A released hold: any copy of it is refused from now on.
    fn ended(&mut self, hold: RequestId) {
        self.answered.insert(hold, Err(Refusal::DecisionEnded));
    }

    fn promote_while_free(&mut self) -> Vec<StudentId> {
        let mut promoted = Vec::new();
        while self.seat_free() {
            let Some((s, r)) = self.waitlist.pop_front() else {
                break;
            };
            // "Drop if enrolled": the seat is held for the decision of the request.
            if self.replacing.remove(&s).is_some() {
                self.held.insert(s, r);
            } else {
                self.enrolled.insert(s, r);
            }
            promoted.push(s);
        }
        promoted
    }

    /// (outcome, replay). A request decided before is answered as the first time.
    fn apply(&mut self, command: &Command) -> (Result<Outcome, Refusal>, bool) {
        if let Some(first) = self.answered.get(&command.request()) {
            return (first.clone(), true);
        }
        let (outcome, replay) = self.decide(command);
        if !replay {
            self.answered.insert(command.request(), outcome.clone());
        }
        (outcome, replay)
    }

    fn decide(&mut self, command: &Command) -> (Result<Outcome, Refusal>, bool) {
        match *command {
            Command::Enroll {
                student,
                request,
                seat_only,
                ..
            } => {
                if let Some(&r) = self.enrolled.get(&student) {
                    return if r == request {
                        (Ok(Outcome::Enrolled), true)
                    } else {
                        (Err(Refusal::AlreadyEnrolled), false)
                    };
                }
                if let Some(i) = self.waitlist.iter().position(|(s, _)| *s == student) {
                    return if self.waitlist[i].1 == request {
                        let position = i as u32 + 1;
                        (Ok(Outcome::Waitlisted { position }), true)
                    } else {
                        (Err(Refusal::AlreadyWaitlisted), false)
                    };
                }
                if self.held.contains_key(&student) {
                    return (Err(Refusal::AlreadyHeld), false);
                }
                if self.seat_free() {
                    self.enrolled.insert(student, request);
                    return (Ok(Outcome::Enrolled), false);
                }
                if seat_only || self.waitlist.len() as u32 >= self.waitlist_capacity {
                    return (Err(Refusal::SectionFull), false);
                }
                self.waitlist.push_back((student, request));
                let position = self.waitlist.len() as u32;
                (Ok(Outcome::Waitlisted { position }), false)
            }
            Command::Drop { student, .. } => {
                if self.enrolled.remove(&student).is_some() {
                    let promoted = self.promote_while_free();
                    assert!(promoted.len() <= 1, "one freed seat promotes at most one");
                    let outcome = Outcome::Dropped {
                        from: Placement::Enrolled,
                        promoted: promoted.first().copied(),
                        withdrawn: false,
                    };
                    return (Ok(outcome), false);
                }
                if let Some(i) = self.waitlist.iter().position(|(s, _)| *s == student) {
                    self.waitlist.remove(i);
                    self.replacing.remove(&student);
                    let outcome = Outcome::Dropped {
                        from: Placement::Waitlisted,
                        promoted: None,
                        withdrawn: false,
                    };
                    return (Ok(outcome), false);
                }
                (Err(Refusal::NotEnrolled), false)
            }
            Command::Replace {
                student,
                request,
                drop,
                ..
            } => {
                if self.held.get(&student) == Some(&request)
                    || self.enrolled.get(&student) == Some(&request)
                {
                    return (Ok(Outcome::Held), true);
                }
                let placed = self.enrolled.contains_key(&student)
                    || self.held.contains_key(&student)
                    || self.waitlist.iter().any(|(s, _)| *s == student);
                if !placed && self.seat_free() {
                    self.held.insert(student, request);
                    return (Ok(Outcome::Held), false);
                }
                // Otherwise as an enroll that may wait, remembering the section to leave.
                let enroll = Command::Enroll {
                    student,
                    request,
                    seat_only: false,
                    attrs: Vec::new(),
                    permits: Vec::new(),
                    capacity_permit: None,
                };
                let answer = self.decide(&enroll);
                if matches!(answer, (Ok(Outcome::Waitlisted { .. }), false)) {
                    self.replacing.insert(student, drop);
                }
                answer
            }
            Command::Hold {
                student, request, ..
            } => {
                if let Some(&h) = self.held.get(&student) {
                    return if h == request {
                        (Ok(Outcome::Held), true)
                    } else {
                        (Err(Refusal::AlreadyHeld), false)
                    };
                }
                if let Some(&e) = self.enrolled.get(&student) {
                    return if e == request {
                        (Ok(Outcome::Held), true)
                    } else {
                        (Err(Refusal::AlreadyEnrolled), false)
                    };
                }
                if self.waitlist.iter().any(|(s, _)| *s == student) {
                    return (Err(Refusal::AlreadyWaitlisted), false);
                }
                if !self.seat_free() {
                    return (Err(Refusal::SectionFull), false);
                }
                self.held.insert(student, request);
                (Ok(Outcome::Held), false)
            }
            Command::Confirm { student, hold, .. } => {
                if self.enrolled.get(&student) == Some(&hold) {
                    return (Ok(Outcome::Confirmed), true);
                }
                if self.held.get(&student) != Some(&hold) {
                    return (Err(Refusal::NotHeld), false);
                }
                self.held.remove(&student);
                self.enrolled.insert(student, hold);
                (Ok(Outcome::Confirmed), false)
            }
            Command::Release { student, hold, .. } => {
                if self.enrolled.get(&student) == Some(&hold) {
                    return (Err(Refusal::AlreadyConfirmed), false);
                }
                let was_held = self.held.get(&student) == Some(&hold);
                self.ended(hold);
                if !was_held {
                    let outcome = Outcome::Released {
                        held: false,
                        promoted: None,
                    };
                    return (Ok(outcome), false);
                }
                self.held.remove(&student);
                let promoted = self.promote_while_free();
                assert!(promoted.len() <= 1, "one freed seat promotes at most one");
                let outcome = Outcome::Released {
                    held: true,
                    promoted: promoted.first().copied(),
                };
                (Ok(outcome), false)
            }
            Command::SetCapacity { capacity, .. } => {
                let taken = (self.enrolled.len() + self.held.len()) as u32;
                if capacity < taken {
                    let refusal = Refusal::CapacityBelowTaken {
                        requested: capacity,
                        seats_taken: taken,
                    };
                    return (Err(refusal), false);
                }
                self.capacity = capacity;
                let promoted = self.promote_while_free();
                (Ok(Outcome::CapacityChanged { promoted }), false)
            }
            // Pools have their own properties (`reserve_props.rs`); none are generated here.
            Command::SetReserves { .. } | Command::ReleaseReserves { .. } => {
                unreachable!("no pools in this model")
            }
            // Offers have their own properties (`offer_props.rs`).
            Command::AcceptOffer { .. }
            | Command::DeclineOffer { .. }
            | Command::ExpireOffers { .. } => unreachable!("auto mode in this model"),
            // Skipped students have their own properties (`blocked_props.rs`).
            Command::SetBlocked { .. } => unreachable!("nobody is skipped in this model"),
        }
    }
}

/// Everything observable about a ledger through its public API.
#[derive(Clone, Debug, PartialEq, Eq)]
struct View {
    counts: Counts,
    enrolled: BTreeSet<StudentId>,
    held: BTreeSet<StudentId>,
    waitlist: Vec<StudentId>,
    next_seq: i64,
    /// Each waiting student's request, and the section they leave when seated.
    waiting: std::collections::BTreeMap<StudentId, (RequestId, Option<SectionId>)>,
}

fn view(ledger: &SeatLedger) -> View {
    View {
        counts: ledger.counts(),
        enrolled: ledger.enrolled().collect(),
        held: ledger.held().map(|(s, _)| s).collect(),
        waitlist: ledger.waitlist().collect(),
        next_seq: ledger.next_seq(),
        waiting: (0..POOL)
            .filter_map(|i| {
                let s = student(i);
                let request = ledger.waiting_request(s)?;
                Some((s, (request, ledger.replacing(s))))
            })
            .collect(),
    }
}

/// The change a promotion of `p` makes, as `before` says they wait.
fn promotion(before: &View, p: StudentId) -> ChangeKind {
    match before.waiting.get(&p) {
        Some((request, Some(leave))) => ChangeKind::PromotedHeld {
            student: p,
            decision: DecisionId::of_replace(*request),
            leave: *leave,
        },
        _ => ChangeKind::Promoted { student: p },
    }
}

/// The invariants of one ledger state, and its agreement with the model.
fn check_state(ledger: &SeatLedger, model: &Model) -> Result<(), TestCaseError> {
    let v = view(ledger);
    let c = v.counts;
    prop_assert!(c.seats_taken <= c.capacity, "seats over capacity: {c:?}");
    prop_assert!(
        c.waitlist_length <= c.waitlist_capacity,
        "waitlist over capacity: {c:?}"
    );
    prop_assert!(
        c.waitlist_length == 0 || c.seats_taken == c.capacity,
        "someone waits while a seat is free: {c:?}"
    );
    prop_assert_eq!(c.seats_taken as usize, v.enrolled.len() + v.held.len());
    prop_assert!(
        v.held.is_disjoint(&v.enrolled),
        "a student is both enrolled and holding a seat"
    );
    prop_assert_eq!(c.waitlist_length as usize, v.waitlist.len());
    let waiting: BTreeSet<StudentId> = v.waitlist.iter().copied().collect();
    prop_assert_eq!(waiting.len(), v.waitlist.len(), "a student waits twice");
    prop_assert!(
        waiting.is_disjoint(&v.enrolled) && waiting.is_disjoint(&v.held),
        "a student is both waitlisted and seated"
    );
    for i in 0..POOL {
        let s = student(i);
        let expected = if v.enrolled.contains(&s) {
            Some(Placement::Enrolled)
        } else if v.held.contains(&s) {
            Some(Placement::Held)
        } else if waiting.contains(&s) {
            Some(Placement::Waitlisted)
        } else {
            None
        };
        prop_assert_eq!(ledger.placement(s), expected);
        let position = v
            .waitlist
            .iter()
            .position(|w| *w == s)
            .map(|p| p as u32 + 1);
        prop_assert_eq!(ledger.position(s), position);
    }
    // Agreement with the reference model (FIFO order included).
    let model_waitlist: Vec<StudentId> = model.waitlist.iter().map(|(s, _)| *s).collect();
    prop_assert_eq!(
        &v.waitlist,
        &model_waitlist,
        "waitlist order differs from FIFO"
    );
    let model_enrolled: BTreeSet<StudentId> = model.enrolled.keys().copied().collect();
    prop_assert_eq!(&v.enrolled, &model_enrolled);
    let model_held: BTreeSet<StudentId> = model.held.keys().copied().collect();
    prop_assert_eq!(&v.held, &model_held);
    prop_assert_eq!(c.capacity, model.capacity);
    prop_assert_eq!(c.waitlist_capacity, model.waitlist_capacity);
    Ok(())
}

/// Apply `counts` the effect of one change, forwards.
fn step_counts(mut counts: Counts, kind: &ChangeKind) -> Counts {
    match *kind {
        ChangeKind::ReservesChanged { .. } | ChangeKind::Blocked { .. } => {}
        ChangeKind::Offered { .. }
        | ChangeKind::OfferAccepted { .. }
        | ChangeKind::OfferEnded { .. } => {
            unreachable!("auto mode in this model")
        }
        ChangeKind::Enrolled { .. } => counts.seats_taken += 1,
        ChangeKind::Waitlisted { .. } => counts.waitlist_length += 1,
        ChangeKind::Dropped {
            from: Placement::Enrolled,
            ..
        } => counts.seats_taken -= 1,
        ChangeKind::Dropped {
            from: Placement::Waitlisted,
            ..
        } => counts.waitlist_length -= 1,
        ChangeKind::Dropped {
            from: Placement::Held | Placement::Offered,
            ..
        } => panic!("a drop never takes a held or offered seat"),
        ChangeKind::Held { .. } => counts.seats_taken += 1,
        ChangeKind::Released { .. } => counts.seats_taken -= 1,
        ChangeKind::Confirmed { .. } => {}
        ChangeKind::Promoted { .. } | ChangeKind::PromotedHeld { .. } => {
            counts.seats_taken += 1;
            counts.waitlist_length -= 1;
        }
        ChangeKind::CapacityChanged { to, .. } => counts.capacity = to,
    }
    counts
}

/// The change kinds an accepted, non-replayed outcome must produce, in order.
fn expected_kinds(command: &Command, outcome: &Outcome, before: &View) -> Vec<ChangeKind> {
    match (command, outcome) {
        (Command::Enroll { student, .. }, Outcome::Enrolled) => {
            vec![ChangeKind::Enrolled { student: *student }]
        }
        (Command::Enroll { student, .. }, Outcome::Waitlisted { position }) => {
            vec![ChangeKind::Waitlisted {
                student: *student,
                seq: before.next_seq,
                position: *position,
                replacing: None,
            }]
        }
        (
            Command::Replace {
                student,
                request,
                drop,
                ..
            },
            Outcome::Held,
        ) => vec![ChangeKind::Held {
            student: *student,
            decision: DecisionId::of_replace(*request),
            leave: Some(*drop),
        }],
        (Command::Replace { student, drop, .. }, Outcome::Waitlisted { position }) => {
            vec![ChangeKind::Waitlisted {
                student: *student,
                seq: before.next_seq,
                position: *position,
                replacing: Some(*drop),
            }]
        }
        (
            Command::Drop { student, .. },
            Outcome::Dropped {
                from,
                promoted,
                withdrawn,
            },
        ) => {
            let mut kinds = vec![ChangeKind::Dropped {
                student: *student,
                from: *from,
                withdrawn: *withdrawn,
            }];
            kinds.extend(promoted.map(|p| promotion(before, p)));
            kinds
        }
        (
            Command::Hold {
                student, decision, ..
            },
            Outcome::Held,
        ) => vec![ChangeKind::Held {
            student: *student,
            decision: *decision,
            leave: None,
        }],
        (
            Command::Confirm {
                student, decision, ..
            },
            Outcome::Confirmed,
        ) => vec![ChangeKind::Confirmed {
            student: *student,
            decision: *decision,
        }],
        (Command::Release { .. }, Outcome::Released { held: false, .. }) => vec![],
        (
            Command::Release {
                student, decision, ..
            },
            Outcome::Released {
                held: true,
                promoted,
            },
        ) => {
            let mut kinds = vec![ChangeKind::Released {
                student: *student,
                decision: *decision,
            }];
            kinds.extend(promoted.map(|p| promotion(before, p)));
            kinds
        }
        (Command::SetCapacity { capacity, .. }, Outcome::CapacityChanged { promoted }) => {
            let mut kinds = vec![ChangeKind::CapacityChanged {
                from: before.counts.capacity,
                to: *capacity,
            }];
            kinds.extend(promoted.iter().map(|p| promotion(before, *p)));
            kinds
        }
        (command, outcome) => panic!("outcome {outcome:?} does not fit command {command:?}"),
    }
}

/// Check one decision against the state before and after it and against the model.
fn check_decision(
    command: &Command,
    decision: &Decision,
    before: &View,
    after: &View,
    expected: &(Result<Outcome, Refusal>, bool),
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        &decision.outcome,
        &expected.0,
        "outcome differs from the model"
    );
    prop_assert_eq!(
        decision.replay,
        expected.1,
        "replay flag differs from the model"
    );

    let outcome = match &decision.outcome {
        Err(_) => {
            prop_assert!(decision.changes.is_empty(), "a refusal produced changes");
            prop_assert_eq!(before, after, "a refusal changed the ledger");
            return Ok(());
        }
        Ok(_) if decision.replay => {
            prop_assert!(decision.changes.is_empty(), "a replay produced changes");
            prop_assert_eq!(before, after, "a replay changed the ledger");
            return Ok(());
        }
        Ok(outcome) => outcome,
    };

    // Exactly the changes the outcome implies, all for this request.
    let kinds: Vec<ChangeKind> = decision.changes.iter().map(|c| c.kind.clone()).collect();
    prop_assert_eq!(kinds, expected_kinds(command, outcome, before));
    for change in &decision.changes {
        prop_assert_eq!(change.request, command.request());
    }

    // FIFO, independently of the model: the promoted are the oldest waiting, in order.
    let promoted: Vec<StudentId> = decision
        .changes
        .iter()
        .filter_map(|c| match c.kind {
            ChangeKind::Promoted { student } | ChangeKind::PromotedHeld { student, .. } => {
                Some(student)
            }
            _ => None,
        })
        .collect();
    prop_assert!(
        before.waitlist.starts_with(&promoted),
        "promoted {:?} are not the head of the waitlist {:?}",
        promoted,
        before.waitlist
    );

    // Counts stamped on each change: the state right after that change.
    let mut counts = before.counts;
    for change in &decision.changes {
        counts = step_counts(counts, &change.kind);
        prop_assert_eq!(
            change.counts,
            counts,
            "wrong counts stamped on {:?}",
            change.kind
        );
    }
    match decision.changes.last() {
        Some(last) => prop_assert_eq!(
            last.counts,
            after.counts,
            "last change's counts != ledger.counts()"
        ),
        // A release of a hold that never came: accepted, nothing to give back.
        None => prop_assert_eq!(before, after, "an acceptance without changes changed it"),
    }

    // The waitlist seq is handed out once and never reused.
    let waitlisted = matches!(outcome, Outcome::Waitlisted { .. });
    let next = before.next_seq + i64::from(waitlisted);
    prop_assert_eq!(after.next_seq, next);
    Ok(())
}

/// Run `ops` on a fresh ledger, checking everything; returns the ledger and every change.
fn run(
    capacity: u32,
    waitlist_capacity: u32,
    ops: &[Op],
) -> Result<(SeatLedger, Vec<registrar_actors::Change>), TestCaseError> {
    let mut ledger = SeatLedger::new(capacity, waitlist_capacity);
    let mut model = Model::new(capacity, waitlist_capacity);
    let mut sender = Sender::default();
    let mut first: HashMap<RequestId, Result<Outcome, Refusal>> = HashMap::new();
    let mut previous: Option<(Command, Result<Outcome, Refusal>)> = None;
    let mut all_changes = Vec::new();
    check_state(&ledger, &model)?;
    for op in ops {
        let Some(command) = sender.command(op) else {
            continue;
        };
        // Whether the placement this request created still stands (enrolled, possibly by
        // promotion, or still waiting): then a re-send must be answered as a replay.
        let request = command.request();
        let stands = command.student().is_some_and(|s| {
            model.enrolled.get(&s) == Some(&request)
                || model.waitlist.iter().any(|w| *w == (s, request))
        });
        let before = view(&ledger);
        let decision = ledger.apply(&command);
        let after = view(&ledger);
        let expected = model.apply(&command);
        check_decision(&command, &decision, &before, &after, &expected)?;
        check_state(&ledger, &model)?;

        if let Command::Enroll { .. } = command {
            match first.get(&request) {
                // A re-sent request is answered exactly as the first time, deciding nothing.
                Some(was) => {
                    prop_assert!(decision.replay, "re-send re-decided");
                    prop_assert_eq!(&decision.outcome, was, "re-send answered differently");
                }
                None => {
                    prop_assert!(!stands && !decision.replay);
                    first.insert(request, decision.outcome.clone());
                }
            }
            // Sent twice in a row: the very same answer, whatever it was, and no change.
            if let Some((prev, prev_outcome)) = &previous
                && *prev == command
            {
                prop_assert_eq!(&decision.outcome, prev_outcome, "immediate re-send differs");
                prop_assert!(decision.changes.is_empty());
            }
        }
        previous = Some((command.clone(), decision.outcome.clone()));
        all_changes.extend(decision.changes);
    }
    Ok((ledger, all_changes))
}

/// The rows a store holds after persisting `changes` (what `MemoryStore` and PostgreSQL keep):
/// enrolled students with their request, waitlist entries with seq, next seq, capacity.
struct Rows {
    capacity: u32,
    enrolled: HashMap<StudentId, RequestId>,
    held: HashMap<StudentId, RequestId>,
    waitlist: HashMap<StudentId, (i64, RequestId)>,
    replacing: HashMap<StudentId, SectionId>,
    next_seq: i64,
}

fn persist(capacity: u32, changes: &[registrar_actors::Change]) -> Rows {
    let mut rows = Rows {
        capacity,
        enrolled: HashMap::new(),
        held: HashMap::new(),
        waitlist: HashMap::new(),
        replacing: HashMap::new(),
        next_seq: 1,
    };
    for change in changes {
        match change.kind {
            ChangeKind::ReservesChanged { .. } | ChangeKind::Blocked { .. } => {}
            ChangeKind::Offered { .. }
            | ChangeKind::OfferAccepted { .. }
            | ChangeKind::OfferEnded { .. } => {
                unreachable!("auto mode in this model")
            }
            ChangeKind::Enrolled { student } => {
                assert!(rows.enrolled.insert(student, change.request).is_none());
            }
            ChangeKind::Waitlisted {
                student,
                seq,
                replacing,
                ..
            } => {
                assert!(
                    rows.waitlist
                        .insert(student, (seq, change.request))
                        .is_none()
                );
                if let Some(leave) = replacing {
                    rows.replacing.insert(student, leave);
                }
                rows.next_seq = rows.next_seq.max(seq + 1);
            }
            ChangeKind::Dropped { student, .. } => {
                // The row of a waitlist place goes with its "drop if enrolled".
                rows.replacing.remove(&student);
                let gone = rows.enrolled.remove(&student).is_some()
                    || rows.waitlist.remove(&student).is_some();
                assert!(gone, "drop of a missing row");
            }
            ChangeKind::Promoted { student } => {
                // The seat keeps the request that waitlisted the student.
                let (_, request) = rows
                    .waitlist
                    .remove(&student)
                    .expect("promotion of a missing row");
                rows.enrolled.insert(student, request);
            }
            ChangeKind::PromotedHeld { student, .. } => {
                let (_, request) = rows
                    .waitlist
                    .remove(&student)
                    .expect("promotion of a missing row");
                rows.replacing.remove(&student);
                rows.held.insert(student, request);
            }
            ChangeKind::Held { student, .. } => {
                assert!(rows.held.insert(student, change.request).is_none());
            }
            ChangeKind::Confirmed { student, .. } => {
                let hold = rows
                    .held
                    .remove(&student)
                    .expect("confirm of a missing hold");
                rows.enrolled.insert(student, hold);
            }
            ChangeKind::Released { student, .. } => {
                assert!(
                    rows.held.remove(&student).is_some(),
                    "release of a missing hold"
                );
            }
            ChangeKind::CapacityChanged { to, .. } => rows.capacity = to,
        }
    }
    rows
}

/// Persist the changes of `prefix`, restore a ledger from the rows (in any order), and
/// check it decides every command of `suffix` exactly like the original.
fn check_restore(
    capacity: u32,
    waitlist_capacity: u32,
    prefix: &[Op],
    suffix: &[Op],
    reverse_rows: bool,
) -> Result<(), TestCaseError> {
    let (mut original, changes) = run(capacity, waitlist_capacity, prefix)?;
    let rows = persist(capacity, &changes);
    prop_assert_eq!(rows.next_seq, original.next_seq());

    // Rows come back in no particular order: the seq alone must order the waitlist.
    let mut enrolled: Vec<(StudentId, RequestId)> = rows.enrolled.into_iter().collect();
    let held: Vec<(StudentId, RequestId)> = rows.held.into_iter().collect();
    let replacing: Vec<(StudentId, SectionId)> = rows.replacing.into_iter().collect();
    let mut waitlist: Vec<WaitlistEntry> = rows
        .waitlist
        .into_iter()
        .map(|(student, (seq, request))| WaitlistEntry {
            seq,
            student,
            request,
        })
        .collect();
    enrolled.sort();
    waitlist.sort_by_key(|e| e.seq);
    if reverse_rows {
        enrolled.reverse();
        waitlist.reverse();
    }
    // Told a stale next seq, a restored ledger still never reuses a seq that is waiting
    // (a reused seq would overwrite that student's waitlist entry).
    let highest = waitlist.iter().map(|e| e.seq).max();
    let stale = SeatLedger::restore(
        rows.capacity,
        waitlist_capacity,
        enrolled.clone(),
        waitlist.clone(),
        1,
    )
    .with_held(held.clone())
    .with_replacing(replacing.clone());
    prop_assert!(highest.is_none_or(|h| stale.next_seq() > h));
    prop_assert_eq!(
        stale.waitlist().collect::<Vec<_>>(),
        original.waitlist().collect::<Vec<_>>()
    );

    let mut restored = SeatLedger::restore(
        rows.capacity,
        waitlist_capacity,
        enrolled,
        waitlist,
        rows.next_seq,
    )
    .with_held(held)
    .with_replacing(replacing);
    prop_assert_eq!(view(&restored), view(&original));

    // Same future for new requests. Answers of past requests live in memory only, so a
    // re-send of a prefix request is left out (the HTTP layer's stored answers cover it).
    let mut sender = Sender::default();
    let mut before_restore = HashSet::new();
    for op in prefix {
        if let Some(c) = sender.command(op) {
            before_restore.insert(c.request());
        }
    }
    for op in suffix {
        let Some(command) = sender.command(op) else {
            continue;
        };
        if before_restore.contains(&command.request()) {
            continue;
        }
        let a = original.apply(&command);
        let b = restored.apply(&command);
        prop_assert_eq!(&b, &a, "restored ledger decided {:?} differently", command);
        prop_assert_eq!(view(&restored), view(&original));
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        // Next to this file (tests/ has no lib.rs for the default location to be found).
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ledger_keeps_its_invariants_and_matches_the_model(
        capacity in 0u32..=4,
        waitlist_capacity in 0u32..=4,
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        run(capacity, waitlist_capacity, &ops)?;
    }

    #[test]
    fn restored_ledger_decides_the_future_like_the_original(
        capacity in 0u32..=4,
        waitlist_capacity in 0u32..=4,
        prefix in proptest::collection::vec(op(), 0..60),
        suffix in proptest::collection::vec(op(), 0..60),
        reverse_rows in any::<bool>(),
    ) {
        check_restore(capacity, waitlist_capacity, &prefix, &suffix, reverse_rows)?;
    }
}
