//! The seat and waitlist rules of one section, as a plain value with no I/O.
//!
//! [`SeatLedger::apply`] decides one [`Command`] and returns the [`Outcome`] (or a
//! [`Refusal`]) plus the [`Change`]s to persist. The section actor applies a whole batch of
//! commands to its ledger, then writes all the changes in one transaction. Invariants
//! (property-tested in `tests/ledger_props.rs`):
//! - `seats_taken <= capacity` and `waitlist_length <= waitlist_capacity`;
//! - a student is enrolled, waitlisted or holds a seat for a decision, never two of them;
//! - a held seat counts against the capacity like an enrollment, and becomes one only by
//!   [`Command::Confirm`];
//! - a reserved pool never seats more students than its seats, and seats held back by the
//!   pools are taken only by students who match them ([`reserve`]);
//! - nobody waits while a seat they may take is free, unless they are skipped
//!   ([`Command::SetBlocked`]: their rules no longer let them take it; they keep their place);
//! - the waitlist is FIFO: a freed seat always goes to the oldest waiting entry who may
//!   take it (the head, unless the seat is a pool's the head does not match);
//! - in offer mode ([`WaitlistMode::Offer`]) that student is offered the seat instead: it
//!   is held for them (counted as taken) until they accept, decline or the offer expires,
//!   and then goes to the next; the time is the ledger's clock ([`SeatLedger::set_clock`]);
//! - a capacity permit ([`CapacityPermit`]) seats its student beyond the capacity by
//!   growing it by one while they hold the seat: `seats_taken <= capacity` still holds,
//!   and the capacity minus those students is what the section offers everyone else.

mod decisions;
mod reserve;

pub use decisions::*;
pub use reserve::ReservePool;

use crate::attributes::Attribute;
use crate::ids::{DecisionId, PermitId, PoolId, RequestId, SectionId, StudentId};
use chrono::{DateTime, Utc};
use reserve::{Reserves, Seat};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// How many recent requests a ledger remembers the answer of (see [`SeatLedger::apply`]).
pub const RECENT_REQUESTS: usize = 4096;

/// The in-memory seat state of one section.
#[derive(Clone, Debug)]
pub struct SeatLedger {
    capacity: u32,
    waitlist_capacity: u32,
    /// Enrolled students and the request that gave each one the seat (for replays).
    enrolled: HashMap<StudentId, RequestId>,
    /// Seats held for decisions under way, with the hold's request (kept as the
    /// enrollment's request once confirmed).
    held: HashMap<StudentId, RequestId>,
    /// Waitlisted students who leave another section when they get a seat here.
    replacing: HashMap<StudentId, SectionId>,
    /// The waitlist in FIFO order, keyed by `seq`.
    waitlist: BTreeMap<i64, (StudentId, RequestId)>,
    /// Student → waitlist seq, for O(1) membership.
    waiting: HashMap<StudentId, i64>,
    /// The next waitlist seq; never reused, even across restarts.
    next_seq: i64,
    /// Answers of the most recent requests, so a re-sent request (a caller that timed out
    /// and retried with the same request id) gets the first answer and nothing is decided
    /// twice. Bounded; refilled from the store's recent accepted decisions on restore
    /// ([`Self::remember`]); a refusal is remembered only in memory.
    recent: HashMap<RequestId, Result<Outcome, Refusal>>,
    /// Insertion order of `recent`, for eviction.
    recent_order: VecDeque<RequestId>,
    /// Reserved seat pools, who sits in them, and what waiting students could match.
    reserves: Reserves,
    /// How a freed seat goes to the waitlist.
    mode: WaitlistMode,
    /// Seats offered (offer mode): the student's waitlist request and when the offer ends.
    offered: HashMap<StudentId, (RequestId, DateTime<Utc>)>,
    /// Now, by the store's clock, for the decisions being made (offers' expiry).
    clock: DateTime<Utc>,
    /// Students seated beyond the capacity by a capacity permit: each adds one to
    /// `capacity` while enrolled.
    over: HashSet<StudentId>,
    /// Waiting students skipped at promotion, with the code of the rule they fail.
    blocked: HashMap<StudentId, String>,
}

impl SeatLedger {
    /// An empty section.
    pub fn new(capacity: u32, waitlist_capacity: u32) -> Self {
        Self::restore(capacity, waitlist_capacity, Vec::new(), Vec::new(), 1)
    }

    /// Rebuild from persisted state. `next_seq` must exceed every seq ever issued.
    pub fn restore(
        capacity: u32,
        waitlist_capacity: u32,
        enrolled: Vec<(StudentId, RequestId)>,
        waitlist: Vec<WaitlistEntry>,
        next_seq: i64,
    ) -> Self {
        let mut ledger = Self {
            capacity,
            waitlist_capacity,
            enrolled: enrolled.into_iter().collect(),
            held: HashMap::new(),
            replacing: HashMap::new(),
            waitlist: BTreeMap::new(),
            waiting: HashMap::new(),
            next_seq,
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            reserves: Reserves::default(),
            mode: WaitlistMode::Auto,
            offered: HashMap::new(),
            clock: DateTime::UNIX_EPOCH,
            over: HashSet::new(),
            blocked: HashMap::new(),
        };
        for e in waitlist {
            ledger.waitlist.insert(e.seq, (e.student, e.request));
            ledger.waiting.insert(e.student, e.seq);
            ledger.next_seq = ledger.next_seq.max(e.seq + 1);
        }
        ledger
    }

    /// The enrolled students seated beyond the capacity by a capacity permit, as persisted
    /// (the persisted capacity already counts them).
    pub fn with_over_capacity(mut self, over: Vec<StudentId>) -> Self {
        self.over
            .extend(over.into_iter().filter(|s| self.enrolled.contains_key(s)));
        self
    }

