//! What a ledger decides about: the [`Command`]s it takes, the [`Outcome`] or [`Refusal`]
//! it answers, and the [`Change`]s a decision leaves to persist (each also one event).

use super::ReservePool;
use crate::attributes::Attribute;
use crate::ids::{DecisionId, PermitId, PoolId, RequestId, SectionId, StudentId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A command a section actor decides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Take a seat, or a waitlist place when the section is full.
    Enroll {
        /// Who enrolls.
        student: StudentId,
        /// The request, so a retry is answered without deciding twice.
        request: RequestId,
        /// Refuse instead of waitlisting (the add half of a swap needs a real seat).
        seat_only: bool,
        /// The student's attributes: a pool they match gives them a reserved seat.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attrs: Vec<Attribute>,
        /// Permits the student's rules relied on: recorded as used with the place taken.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        permits: Vec<PermitId>,
        /// A capacity permit of the student's for this section, used only if the section
        /// has no seat for them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capacity_permit: Option<CapacityPermit>,
    },
    /// Leave the section (seat or waitlist place); a freed seat promotes the waitlist head.
    Drop {
        /// Who drops.
        student: StudentId,
        /// The request.
        request: RequestId,
        /// What leaving a seat is now, by the term's deadlines (judged on the student's
        /// home by the database clock). Only the ledger knows whether the student holds a
        /// seat or a waitlist place (a promotion may turn one into the other at any
        /// moment), so the home sends its judgement and the ledger applies it to a seat.
        #[serde(default, skip_serializing_if = "SeatDrop::is_plain")]
        seat: SeatDrop,
    },
    /// Hold a seat for a decision over several sections: it counts against the capacity
    /// but is not an enrollment until confirmed. Never waitlists.
    Hold {
        /// Who the seat is held for.
        student: StudentId,
        /// The hold's own request id (derived from the decision and the section), which the
        /// confirm or release names.
        request: RequestId,
        /// The decision the hold belongs to.
        decision: DecisionId,
        /// The student's attributes (see [`Command::Enroll`]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attrs: Vec<Attribute>,
        /// Permits the student's rules relied on (see [`Command::Enroll`]); a released
        /// hold gives them back.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        permits: Vec<PermitId>,
    },
    /// Take a seat here and leave section `drop` (elsewhere) in one decision, or wait for
    /// a seat and do both when it comes (PeopleSoft's "drop if enrolled"). A free seat is
    /// held for the decision [`DecisionId::of_replace`] of `request`, recorded confirmed in
    /// the same commit; the confirm and the drop are owed from then on. A waitlisted
    /// student promoted later gets the same: a held seat and a confirmed decision.
    Replace {
        /// Who.
        student: StudentId,
        /// The request (the decision's id derives from it).
        request: RequestId,
        /// The section to leave once the seat is taken.
        drop: SectionId,
        /// The student's attributes (see [`Command::Enroll`]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attrs: Vec<Attribute>,
        /// Permits the student's rules relied on (see [`Command::Enroll`]); a released
        /// hold gives them back.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        permits: Vec<PermitId>,
    },
    /// Turn the hold `hold` into an enrollment: its decision was confirmed.
    Confirm {
        /// Whose hold.
        student: StudentId,
        /// This command's request id.
        request: RequestId,
        /// The request id of the hold.
        hold: RequestId,
        /// The decision (carried into the events).
        decision: DecisionId,
    },
    /// Give the seat of the hold `hold` back (its decision was cancelled); a freed seat
    /// promotes the waitlist head. A release of a hold that never arrived is accepted and
    /// remembered, so the hold, if it comes late, is refused.
    Release {
        /// Whose hold.
        student: StudentId,
        /// This command's request id.
        request: RequestId,
        /// The request id of the hold.
        hold: RequestId,
        /// The decision (carried into the events).
        decision: DecisionId,
    },
    /// Change the capacity (admin); never below the seats taken; raising promotes.
    SetCapacity {
        /// The new capacity.
        capacity: u32,
        /// The request.
        request: RequestId,
    },
    /// Replace the reserved seat pools (admin); their seats together never above the
    /// capacity. Seats a smaller pool no longer holds back promote the waitlist.
    SetReserves {
        /// The pools, in the order a student matching several tries them.
        pools: Vec<ReservePool>,
        /// The request.
        request: RequestId,
    },
    /// Take the seat offered to the student (offer-mode sections): it becomes an
    /// enrollment. The student's rules were checked again by their home.
    AcceptOffer {
        /// Who.
        student: StudentId,
        /// The request.
        request: RequestId,
    },
    /// Turn down the seat offered: the student leaves the waitlist and the seat is offered
    /// to the next student who may take it.
    DeclineOffer {
        /// Who.
        student: StudentId,
        /// The request.
        request: RequestId,
    },
    /// End every offer whose time is up at `now` (by the database clock): each student
    /// leaves the waitlist and the seat is offered to the next.
    ExpireOffers {
        /// The time judged at.
        now: DateTime<Utc>,
        /// The request.
        request: RequestId,
    },
    /// Skip a waiting student at promotion (`reason`: the code of the rule they no longer
    /// pass, e.g. `student_on_hold`), or stop skipping them (`None`): their place in line
    /// is kept either way. Their home judged it when their rule inputs changed (a hold, a
    /// lower credit limit, other attributes); a seat free for them when they are no longer
    /// skipped is theirs at once.
    SetBlocked {
        /// Who.
        student: StudentId,
        /// Why they are skipped; `None`: they are not.
        reason: Option<String>,
        /// The request.
        request: RequestId,
    },
    /// Release every pool whose release time is at or before `now` (by the database
    /// clock): its unused seats join the general ones and promote the waitlist.
    ReleaseReserves {
        /// The time the release is judged at.
        now: DateTime<Utc>,
        /// The request.
        request: RequestId,
    },
}

