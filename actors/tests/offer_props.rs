//! Property tests of offer-mode waitlists in [`SeatLedger`]: a freed seat is offered to the
//! waitlist's head and held for them until they accept, decline or the offer's time runs
//! out, then offered to the next. Random enrolls, drops, accepts, declines, capacity
//! changes and the passing of time, checked step by step against a plain reference model:
//! - seats taken (enrolled and offered) never exceed the capacity;
//! - nobody waits while a seat is free and offered to no one;
//! - offers go out in waitlist order, each ending one window after it was made;
//! - an accept seats only a student with a standing offer, a decline or an expiry passes
//!   the seat on at once;
//! - a ledger restored from what is persisted (seats, offers with their ends, the waitlist)
//!   decides what follows exactly as the original.

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use registrar_actors::ledger::WaitlistMode;
use registrar_actors::{
    Command, Outcome, Placement, RequestId, SeatLedger, StudentId, WaitlistEntry,
};
use std::collections::{BTreeMap, VecDeque};
use uuid::Uuid;

const STUDENTS: usize = 7;
/// Minutes an offer stands.
const WINDOW: u8 = 10;

fn student(i: usize) -> StudentId {
    StudentId(Uuid::from_u128(0x0ffe_0000 + i as u128))
}

fn minute(m: u8) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + TimeDelta::days(20_000) + TimeDelta::minutes(m as i64)
}

#[derive(Clone, Debug)]
enum Op {
    Enroll(usize),
    Drop(usize),
    Accept(usize),
    Decline(usize),
    SetCapacity(u32),
    /// Time moves on by this many minutes; offers due end.
    Wait(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..STUDENTS).prop_map(Op::Enroll),
        2 => (0..STUDENTS).prop_map(Op::Drop),
        3 => (0..STUDENTS).prop_map(Op::Accept),
        1 => (0..STUDENTS).prop_map(Op::Decline),
        1 => (0u32..5).prop_map(Op::SetCapacity),
        2 => (0u8..12).prop_map(Op::Wait),
    ]
}

#[derive(Clone, Debug, Default)]
struct Model {
    capacity: u32,
    waitlist_capacity: u32,
    enrolled: Vec<usize>,
    /// Student → minute the offer ends.
    offered: BTreeMap<usize, u8>,
    waiting: VecDeque<usize>,
    now: u8,
}

impl Model {
    fn taken(&self) -> u32 {
        (self.enrolled.len() + self.offered.len()) as u32
    }

    /// Offer free seats to the head, in order; who got one.
    fn offer(&mut self) -> Vec<StudentId> {
        let mut out = Vec::new();
        while self.taken() < self.capacity {
            let Some(w) = self.waiting.pop_front() else {
                break;
            };
            self.offered.insert(w, self.now + WINDOW);
            out.push(student(w));
        }
        out
    }

    fn apply(&mut self, op: &Op) -> Result<Outcome, &'static str> {
        match *op {
            Op::Enroll(s) => {
                if self.enrolled.contains(&s) {
                    return Err("already_enrolled");
                }
                if self.waiting.contains(&s) {
                    return Err("already_waitlisted");
                }
                if self.offered.contains_key(&s) {
                    return Err("already_offered");
                }
                if self.taken() < self.capacity {
                    self.enrolled.push(s);
                    return Ok(Outcome::Enrolled);
                }
                if self.waiting.len() as u32 >= self.waitlist_capacity {
                    return Err("section_full");
                }
                self.waiting.push_back(s);
                Ok(Outcome::Waitlisted {
                    position: self.waiting.len() as u32,
                })
            }
            Op::Drop(s) | Op::Decline(s) => {
                let decline = matches!(op, Op::Decline(_));
                if self.offered.remove(&s).is_some() {
                    let promoted = self.offer().first().copied();
                    return Ok(Outcome::Dropped {
                        from: Placement::Offered,
                        promoted,
                        withdrawn: false,
                    });
                }
                if decline {
                    return Err("no_offer");
                }
                if let Some(k) = self.enrolled.iter().position(|x| *x == s) {
                    self.enrolled.remove(k);
                    let promoted = self.offer().first().copied();
                    return Ok(Outcome::Dropped {
                        from: Placement::Enrolled,
                        promoted,
                        withdrawn: false,
                    });
                }
                if let Some(k) = self.waiting.iter().position(|x| *x == s) {
                    self.waiting.remove(k);
                    return Ok(Outcome::Dropped {
                        from: Placement::Waitlisted,
                        promoted: None,
                        withdrawn: false,
                    });
                }
                Err("not_enrolled")
            }
            Op::Accept(s) => {
                if self.offered.remove(&s).is_some() {
                    self.enrolled.push(s);
                    return Ok(Outcome::Enrolled);
                }
                Err(if self.enrolled.contains(&s) {
                    "already_enrolled"
                } else {
                    "no_offer"
                })
            }
            Op::SetCapacity(c) => {
                if c < self.taken() {
                    return Err("capacity_below_taken");
                }
                self.capacity = c;
                Ok(Outcome::CapacityChanged {
                    promoted: self.offer(),
                })
            }
            Op::Wait(m) => {
                self.now += m;
                let now = self.now;
                let mut expired: Vec<StudentId> = self
                    .offered
                    .iter()
                    .filter(|(_, end)| **end <= now)
                    .map(|(s, _)| student(*s))
                    .collect();
                self.offered.retain(|_, end| *end > now);
                expired.sort();
                let promoted = if expired.is_empty() {
                    Vec::new()
                } else {
                    self.offer()
                };
                Ok(Outcome::OffersExpired { expired, promoted })
            }
        }
    }
}