    /// The waiting students skipped at promotion, as persisted.
    pub fn with_blocked(mut self, blocked: Vec<(StudentId, String)>) -> Self {
        self.blocked.extend(
            blocked
                .into_iter()
                .filter(|(s, _)| self.waiting.contains_key(s)),
        );
        self
    }

    /// Why `student` is skipped at promotion, if they are.
    pub fn blocked(&self, student: StudentId) -> Option<&str> {
        self.blocked.get(&student).map(String::as_str)
    }

    /// Students enrolled beyond the capacity by a capacity permit.
    pub fn over_capacity(&self) -> impl Iterator<Item = StudentId> + '_ {
        self.over.iter().copied()
    }

    /// The seats held for decisions under way, as persisted (see [`Command::Hold`]).
    pub fn with_held(mut self, held: Vec<(StudentId, RequestId)>) -> Self {
        self.held.extend(held);
        self
    }

    /// The sections waitlisted students leave when they get a seat here, as persisted.
    pub fn with_replacing(mut self, replacing: Vec<(StudentId, SectionId)>) -> Self {
        self.replacing.extend(
            replacing
                .into_iter()
                .filter(|(s, _)| self.waiting.contains_key(s)),
        );
        self
    }

    /// The reserved pools as persisted: `seated` students' seats count against them, and
    /// `waiting` students wait with these attributes.
    pub fn with_reserves(
        mut self,
        pools: Vec<ReservePool>,
        seated: Vec<(StudentId, PoolId)>,
        waiting: Vec<(StudentId, Vec<Attribute>)>,
    ) -> Self {
        self.reserves = Reserves::restore(pools, seated);
        self.reserves.with_waiting(
            waiting
                .into_iter()
                .filter(|(s, _)| self.waiting.contains_key(s))
                .collect(),
        );
        self
    }

    /// Give out freed seats by `mode`.
    pub fn with_mode(mut self, mode: WaitlistMode) -> Self {
        self.mode = mode;
        self
    }

    /// The seats offered, as persisted: (student, their waitlist request, offer end).
    pub fn with_offers(mut self, offers: Vec<(StudentId, RequestId, DateTime<Utc>)>) -> Self {
        self.offered
            .extend(offers.into_iter().map(|(s, r, at)| (s, (r, at))));
        self
    }

    /// How freed seats go to the waitlist.
    pub fn mode(&self) -> WaitlistMode {
        self.mode
    }

    /// The offers standing: (student, when each ends).
    pub fn offers(&self) -> impl Iterator<Item = (StudentId, DateTime<Utc>)> + '_ {
        self.offered.iter().map(|(s, (_, at))| (*s, *at))
    }

    /// Set now, by the store's clock, for the next decisions (an offer made ends a window
    /// after it). Never moves back.
    pub fn set_clock(&mut self, now: DateTime<Utc>) {
        self.clock = self.clock.max(now);
    }

    /// The reserved pools.
    pub fn reserve_pools(&self) -> &[ReservePool] {
        self.reserves.pools()
    }

    /// Seats of `pool` in use.
    pub fn reserve_taken(&self, pool: PoolId) -> u32 {
        self.reserves.taken_of(pool)
    }

    /// The pool `student`'s seat counts against, if any.
    pub fn pool_of(&self, student: StudentId) -> Option<PoolId> {
        self.reserves.pool_of(student)
    }

    /// The request that holds `student`'s waitlist place, if they wait.
    pub fn waiting_request(&self, student: StudentId) -> Option<RequestId> {
        let seq = self.waiting.get(&student)?;
        self.waitlist.get(seq).map(|(_, r)| *r)
    }

    /// The section `student` leaves when they get a seat here, if they wait with one.
    pub fn replacing(&self, student: StudentId) -> Option<SectionId> {
        self.replacing.get(&student).copied()
    }

    /// Remember answers decided before this ledger was restored (newest first, as
    /// [`SectionSnapshot::decided`](crate::store::SectionSnapshot) has them), so a request
    /// sent again is replayed, not decided twice. Keeps at most [`RECENT_REQUESTS`].
    pub fn remember(&mut self, decided: &[(RequestId, Outcome)]) {
        for (request, outcome) in decided.iter().take(RECENT_REQUESTS).rev() {
            self.note(*request, Ok(outcome.clone()));
        }
    }

    fn note(&mut self, request: RequestId, answer: Result<Outcome, Refusal>) {
        if self.recent.contains_key(&request) {
            return;
        }
        if self.recent_order.len() >= RECENT_REQUESTS
            && let Some(old) = self.recent_order.pop_front()
        {
            self.recent.remove(&old);
        }
        self.recent.insert(request, answer);
        self.recent_order.push_back(request);
    }

    /// From now on answer the hold `hold` with [`Refusal::DecisionEnded`], even a copy of
    /// one decided before: its seat was given back.
    fn ended(&mut self, hold: RequestId) {
        match self.recent.get_mut(&hold) {
            Some(answer) => *answer = Err(Refusal::DecisionEnded),
            None => self.note(hold, Err(Refusal::DecisionEnded)),
        }
    }

    /// Whether `command`'s request was decided already (so [`Self::apply`] would replay
    /// it): remembered, or the request that holds the student's place.
    pub fn has_decided(&self, command: &Command) -> bool {
        let request = command.request();
        if self.recent.contains_key(&request) {
            return true;
        }
        let Some(student) = command.student() else {
            return false;
        };
        self.enrolled.get(&student) == Some(&request)
            || self.held.get(&student) == Some(&request)
            || self
                .offered
                .get(&student)
                .is_some_and(|(r, _)| *r == request)
            || self
                .waiting
                .get(&student)
                .is_some_and(|seq| self.waitlist.get(seq).is_some_and(|(_, r)| *r == request))
    }

    /// Current counters.
    pub fn counts(&self) -> Counts {
        Counts {
            seats_taken: self.taken(),
            capacity: self.capacity,
            waitlist_length: self.waitlist.len() as u32,
            waitlist_capacity: self.waitlist_capacity,
            reserved_seats_left: self.held_back(),
        }
    }

    /// Free seats the pools hold back (never more than the free seats).
    fn held_back(&self) -> u32 {
        self.reserves
            .free()
            .min(self.capacity.saturating_sub(self.taken()))
    }

    /// The seat a student with `attrs` may take now, if any: a matching pool's first, else
    /// one the pools do not hold back.
    fn seat_for(&self, attrs: &[Attribute]) -> Option<Seat> {
        let taken = self.taken();
        if taken >= self.capacity {
            return None;
        }
        if let Some(pool) = self.reserves.pick(attrs) {
            return Some(Seat::Pool(pool));
        }
        (taken + self.reserves.free() < self.capacity).then_some(Seat::General)
    }

    /// Why a student with no seat to take is refused one: the seats left are reserved, or
    /// there are none.
    fn no_seat(&self) -> Refusal {
        let left = self.capacity.saturating_sub(self.taken());
        if left == 0 {
            return Refusal::SectionFull;
        }
        let for_whom = self
            .reserves
            .pools()
            .iter()
            .filter(|p| !p.released && self.reserves.taken_of(p.id) < p.seats)
            .map(|p| p.attribute.clone())
            .collect();
        Refusal::SeatsReserved { left, for_whom }
    }

    /// Seats taken: enrolled, held, and offered.
    fn taken(&self) -> u32 {
        (self.enrolled.len() + self.held.len() + self.offered.len()) as u32
    }

    /// Where `student` stands, if anywhere.
    pub fn placement(&self, student: StudentId) -> Option<Placement> {
        if self.enrolled.contains_key(&student) {
            Some(Placement::Enrolled)
        } else if self.held.contains_key(&student) {
            Some(Placement::Held)
        } else if self.waiting.contains_key(&student) {
            Some(Placement::Waitlisted)
        } else if self.offered.contains_key(&student) {
            Some(Placement::Offered)
        } else {
            None
        }
    }

    /// The 1-based waitlist position of `student`.
    pub fn position(&self, student: StudentId) -> Option<u32> {
        let seq = *self.waiting.get(&student)?;
        Some(self.waitlist.range(..=seq).count() as u32)
    }

    /// The waitlist, oldest first.
    pub fn waitlist(&self) -> impl Iterator<Item = StudentId> + '_ {
        self.waitlist.values().map(|(s, _)| *s)
    }

    /// Students with a seat held for a decision, and the hold's request (unordered).
    pub fn held(&self) -> impl Iterator<Item = (StudentId, RequestId)> + '_ {
        self.held.iter().map(|(s, r)| (*s, *r))
    }

    /// Enrolled students (unordered).
    pub fn enrolled(&self) -> impl Iterator<Item = StudentId> + '_ {
        self.enrolled.keys().copied()
    }

    /// The next waitlist sequence number to hand out.
    pub fn next_seq(&self) -> i64 {
        self.next_seq
    }

    /// Decide one command, updating the ledger. A request id seen before (among the last
    /// [`RECENT_REQUESTS`]) is answered as it was the first time, changing nothing.
    pub fn apply(&mut self, command: &Command) -> Decision {
        let request = command.request();
        if let Some(first) = self.recent.get(&request) {
            return Decision {
                outcome: first.clone(),
                changes: Vec::new(),
                replay: true,
            };
        }
        let decision = self.decide(command);
        if !decision.replay {
            self.note(request, decision.outcome.clone());
        }
        decision
    }

    fn decide(&mut self, command: &Command) -> Decision {
        match *command {
            Command::Enroll {
                student,
                request,
                seat_only,
                ref attrs,
                ref permits,
                capacity_permit,
            } => {
                let d = self.enroll(student, request, seat_only, None, attrs, capacity_permit);
                with_permits(d, permits)
            }
            Command::Replace {
                student,
                request,
                drop,
                ref attrs,
                ref permits,
            } => with_permits(self.replace(student, request, drop, attrs), permits),
            Command::Drop {
                student,
                request,
                seat,
            } => self.drop_student(student, request, seat),
            Command::Hold {
                student,
                request,
                decision,
                ref attrs,
                ref permits,
            } => with_permits(self.hold(student, request, decision, attrs), permits),
            Command::Confirm {
                student,
                request,
                hold,
                decision,
            } => self.confirm(student, request, hold, decision),
            Command::Release {
                student,
                request,
                hold,
                decision,
            } => self.release(student, request, hold, decision),
            Command::SetCapacity { capacity, request } => self.set_capacity(capacity, request),
            Command::SetReserves { ref pools, request } => self.set_reserves(pools, request),
            Command::ReleaseReserves { now, request } => self.release_reserves(now, request),
            Command::AcceptOffer { student, request } => self.accept_offer(student, request),
            Command::DeclineOffer { student, request } => {
                if !self.offered.contains_key(&student) {
                    return refuse(Refusal::NoOffer);
                }
                self.drop_student(student, request, SeatDrop::Plain)
            }
            Command::ExpireOffers { now, request } => self.expire_offers(now, request),
            Command::SetBlocked {
                student,
                ref reason,
                request,
            } => self.set_blocked(student, reason.clone(), request),
        }
    }

    fn set_blocked(
        &mut self,
        student: StudentId,
        reason: Option<String>,
        request: RequestId,
    ) -> Decision {
        if !self.waiting.contains_key(&student) {
            return refuse(Refusal::NotEnrolled);
        }
        if self.blocked.get(&student) == reason.as_ref() {
            return self.accept(Outcome::BlockChanged { promoted: vec![] }, vec![]);
        }
        match &reason {
            Some(r) => self.blocked.insert(student, r.clone()),
            None => self.blocked.remove(&student),
        };
        let mut kinds = vec![(ChangeKind::Blocked { student, reason }, request)];
        let promoted = self.promote_all(&mut kinds, request);
        self.accept(Outcome::BlockChanged { promoted }, kinds)
    }

    fn accept_offer(&mut self, student: StudentId, request: RequestId) -> Decision {
        let Some((held_by, _)) = self.offered.remove(&student) else {
            return refuse(match self.enrolled.contains_key(&student) {
                true => Refusal::AlreadyEnrolled,
                false => Refusal::NoOffer,
            });
        };
        // The seat keeps the request that queued for it (replays recognise it).
        self.enrolled.insert(student, held_by);
        let kind = ChangeKind::OfferAccepted { student };
        self.accept(Outcome::Enrolled, vec![(kind, request)])
    }

    fn expire_offers(&mut self, now: DateTime<Utc>, request: RequestId) -> Decision {
        self.set_clock(now);
        let mut expired: Vec<StudentId> = self
            .offered
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(s, _)| *s)
            .collect();
        if expired.is_empty() {
            let outcome = Outcome::OffersExpired {
                expired,
                promoted: Vec::new(),
            };
            return Decision {
                outcome: Ok(outcome),
                changes: Vec::new(),
                replay: false,
            };
        }
        expired.sort();
        let mut kinds = Vec::with_capacity(expired.len() * 2);
        for s in &expired {
            self.offered.remove(s);
            self.reserves.give_back(*s);
            let kind = ChangeKind::OfferEnded {
                student: *s,
                expired: true,
            };
            kinds.push((kind, request));
        }
        let promoted = self.promote_all(&mut kinds, request);
        self.accept(Outcome::OffersExpired { expired, promoted }, kinds)
    }

    fn replace(
        &mut self,
        student: StudentId,
        request: RequestId,
        drop: SectionId,
        attrs: &[Attribute],
    ) -> Decision {
        let decision = DecisionId::of_replace(request);
        // A copy of a request whose seat was held (or confirmed since) is answered again.
        if self.held.get(&student) == Some(&request)
            || self.enrolled.get(&student) == Some(&request)
        {
            return replay(Outcome::Held);
        }
        if self.offered.contains_key(&student) {
            return refuse(Refusal::AlreadyOffered);
        }
        if !self.enrolled.contains_key(&student)
            && !self.waiting.contains_key(&student)
            && !self.held.contains_key(&student)
            && let Some(seat) = self.seat_for(attrs)
        {
            self.held.insert(student, request);
            self.reserves.take(student, seat);
            let kind = ChangeKind::Held {
                student,
                decision,
                leave: Some(drop),
            };
            return self.accept(Outcome::Held, vec![(kind, request)]);
        }
        self.enroll(student, request, false, Some(drop), attrs, None)
    }

    fn enroll(
        &mut self,
        student: StudentId,
        request: RequestId,
        seat_only: bool,
        replacing: Option<SectionId>,
        attrs: &[Attribute],
        capacity_permit: Option<CapacityPermit>,
    ) -> Decision {
        if let Some(&original) = self.enrolled.get(&student) {
            return if original == request {
                replay(Outcome::Enrolled)
            } else {
                refuse(Refusal::AlreadyEnrolled)
            };
        }
        if let Some(&seq) = self.waiting.get(&student) {
            let (_, original) = self.waitlist[&seq];
            return if original == request {
                let position = self.position(student).unwrap_or(0);
                replay(Outcome::Waitlisted { position })
            } else {
                refuse(Refusal::AlreadyWaitlisted)
            };
        }
        if self.held.contains_key(&student) {
            return refuse(Refusal::AlreadyHeld);
        }
        if self.offered.contains_key(&student) {
            return refuse(Refusal::AlreadyOffered);
        }
        if let Some(seat) = self.seat_for(attrs) {
            self.enrolled.insert(student, request);
            self.reserves.take(student, seat);
            let kind = ChangeKind::Enrolled { student };
            return self.accept(Outcome::Enrolled, vec![(kind, request)]);
        }
        if let Some(p) = capacity_permit.filter(|p| p.jump_waitlist || self.waitlist.is_empty()) {
            // The student's own seat beyond the capacity (see `CapacityPermit`).
            self.capacity += 1;
            self.over.insert(student);
            self.enrolled.insert(student, request);
            self.reserves.take(student, Seat::General);
            let kind = ChangeKind::Enrolled { student };
            let mut d = self.accept(Outcome::Enrolled, vec![(kind, request)]);
            d.changes[0].permits.push(p.permit);
            d.changes[0].over_capacity = true;
            return d;
        }
        if seat_only || self.waitlist.len() as u32 >= self.waitlist_capacity {
            return refuse(self.no_seat());
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.waitlist.insert(seq, (student, request));
        self.waiting.insert(student, seq);
        self.reserves.wait(student, attrs);
        if let Some(section) = replacing {
            self.replacing.insert(student, section);
        }
        let position = self.waitlist.len() as u32;
        let kind = ChangeKind::Waitlisted {
            student,
            seq,
            position,
            replacing,
        };
        self.accept(Outcome::Waitlisted { position }, vec![(kind, request)])
    }

    fn hold(
        &mut self,
        student: StudentId,
        request: RequestId,
        decision: DecisionId,
        attrs: &[Attribute],
    ) -> Decision {
        match (self.held.get(&student), self.enrolled.get(&student)) {
            (Some(&h), _) if h == request => return replay(Outcome::Held),
            (Some(_), _) => return refuse(Refusal::AlreadyHeld),
            // Confirmed already: a late copy of the hold.
            (None, Some(&e)) if e == request => return replay(Outcome::Held),
            (None, Some(_)) => return refuse(Refusal::AlreadyEnrolled),
            (None, None) => {}
        }
        if self.waiting.contains_key(&student) {
            return refuse(Refusal::AlreadyWaitlisted);
        }
        if self.offered.contains_key(&student) {
            return refuse(Refusal::AlreadyOffered);
        }
        let Some(seat) = self.seat_for(attrs) else {
            return refuse(self.no_seat());
        };
        self.held.insert(student, request);
        self.reserves.take(student, seat);
        let kind = ChangeKind::Held {
            student,
            decision,
            leave: None,
        };
        self.accept(Outcome::Held, vec![(kind, request)])
    }

    fn confirm(
        &mut self,
        student: StudentId,
        request: RequestId,
        hold: RequestId,
        decision: DecisionId,
    ) -> Decision {
        if self.enrolled.get(&student) == Some(&hold) {
            return replay(Outcome::Confirmed);
        }
        if self.held.get(&student) != Some(&hold) {
            return refuse(Refusal::NotHeld);
        }
        self.held.remove(&student);
        self.enrolled.insert(student, hold);
        let kind = ChangeKind::Confirmed { student, decision };
        self.accept(Outcome::Confirmed, vec![(kind, request)])
    }

    fn release(
        &mut self,
        student: StudentId,
        request: RequestId,
        hold: RequestId,
        decision: DecisionId,
    ) -> Decision {
        if self.enrolled.get(&student) == Some(&hold) {
            return refuse(Refusal::AlreadyConfirmed);
        }
        // From now on a copy of the hold is refused: late (it never arrived) or not.
        self.ended(hold);
        if self.held.get(&student) != Some(&hold) {
            let outcome = Outcome::Released {
                held: false,
                promoted: None,
            };
            return Decision {
                outcome: Ok(outcome),
                changes: Vec::new(),
                replay: false,
            };
        }
        self.held.remove(&student);
        self.reserves.give_back(student);
        let mut kinds = vec![(ChangeKind::Released { student, decision }, request)];
        let promoted = self.promote_one().map(|(p, kind)| {
            kinds.push((kind, request));
            p
        });
        let outcome = Outcome::Released {
            held: true,
            promoted,
        };
        self.accept(outcome, kinds)
    }

    fn drop_student(&mut self, student: StudentId, request: RequestId, seat: SeatDrop) -> Decision {
        // Past the last day to withdraw a seat stays; a waitlist place (below) may still go.
        if seat == SeatDrop::Closed && self.enrolled.contains_key(&student) {
            return refuse(Refusal::DropDeadlinePassed);
        }
        if self.enrolled.remove(&student).is_some() {
            self.reserves.give_back(student);
            // A seat beyond the capacity was the student's own: it goes with them.
            if self.over.remove(&student) {
                self.capacity -= 1;
            }
            let withdrawn = seat == SeatDrop::Withdraw;
            let mut kinds = vec![(
                ChangeKind::Dropped {
                    student,
                    from: Placement::Enrolled,
                    withdrawn,
                },
                request,
            )];
            let promoted = self.promote_one().map(|(p, kind)| {
                kinds.push((kind, request));
                p
            });
            let outcome = Outcome::Dropped {
                from: Placement::Enrolled,
                promoted,
                withdrawn,
            };
            return self.accept(outcome, kinds);
        }
        if self.offered.remove(&student).is_some() {
            self.reserves.give_back(student);
            let kind = ChangeKind::OfferEnded {
                student,
                expired: false,
            };
            let mut kinds = vec![(kind, request)];
            let promoted = self.promote_all(&mut kinds, request);
            // An offer is a waitlist place still: turning it down leaves no record.
            let outcome = Outcome::Dropped {
                from: Placement::Offered,
                promoted: promoted.first().copied(),
                withdrawn: false,
            };
            return self.accept(outcome, kinds);
        }
        if let Some(seq) = self.waiting.remove(&student) {
            self.waitlist.remove(&seq);
            self.replacing.remove(&student);
            self.blocked.remove(&student);
            self.reserves.stop_waiting(student);
            let kind = ChangeKind::Dropped {
                student,
                from: Placement::Waitlisted,
                withdrawn: false,
            };
            let outcome = Outcome::Dropped {
                from: Placement::Waitlisted,
                promoted: None,
                withdrawn: false,
            };
            return self.accept(outcome, vec![(kind, request)]);
        }
        refuse(Refusal::NotEnrolled)
    }

    fn set_capacity(&mut self, capacity: u32, request: RequestId) -> Decision {
        // `capacity` is what the section offers; seats beyond it by permit stay on top.
        let over = self.over.len() as u32;
        let taken = self.taken();
        if capacity + over < taken {
            return refuse(Refusal::CapacityBelowTaken {
                requested: capacity,
                seats_taken: taken - over,
            });
        }
        let from = self.capacity;
        self.capacity = capacity + over;
        let mut kinds = vec![(ChangeKind::CapacityChanged { from, to: capacity }, request)];
        let promoted = self.promote_all(&mut kinds, request);
        self.accept(Outcome::CapacityChanged { promoted }, kinds)
    }

    fn set_reserves(&mut self, pools: &[ReservePool], request: RequestId) -> Decision {
        let reserved: u32 = pools.iter().filter(|p| !p.released).map(|p| p.seats).sum();
        if reserved > self.capacity {
            return refuse(Refusal::ReservedAboveCapacity {
                reserved,
                capacity: self.capacity,
            });
        }
        if let Some((p, taken)) = pools
            .iter()
            .map(|p| (p, self.reserves.taken_of(p.id)))
            .find(|(p, taken)| *taken > p.seats)
        {
            return refuse(Refusal::ReservedBelowTaken {
                attribute: p.attribute.clone(),
                seats: p.seats,
                taken,
            });
        }
        self.reserves.replace(pools.to_vec());
        self.reserves_changed(request)
    }

    fn release_reserves(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
        request: RequestId,
    ) -> Decision {
        if !self.reserves.release_due(now) {
            return Decision {
                outcome: Ok(Outcome::ReservesChanged {
                    promoted: Vec::new(),
                }),
                changes: Vec::new(),
                replay: false,
            };
        }
        self.reserves_changed(request)
    }

    /// The pools changed: record them and seat every waiting student who may now sit.
    fn reserves_changed(&mut self, request: RequestId) -> Decision {
        let pools = self.reserves.pools().to_vec();
        let mut kinds = vec![(ChangeKind::ReservesChanged { pools }, request)];
        let promoted = self.promote_all(&mut kinds, request);
        self.accept(Outcome::ReservesChanged { promoted }, kinds)
    }

    /// Promote while a waiting student may take a free seat; the promoted, in order.
    fn promote_all(
        &mut self,
        kinds: &mut Vec<(ChangeKind, RequestId)>,
        request: RequestId,
    ) -> Vec<StudentId> {
        let mut promoted = Vec::new();
        while let Some((p, kind)) = self.promote_one() {
            promoted.push(p);
            kinds.push((kind, request));
        }
        promoted
    }

    /// The reserved pools' seats left, per pool not released: `(pool, seats left)`.
    pub fn reserve_left(&self) -> impl Iterator<Item = (PoolId, u32)> + '_ {
        self.reserves
            .pools()
            .iter()
            .filter(|p| !p.released)
            .map(|p| (p.id, p.seats.saturating_sub(self.reserves.taken_of(p.id))))
    }

    /// Move the oldest waiting student who may take a free seat to it, if any: the head,
    /// unless the only free seats are a pool's it does not match. A student waiting with
    /// "drop if enrolled" gets the seat held for the decision of its request instead (see
    /// [`Command::Replace`]). The change to persist comes with it.
    fn promote_one(&mut self) -> Option<(StudentId, ChangeKind)> {
        if self.taken() >= self.capacity {
            return None;
        }
        let (seq, seat) = self
            .waitlist
            .iter()
            .filter(|(_, (student, _))| !self.blocked.contains_key(student))
            .find_map(|(seq, (student, _))| {
                self.seat_for(self.reserves.waiting_attrs(*student))
                    .map(|seat| (*seq, seat))
            })?;
        let (student, request) = self.waitlist.remove(&seq)?;
        self.waiting.remove(&student);
        self.reserves.stop_waiting(student);
        self.reserves.take(student, seat);
        match self.replacing.remove(&student) {
            Some(leave) => {
                self.held.insert(student, request);
                let decision = DecisionId::of_replace(request);
                let kind = ChangeKind::PromotedHeld {
                    student,
                    decision,
                    leave,
                };
                Some((student, kind))
            }
            None => match self.mode {
                WaitlistMode::Auto => {
                    self.enrolled.insert(student, request);
                    Some((student, ChangeKind::Promoted { student }))
                }
                WaitlistMode::Offer { window_secs } => {
                    let expires_at = self.clock + chrono::TimeDelta::seconds(window_secs.into());
                    self.offered.insert(student, (request, expires_at));
                    Some((
                        student,
                        ChangeKind::Offered {
                            student,
                            expires_at,
                        },
                    ))
                }
            },
        }
    }

    /// Build the decision, stamping each change with the counters as they stood right after
    /// it: replaying the kinds backwards from the final counts gives each intermediate state.
    fn accept(&self, outcome: Outcome, kinds: Vec<(ChangeKind, RequestId)>) -> Decision {
        let mut counts = self.counts();
        let mut changes: Vec<Change> = Vec::with_capacity(kinds.len());
        for (kind, request) in kinds.into_iter().rev() {
            let pool = match kind {
                ChangeKind::Enrolled { student }
                | ChangeKind::Held { student, .. }
                | ChangeKind::PromotedHeld { student, .. }
                | ChangeKind::Offered { student, .. }
                | ChangeKind::Promoted { student } => self.reserves.pool_of(student),
                _ => None,
            };
            changes.push(Change {
                kind: kind.clone(),
                request,
                counts,
                pool,
                permits: Vec::new(),
                over_capacity: false,
            });
            match kind {
                ChangeKind::Enrolled { .. } => counts.seats_taken -= 1,
                ChangeKind::Waitlisted { .. } => counts.waitlist_length -= 1,
                ChangeKind::Dropped { from, .. } => match from {
                    Placement::Enrolled | Placement::Held | Placement::Offered => {
                        counts.seats_taken += 1
                    }
                    Placement::Waitlisted => counts.waitlist_length += 1,
                },
                ChangeKind::Held { .. } => counts.seats_taken -= 1,
                ChangeKind::PromotedHeld { .. } => {
                    counts.seats_taken -= 1;
                    counts.waitlist_length += 1;
                }
                ChangeKind::Released { .. } => counts.seats_taken += 1,
                ChangeKind::Confirmed { .. } => {}
                ChangeKind::Promoted { .. } => {
                    counts.seats_taken -= 1;
                    counts.waitlist_length += 1;
                }
                ChangeKind::CapacityChanged { from, .. } => counts.capacity = from,
                ChangeKind::ReservesChanged { .. }
                | ChangeKind::OfferAccepted { .. }
                | ChangeKind::Blocked { .. } => {}
                ChangeKind::Offered { .. } => {
                    counts.seats_taken -= 1;
                    counts.waitlist_length += 1;
                }
                ChangeKind::OfferEnded { .. } => counts.seats_taken += 1,
            }
        }
        changes.reverse();
        Decision {
            outcome: Ok(outcome),
            changes,
            replay: false,
        }
    }
}