impl Command {
    /// The request this command belongs to.
    pub fn request(&self) -> RequestId {
        match self {
            Command::Enroll { request, .. }
            | Command::Drop { request, .. }
            | Command::Hold { request, .. }
            | Command::Replace { request, .. }
            | Command::Confirm { request, .. }
            | Command::Release { request, .. }
            | Command::SetCapacity { request, .. }
            | Command::SetReserves { request, .. }
            | Command::AcceptOffer { request, .. }
            | Command::DeclineOffer { request, .. }
            | Command::ExpireOffers { request, .. }
            | Command::SetBlocked { request, .. }
            | Command::ReleaseReserves { request, .. } => *request,
        }
    }

    /// The student concerned, if any.
    pub fn student(&self) -> Option<StudentId> {
        match self {
            Command::Enroll { student, .. }
            | Command::Drop { student, .. }
            | Command::Hold { student, .. }
            | Command::Replace { student, .. }
            | Command::Confirm { student, .. }
            | Command::Release { student, .. }
            | Command::AcceptOffer { student, .. }
            | Command::SetBlocked { student, .. }
            | Command::DeclineOffer { student, .. } => Some(*student),
            Command::SetCapacity { .. }
            | Command::ExpireOffers { .. }
            | Command::SetReserves { .. }
            | Command::ReleaseReserves { .. } => None,
        }
    }

    /// A short stable name for the audit trail.
    pub fn action(&self) -> &'static str {
        match self {
            Command::Enroll { .. } => "enroll",
            Command::Drop { .. } => "drop",
            Command::Hold { .. } => "hold",
            Command::Replace { .. } => "replace",
            Command::Confirm { .. } => "confirm",
            Command::Release { .. } => "release",
            Command::SetCapacity { .. } => "set_capacity",
            Command::SetReserves { .. } => "set_reserves",
            Command::ReleaseReserves { .. } => "release_reserves",
            Command::AcceptOffer { .. } => "accept_offer",
            Command::DeclineOffer { .. } => "decline_offer",
            Command::ExpireOffers { .. } => "expire_offers",
            Command::SetBlocked { .. } => "set_blocked",
        }
    }
}

/// A capacity permit sent with an enroll: a seat beyond the capacity when the section has
/// none for the student. The seat is the student's own: the capacity grows by one while
/// they hold it and shrinks back when they leave, so nobody else's seat is taken and no
/// seat frees for the waitlist when they go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityPermit {
    /// The permit (recorded as used when it seats the student).
    pub permit: PermitId,
    /// Whether it seats the student ahead of students waiting; if not, a student who finds
    /// others waiting joins the waitlist like anyone else (the permit stays unused).
    pub jump_waitlist: bool,
}