fn command(op: &Op, n: usize, now: u8) -> Command {
    let request = RequestId(Uuid::from_u128(0x7e57_0000 + n as u128));
    match *op {
        Op::Enroll(s) => Command::Enroll {
            student: student(s),
            request,
            seat_only: false,
            attrs: Vec::new(),
            permits: Vec::new(),
            capacity_permit: None,
        },
        Op::Drop(s) => Command::Drop {
            student: student(s),
            request,
            seat: Default::default(),
        },
        Op::Accept(s) => Command::AcceptOffer {
            student: student(s),
            request,
        },
        Op::Decline(s) => Command::DeclineOffer {
            student: student(s),
            request,
        },
        Op::SetCapacity(capacity) => Command::SetCapacity { capacity, request },
        Op::Wait(m) => Command::ExpireOffers {
            now: minute(now + m),
            request,
        },
    }
}

fn check_state(ledger: &SeatLedger, model: &Model) -> Result<(), TestCaseError> {
    let counts = ledger.counts();
    prop_assert!(counts.seats_taken <= counts.capacity);
    prop_assert_eq!(counts.seats_taken, model.taken());
    let waitlist: Vec<StudentId> = ledger.waitlist().collect();
    let expected: Vec<StudentId> = model.waiting.iter().map(|w| student(*w)).collect();
    prop_assert_eq!(waitlist, expected, "waitlist order");
    let mut offers: Vec<(StudentId, DateTime<Utc>)> = ledger.offers().collect();
    offers.sort();
    let want: Vec<(StudentId, DateTime<Utc>)> = model
        .offered
        .iter()
        .map(|(s, end)| (student(*s), minute(*end)))
        .collect();
    prop_assert_eq!(offers, want, "offers and their ends");
    if !model.waiting.is_empty() {
        prop_assert!(
            model.taken() >= model.capacity,
            "someone waits beside a free seat"
        );
    }
    for s in model.offered.keys() {
        prop_assert_eq!(ledger.placement(student(*s)), Some(Placement::Offered));
    }
    Ok(())
}

fn restored(ledger: &SeatLedger, model: &Model) -> SeatLedger {
    let enrolled = ledger
        .enrolled()
        .map(|s| (s, RequestId::new_v4()))
        .collect();
    let waitlist: Vec<WaitlistEntry> = ledger
        .waitlist()
        .enumerate()
        .map(|(k, s)| WaitlistEntry {
            seq: 10 + k as i64,
            student: s,
            request: RequestId::new_v4(),
        })
        .collect();
    let offers = ledger
        .offers()
        .map(|(s, at)| (s, RequestId::new_v4(), at))
        .collect();
    let counts = ledger.counts();
    let mut copy = SeatLedger::restore(
        counts.capacity,
        counts.waitlist_capacity,
        enrolled,
        waitlist,
        100,
    )
    .with_mode(ledger.mode())
    .with_offers(offers);
    copy.set_clock(minute(model.now));
    copy
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    })]

    #[test]
    fn offers_go_in_order_and_pass_on_at_once(
        capacity in 0u32..4,
        waitlist_capacity in 0u32..5,
        ops in prop::collection::vec(op(), 1..60),
        after in prop::collection::vec(op(), 1..20),
    ) {
        let mode = WaitlistMode::Offer { window_secs: u32::from(WINDOW) * 60 };
        let mut ledger = SeatLedger::new(capacity, waitlist_capacity).with_mode(mode);
        ledger.set_clock(minute(0));
        let mut model = Model { capacity, waitlist_capacity, ..Model::default() };
        for (n, op) in ops.iter().enumerate() {
            let cmd = command(op, n, model.now);
            let d = ledger.apply(&cmd);
            let want = model.apply(op);
            match (&d.outcome, &want) {
                (Ok(got), Ok(want)) => prop_assert_eq!(got, want, "step {} {:?}", n, op),
                (Err(r), Err(code)) => {
                    prop_assert_eq!(r.code(), *code, "step {} {:?}", n, op);
                    prop_assert!(d.changes.is_empty());
                }
                (got, want) => prop_assert!(false, "step {} {:?}: got {:?}, want {:?}", n, op, got, want),
            }
            if let Some(last) = d.changes.last() {
                prop_assert_eq!(last.counts, ledger.counts(), "the last change carries the counts");
            }
            check_state(&ledger, &model)?;
        }
        let mut copy = restored(&ledger, &model);
        check_state(&copy, &model)?;
        for (n, op) in after.iter().enumerate() {
            let cmd = command(op, 1000 + n, model.now);
            let a = ledger.apply(&cmd);
            let b = copy.apply(&cmd);
            let _ = model.apply(op);
            prop_assert_eq!(a.outcome, b.outcome, "after restore, step {} {:?}", n, op);
            check_state(&copy, &model)?;
        }
    }
}