/// `decision` with `permits` recorded on the change that took the student's place (its
/// first), when it took one.
fn with_permits(mut decision: Decision, permits: &[PermitId]) -> Decision {
    if let Some(first) = decision.changes.first_mut() {
        first.permits.extend_from_slice(permits);
    }
    decision
}

fn replay(outcome: Outcome) -> Decision {
    Decision {
        outcome: Ok(outcome),
        changes: Vec::new(),
        replay: true,
    }
}

fn refuse(refusal: Refusal) -> Decision {
    Decision {
        outcome: Err(refusal),
        changes: Vec::new(),
        replay: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enroll(l: &mut SeatLedger, s: StudentId) -> Decision {
        l.apply(&Command::Enroll {
            student: s,
            request: RequestId::new_v4(),
            seat_only: false,
            attrs: Vec::new(),
            permits: Vec::new(),
            capacity_permit: None,
        })
    }

    #[test]
    fn fills_seats_then_waitlist_then_refuses() {
        let mut l = SeatLedger::new(2, 1);
        let s: Vec<_> = (0..4).map(|_| StudentId::new_v4()).collect();
        assert_eq!(enroll(&mut l, s[0]).outcome, Ok(Outcome::Enrolled));
        assert_eq!(enroll(&mut l, s[1]).outcome, Ok(Outcome::Enrolled));
        assert_eq!(
            enroll(&mut l, s[2]).outcome,
            Ok(Outcome::Waitlisted { position: 1 })
        );
        assert_eq!(enroll(&mut l, s[3]).outcome, Err(Refusal::SectionFull));
        assert_eq!(enroll(&mut l, s[0]).outcome, Err(Refusal::AlreadyEnrolled));
        assert_eq!(
            enroll(&mut l, s[2]).outcome,
            Err(Refusal::AlreadyWaitlisted)
        );
    }

    #[test]
    fn remembered_decisions_are_replayed_after_a_restore() {
        let s = StudentId::new_v4();
        let (gone, kept) = (RequestId::new_v4(), RequestId::new_v4());
        let left = Outcome::Dropped {
            from: Placement::Enrolled,
            promoted: None,
            withdrawn: false,
        };
        // Restored with the student gone: the drop that took them out is still known.
        let mut l = SeatLedger::new(1, 0);
        l.remember(&[(gone, left.clone()), (kept, Outcome::Enrolled)]);
        let again = l.apply(&Command::Drop {
            student: s,
            request: gone,
            seat: SeatDrop::Plain,
        });
        assert!(again.replay && again.changes.is_empty());
        assert_eq!(again.outcome, Ok(left));
        // A new drop request is decided: the student has no place.
        let fresh = l.apply(&Command::Drop {
            student: s,
            request: RequestId::new_v4(),
            seat: SeatDrop::Plain,
        });
        assert_eq!(fresh.outcome, Err(Refusal::NotEnrolled));
        // Bounded like the live memory: the newest are kept.
        let many: Vec<_> = (0..RECENT_REQUESTS + 10)
            .map(|_| (RequestId::new_v4(), Outcome::Enrolled))
            .collect();
        let mut l = SeatLedger::new(1, 0);
        l.remember(&many);
        assert_eq!(l.recent.len(), RECENT_REQUESTS);
        assert!(l.recent.contains_key(&many[0].0), "newest first: kept");
        assert!(!l.recent.contains_key(&many[RECENT_REQUESTS].0));
    }

    #[test]
    fn same_request_is_replayed_not_redecided() {
        let mut l = SeatLedger::new(1, 0);
        let s = StudentId::new_v4();
        let cmd = Command::Enroll {
            student: s,
            request: RequestId::new_v4(),
            seat_only: false,
            attrs: Vec::new(),
            permits: Vec::new(),
            capacity_permit: None,
        };
        let first = l.apply(&cmd);
        let again = l.apply(&cmd);
        assert_eq!(first.outcome, again.outcome);
        assert!(again.replay && again.changes.is_empty());
        assert_eq!(l.counts().seats_taken, 1);
    }

    #[test]
    fn drop_promotes_head_and_stamps_counts() {
        let mut l = SeatLedger::new(1, 5);
        let (a, b, c) = (
            StudentId::new_v4(),
            StudentId::new_v4(),
            StudentId::new_v4(),
        );
        enroll(&mut l, a);
        enroll(&mut l, b);
        enroll(&mut l, c);
        let d = l.apply(&Command::Drop {
            student: a,
            request: RequestId::new_v4(),
            seat: SeatDrop::Plain,
        });
        assert_eq!(
            d.outcome,
            Ok(Outcome::Dropped {
                from: Placement::Enrolled,
                promoted: Some(b),
                withdrawn: false,
            })
        );
        assert_eq!(d.changes.len(), 2);
        assert_eq!(d.changes[0].counts.seats_taken, 0);
        assert_eq!(d.changes[0].counts.waitlist_length, 2);
        assert_eq!(d.changes[1].counts.seats_taken, 1);
        assert_eq!(d.changes[1].counts.waitlist_length, 1);
        assert_eq!(l.position(c), Some(1));
    }

    #[test]
    fn capacity_never_below_taken_and_raise_promotes_in_order() {
        let mut l = SeatLedger::new(1, 5);
        let s: Vec<_> = (0..4).map(|_| StudentId::new_v4()).collect();
        for &x in &s {
            enroll(&mut l, x);
        }
        let low = l.apply(&Command::SetCapacity {
            capacity: 0,
            request: RequestId::new_v4(),
        });
        assert_eq!(low.outcome.unwrap_err().code(), "capacity_below_taken");
        let raise = l.apply(&Command::SetCapacity {
            capacity: 3,
            request: RequestId::new_v4(),
        });
        assert_eq!(
            raise.outcome,
            Ok(Outcome::CapacityChanged {
                promoted: vec![s[1], s[2]]
            })
        );
        assert_eq!(l.counts().seats_taken, 3);
        assert_eq!(l.position(s[3]), Some(1));
    }

    #[test]
    fn retried_drop_and_capacity_change_are_answered_not_redecided() {
        let mut l = SeatLedger::new(1, 0);
        let s = StudentId::new_v4();
        enroll(&mut l, s);
        let drop = Command::Drop {
            student: s,
            request: RequestId::new_v4(),
            seat: SeatDrop::Plain,
        };
        let first = l.apply(&drop);
        let again = l.apply(&drop);
        assert_eq!(first.outcome, again.outcome, "not not_enrolled");
        assert!(again.replay && again.changes.is_empty());
        let cap = Command::SetCapacity {
            capacity: 5,
            request: RequestId::new_v4(),
        };
        assert_eq!(l.apply(&cap).changes.len(), 1);
        assert!(l.apply(&cap).changes.is_empty(), "no second capacity event");
    }

    #[test]
    fn seat_only_enroll_never_waitlists() {
        let mut l = SeatLedger::new(0, 10);
        let d = l.apply(&Command::Enroll {
            student: StudentId::new_v4(),
            request: RequestId::new_v4(),
            seat_only: true,
            attrs: Vec::new(),
            permits: Vec::new(),
            capacity_permit: None,
        });
        assert_eq!(d.outcome, Err(Refusal::SectionFull));
        assert_eq!(l.counts().waitlist_length, 0);
    }

    fn enroll_with(l: &mut SeatLedger, s: StudentId, permit: Option<CapacityPermit>) -> Decision {
        l.apply(&Command::Enroll {
            student: s,
            request: RequestId::new_v4(),
            seat_only: false,
            attrs: Vec::new(),
            permits: Vec::new(),
            capacity_permit: permit,
        })
    }

    fn capacity_permit(jump_waitlist: bool) -> Option<CapacityPermit> {
        Some(CapacityPermit {
            permit: PermitId::new_v4(),
            jump_waitlist,
        })
    }

    #[test]
    fn a_capacity_permit_adds_its_own_seat_only_when_needed() {
        let mut l = SeatLedger::new(1, 5);
        // A free seat: taken as usual, the permit unused.
        let d = enroll_with(&mut l, StudentId::new_v4(), capacity_permit(false));
        assert!(d.changes[0].permits.is_empty() && !d.changes[0].over_capacity);
        // Full, nobody waiting: a seat of the student's own.
        let p = StudentId::new_v4();
        let permit = capacity_permit(false);
        let d = enroll_with(&mut l, p, permit);
        assert_eq!(d.outcome, Ok(Outcome::Enrolled));
        assert_eq!(d.changes[0].permits, vec![permit.unwrap().permit]);
        assert!(d.changes[0].over_capacity);
        assert_eq!((l.counts().capacity, l.counts().seats_taken), (2, 2));
        // Someone waits: a permit that does not jump the waitlist waits too (unused); one
        // that does takes a seat of its own.
        let w = StudentId::new_v4();
        assert_eq!(
            enroll_with(&mut l, w, None).outcome,
            Ok(Outcome::Waitlisted { position: 1 })
        );
        let d = enroll_with(&mut l, StudentId::new_v4(), capacity_permit(false));
        assert_eq!(d.outcome, Ok(Outcome::Waitlisted { position: 2 }));
        assert!(d.changes[0].permits.is_empty());
        let j = StudentId::new_v4();
        assert_eq!(
            enroll_with(&mut l, j, capacity_permit(true)).outcome,
            Ok(Outcome::Enrolled)
        );
        assert_eq!((l.counts().capacity, l.counts().seats_taken), (3, 3));
        // The admin's capacity is what the section offers: the two permit seats stay on top,
        // and raising it by one promotes the head.
        let raise = l.apply(&Command::SetCapacity {
            capacity: 2,
            request: RequestId::new_v4(),
        });
        assert_eq!(
            raise.outcome,
            Ok(Outcome::CapacityChanged { promoted: vec![w] })
        );
        assert_eq!(l.counts().capacity, 4);
        // A permit seat leaves with its student: nobody is promoted.
        let drop = l.apply(&Command::Drop {
            student: p,
            request: RequestId::new_v4(),
            seat: SeatDrop::Plain,
        });
        assert!(matches!(
            drop.outcome,
            Ok(Outcome::Dropped { promoted: None, .. })
        ));
        assert_eq!((l.counts().capacity, l.counts().seats_taken), (3, 3));
        // A restored ledger knows whose seats are their own.
        let restored = SeatLedger::restore(
            3,
            5,
            l.enrolled.iter().map(|(s, r)| (*s, *r)).collect(),
            Vec::new(),
            10,
        )
        .with_over_capacity(vec![j]);
        assert_eq!(restored.over_capacity().collect::<Vec<_>>(), vec![j]);
    }

    #[test]
    fn a_skipped_student_keeps_their_place_and_is_passed_over() {
        let mut l = SeatLedger::new(1, 5);
        let a = StudentId::new_v4();
        let (b, c) = (StudentId::new_v4(), StudentId::new_v4());
        for s in [a, b, c] {
            enroll(&mut l, s);
        }
        let block = |l: &mut SeatLedger, s, reason: Option<&str>| {
            l.apply(&Command::SetBlocked {
                student: s,
                reason: reason.map(str::to_string),
                request: RequestId::new_v4(),
            })
        };
        let d = block(&mut l, b, Some("student_on_hold"));
        assert_eq!(d.changes.len(), 1);
        // The same judgement again changes nothing.
        assert!(block(&mut l, b, Some("student_on_hold")).changes.is_empty());
        let drop = l.apply(&Command::Drop {
            student: a,
            request: RequestId::new_v4(),
            seat: SeatDrop::Plain,
        });
        assert!(matches!(drop.outcome, Ok(Outcome::Dropped { promoted: Some(p), .. }) if p == c));
        assert_eq!(l.position(b), Some(1));
        // Back in line with no seat free: still first, nothing promoted.
        let d = block(&mut l, b, None);
        assert_eq!(d.outcome, Ok(Outcome::BlockChanged { promoted: vec![] }));
        assert_eq!(l.blocked(b), None);
        // A seat freed while skipped is theirs the moment they are back in line.
        block(&mut l, b, Some("credit_limit_exceeded"));
        l.apply(&Command::Drop {
            student: c,
            request: RequestId::new_v4(),
            seat: SeatDrop::Plain,
        });
        assert_eq!(l.counts().seats_taken, 0);
        let d = block(&mut l, b, None);
        assert_eq!(d.outcome, Ok(Outcome::BlockChanged { promoted: vec![b] }));
        // Only a waiting student can be skipped.
        assert_eq!(
            block(&mut l, b, Some("x")).outcome,
            Err(Refusal::NotEnrolled)
        );
    }
}