/// What leaving a seat is at the time of a drop, by the term's deadlines
/// (`student_rules::seat_drop`). A waitlist place is left the same way whatever this says:
/// it was never a seat, so it leaves nothing on the record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatDrop {
    /// Before the drop deadline (or without one): the seat is left with no record.
    #[default]
    Plain,
    /// After the drop deadline, by the withdrawal deadline: the seat is left and the
    /// record keeps a W ([`ChangeKind::Dropped`] `withdrawn`).
    Withdraw,
    /// After the withdrawal deadline: a seat may no longer be left
    /// ([`Refusal::DropDeadlinePassed`]).
    Closed,
}

impl SeatDrop {
    /// Whether this is a drop with no record (the default, left out of the wire form so a
    /// plain drop reads as it always did).
    pub fn is_plain(&self) -> bool {
        *self == SeatDrop::Plain
    }
}

/// Where a student stands in a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Holds a seat.
    Enrolled,
    /// Waits for a seat.
    Waitlisted,
    /// Holds a seat for a decision under way (not enrolled yet).
    Held,
    /// Was offered a freed seat (offer-mode sections): it is held for them until they
    /// accept, decline or the offer expires.
    Offered,
}

/// How a section's waitlist gives out a freed seat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum WaitlistMode {
    /// The student who may take it gets it at once (enrolled).
    #[default]
    Auto,
    /// The seat is held for that student, who accepts or declines within `window_secs`;
    /// at expiry it passes to the next.
    Offer {
        /// How long an offer stands, in seconds.
        window_secs: u32,
    },
}

/// What an accepted command did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The student holds a seat.
    Enrolled,
    /// The student waits at this 1-based position.
    Waitlisted {
        /// 1 is next in line.
        position: u32,
    },
    /// The student left; a freed seat went to `promoted`.
    Dropped {
        /// What the student held before.
        from: Placement,
        /// The waitlist head that got the freed seat.
        promoted: Option<StudentId>,
        /// A seat left after the drop deadline: a withdrawal, with a W on the record.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        withdrawn: bool,
    },
    /// A seat is held for the decision.
    Held,
    /// The held seat is now an enrollment.
    Confirmed,
    /// The hold is gone: `held` says whether there was one to give back, and its freed seat
    /// went to `promoted`.
    Released {
        /// Whether a seat was held (false: the hold never arrived, and now never will).
        held: bool,
        /// The waitlist head that got the freed seat.
        promoted: Option<StudentId>,
    },
    /// The capacity changed; these waitlisted students got seats, in order.
    CapacityChanged {
        /// Promoted students, oldest first.
        promoted: Vec<StudentId>,
    },
    /// The reserved pools changed (replaced, or released at their time); these waitlisted
    /// students got the seats that freed, in order.
    ReservesChanged {
        /// Promoted students, oldest first.
        promoted: Vec<StudentId>,
    },
    /// A waiting student is skipped at promotion now, or no longer; these students got
    /// the seats free for them (a student no longer skipped, when a seat was waiting).
    BlockChanged {
        /// Promoted students, oldest first.
        promoted: Vec<StudentId>,
    },
    /// These offers expired; the seats went to these students (offered or promoted).
    OffersExpired {
        /// Whose offers expired.
        expired: Vec<StudentId>,
        /// Who got the seats, oldest first.
        promoted: Vec<StudentId>,
    },
}

/// Why a command was refused. Refusals change nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// No seat and no waitlist place left (or no seat for a seat-only enroll).
    #[error("the section and its waitlist are full")]
    SectionFull,
    /// The student already holds a seat here.
    #[error("already enrolled in this section")]
    AlreadyEnrolled,
    /// The student is already on this waitlist.
    #[error("already on this section's waitlist")]
    AlreadyWaitlisted,
    /// Drop of a student who is neither enrolled nor waitlisted.
    #[error("not enrolled in this section")]
    NotEnrolled,
    /// The student already holds a seat here for a decision under way.
    #[error("a seat in this section is held for a decision under way")]
    AlreadyHeld,
    /// A confirm of a hold this section does not have.
    #[error("no such held seat in this section")]
    NotHeld,
    /// A hold whose decision was already released here (it arrived late).
    #[error("the decision this hold belongs to has ended")]
    DecisionEnded,
    /// A release of a hold that was already confirmed: the decision row says otherwise.
    #[error("the held seat was confirmed already")]
    AlreadyConfirmed,
    /// The seats left are reserved for students with an attribute this one lacks (and
    /// there is no waitlist place, or the command takes no waitlist place).
    #[error(
        "the {left} {} left {} reserved for {}",
        if *left == 1 { "seat" } else { "seats" },
        if *left == 1 { "is" } else { "are" },
        names(for_whom)
    )]
    SeatsReserved {
        /// Seats left, all of them reserved.
        left: u32,
        /// Who they are reserved for.
        for_whom: Vec<Attribute>,
    },
    /// Pools that would set aside more seats than the section has.
    #[error("the pools reserve {reserved} seats, more than the capacity of {capacity}")]
    ReservedAboveCapacity {
        /// Seats the pools would reserve.
        reserved: u32,
        /// The capacity.
        capacity: u32,
    },
    /// The student has a seat offered here: accept or decline it.
    #[error("a seat in this section is offered to the student: accept or decline it")]
    AlreadyOffered,
    /// An accept or decline without a standing offer (none made, or it expired).
    #[error("no seat is offered to the student in this section")]
    NoOffer,
    /// A pool with fewer seats than students already seated in it.
    #[error("the pool for {attribute} would have {seats} seats, below the {taken} taken")]
    ReservedBelowTaken {
        /// The pool's attribute.
        attribute: Attribute,
        /// The seats asked for.
        seats: u32,
        /// Its seats taken now.
        taken: u32,
    },
    /// A seat dropped after the term's last day to withdraw (a waitlist place may still
    /// be left).
    #[error("the last day to withdraw from this section has passed")]
    DropDeadlinePassed,
    /// A capacity below the seats already taken.
    #[error("capacity {requested} is below the {seats_taken} seats taken")]
    CapacityBelowTaken {
        /// The capacity asked for.
        requested: u32,
        /// Seats taken now.
        seats_taken: u32,
    },
}

impl Refusal {
    /// The stable reason code (also the API error code).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::SectionFull => "section_full",
            Refusal::AlreadyEnrolled => "already_enrolled",
            Refusal::AlreadyWaitlisted => "already_waitlisted",
            Refusal::NotEnrolled => "not_enrolled",
            Refusal::AlreadyHeld => "already_held",
            Refusal::NotHeld => "not_held",
            Refusal::DecisionEnded => "decision_ended",
            Refusal::AlreadyConfirmed => "already_confirmed",
            Refusal::CapacityBelowTaken { .. } => "capacity_below_taken",
            Refusal::SeatsReserved { .. } => "seats_reserved",
            Refusal::ReservedAboveCapacity { .. } => "reserved_above_capacity",
            Refusal::ReservedBelowTaken { .. } => "reserved_below_taken",
            Refusal::AlreadyOffered => "already_offered",
            Refusal::NoOffer => "no_offer",
            Refusal::DropDeadlinePassed => "drop_deadline_passed",
        }
    }
}

/// The section's counters at some instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Seats taken: enrolled students and seats held for decisions under way.
    pub seats_taken: u32,
    /// Seats offered.
    pub capacity: u32,
    /// Students waiting.
    pub waitlist_length: u32,
    /// Waitlist places offered.
    pub waitlist_capacity: u32,
    /// Free seats only students matching a reserved pool may take (part of the free seats,
    /// `capacity - seats_taken`); after a whole decision, for every change of it.
    #[serde(default)]
    pub reserved_seats_left: u32,
}

/// One persisted effect of a decision; each becomes enrollment-row writes and one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The request that caused it.
    pub request: RequestId,
    /// The counters right after this change (events carry them).
    pub counts: Counts,
    /// For a change that seats a student (enrolled, held, promoted): the reserved pool the
    /// seat counts against, if any.
    pub pool: Option<PoolId>,
    /// Permits used by this change (the place an enroll, hold or replace took).
    pub permits: Vec<PermitId>,
    /// An enrollment beyond the capacity, by a capacity permit.
    pub over_capacity: bool,
}

/// The kinds of persisted effects; each maps to one event type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// `student` took a seat.
    Enrolled {
        /// Who.
        student: StudentId,
    },
    /// `student` joined the waitlist with this ordering key.
    Waitlisted {
        /// Who.
        student: StudentId,
        /// Monotonic per section: the FIFO order.
        seq: i64,
        /// 1-based position at the time of the decision.
        position: u32,
        /// The section to leave when the seat comes ("drop if enrolled").
        replacing: Option<SectionId>,
    },
    /// `student` left the section.
    Dropped {
        /// Who.
        student: StudentId,
        /// What they held.
        from: Placement,
        /// A seat left after the drop deadline: the row keeps a W (`withdrawn_at`), and the
        /// event is `enrollment.withdrawn`.
        withdrawn: bool,
    },
    /// A seat is held for `student` by `decision` (counted in `seats_taken`).
    Held {
        /// Who.
        student: StudentId,
        /// The decision.
        decision: DecisionId,
        /// For a [`Command::Replace`]: the section the decision leaves. The decision is
        /// then recorded, confirmed, in the same commit.
        leave: Option<SectionId>,
    },
    /// The waitlist head `student` got a seat, held for `decision`, which also leaves
    /// `leave` (they waited with "drop if enrolled"); recorded confirmed in the same commit.
    PromotedHeld {
        /// Who.
        student: StudentId,
        /// The decision.
        decision: DecisionId,
        /// The section it leaves.
        leave: SectionId,
    },
    /// `student`'s held seat became an enrollment.
    Confirmed {
        /// Who.
        student: StudentId,
        /// The decision.
        decision: DecisionId,
    },
    /// `student`'s held seat was given back.
    Released {
        /// Who.
        student: StudentId,
        /// The decision.
        decision: DecisionId,
    },
    /// `student` moved from the waitlist to a seat.
    Promoted {
        /// Who.
        student: StudentId,
    },
    /// The capacity changed.
    CapacityChanged {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// The waitlisted `student` is offered a freed seat until `expires_at` (counted in
    /// `seats_taken`: it is held for them).
    Offered {
        /// Who.
        student: StudentId,
        /// Until when.
        expires_at: DateTime<Utc>,
    },
    /// `student` accepted the seat offered: an enrollment.
    OfferAccepted {
        /// Who.
        student: StudentId,
    },
    /// `student`'s offer ended without a seat: declined, or `expired`. They leave the
    /// waitlist and the seat goes back.
    OfferEnded {
        /// Who.
        student: StudentId,
        /// True when its time ran out; false when declined.
        expired: bool,
    },
    /// The reserved pools changed: replaced by an admin or released at their time.
    ReservesChanged {
        /// The pools now.
        pools: Vec<ReservePool>,
    },
    /// The waiting `student` is skipped at promotion for `reason` (a rule's code), or no
    /// longer (`None`); their place in line is kept.
    Blocked {
        /// Who.
        student: StudentId,
        /// Why; `None`: no longer skipped.
        reason: Option<String>,
    },
}

impl ChangeKind {
    /// The student concerned, if any.
    pub fn student(&self) -> Option<StudentId> {
        match self {
            ChangeKind::Enrolled { student }
            | ChangeKind::Waitlisted { student, .. }
            | ChangeKind::Dropped { student, .. }
            | ChangeKind::Held { student, .. }
            | ChangeKind::PromotedHeld { student, .. }
            | ChangeKind::Confirmed { student, .. }
            | ChangeKind::Released { student, .. }
            | ChangeKind::Offered { student, .. }
            | ChangeKind::OfferAccepted { student }
            | ChangeKind::OfferEnded { student, .. }
            | ChangeKind::Blocked { student, .. }
            | ChangeKind::Promoted { student } => Some(*student),
            ChangeKind::CapacityChanged { .. } | ChangeKind::ReservesChanged { .. } => None,
        }
    }
}

/// The result of applying one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The answer for the caller.
    pub outcome: Result<Outcome, Refusal>,
    /// What to persist (empty for refusals and replays).
    pub changes: Vec<Change>,
    /// True when this request had already been decided: the answer is repeated, nothing changes.
    pub replay: bool,
}

impl ChangeKind {
    /// The multi-section decision this change belongs to, if any.
    pub fn decision(&self) -> Option<DecisionId> {
        match self {
            ChangeKind::Held { decision, .. }
            | ChangeKind::PromotedHeld { decision, .. }
            | ChangeKind::Confirmed { decision, .. }
            | ChangeKind::Released { decision, .. } => Some(*decision),
            _ => None,
        }
    }
}

/// A waitlisted student and the request that put them there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitlistEntry {
    /// FIFO ordering key.
    pub seq: i64,
    /// Who waits.
    pub student: StudentId,
    /// The request that waitlisted them.
    pub request: RequestId,
}

/// `major CS, cohort HONORS`, for messages.
pub(crate) fn names(attrs: &[Attribute]) -> String {
    let names: Vec<String> = attrs.iter().map(ToString::to_string).collect();
    names.join(", ")
}
