//! Property tests of reserved seat pools in [`SeatLedger`]: random sections (capacity,
//! waitlist, up to three pools keyed by major or cohort, some with a release time) under
//! random enrolls (seat-only or not), drops, capacity changes and the passing of time, over
//! students with different attributes, checked step by step against a plain reference
//! model and against the rules a registrar states:
//! - seats taken never exceed the capacity, and a pool never seats more than its seats;
//! - a student sits in a pool only if they match it;
//! - nobody waits while a seat they may take is free (a general one, or one of a pool
//!   they match);
//! - the waitlist keeps its order, and a freed seat goes to the oldest waiting student who
//!   may take it;
//! - a refusal for want of a seat says `seats_reserved` exactly when seats are free but
//!   all held back for others;
//! - `reserved_seats_left` is the free seats only pool members may take;
//! - a ledger restored from what is persisted (seats with their pools, the waitlist with
//!   its students' attributes, the pools) decides what follows exactly as the original.

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use registrar_actors::{
    Attribute, AttributeKind, Command, Outcome, Placement, PoolId, Refusal, RequestId, ReservePool,
    SeatDrop, SeatLedger, StudentId, WaitlistEntry,
};
use std::collections::VecDeque;
use uuid::Uuid;

const STUDENTS: usize = 8;

fn student(i: usize) -> StudentId {
    StudentId(Uuid::from_u128(0x5eed_0000 + i as u128))
}

/// Student `i`'s attributes: majors CS, MATH, ART in turn, every third also HONORS, every
/// fourth with no major at all.
fn attrs(i: usize) -> Vec<Attribute> {
    let mut a = Vec::new();
    if i % 4 != 3 {
        a.push(Attribute::new(
            AttributeKind::Major,
            ["CS", "MATH", "ART"][i % 3],
        ));
    }
    if i.is_multiple_of(3) {
        a.push(Attribute::new(AttributeKind::Cohort, "HONORS"));
    }
    a
}

fn t0() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + TimeDelta::days(20_000)
}

fn minute(m: u8) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(m as i64)
}

#[derive(Clone, Debug)]
struct PoolSpec {
    attribute: Attribute,
    seats: u32,
    release: Option<u8>,
}

#[derive(Clone, Debug)]
enum Op {
    Enroll { student: usize, seat_only: bool },
    Drop { student: usize },
    SetCapacity { capacity: u32 },
    Time { minute: u8 },
}

fn pool_spec() -> impl Strategy<Value = PoolSpec> {
    (
        prop_oneof![
            Just(Attribute::new(AttributeKind::Major, "CS")),
            Just(Attribute::new(AttributeKind::Major, "MATH")),
            Just(Attribute::new(AttributeKind::Cohort, "HONORS")),
        ],
        0u32..3,
        prop::option::of(0u8..30),
    )
        .prop_map(|(attribute, seats, release)| PoolSpec {
            attribute,
            seats,
            release,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..STUDENTS, any::<bool>())
            .prop_map(|(student, seat_only)| Op::Enroll { student, seat_only }),
        3 => (0..STUDENTS).prop_map(|student| Op::Drop { student }),
        1 => (0u32..8).prop_map(|capacity| Op::SetCapacity { capacity }),
        1 => (0u8..40).prop_map(|minute| Op::Time { minute }),
    ]
}

/// The section: capacity, waitlist places, pools whose seats fit the capacity.
fn section() -> impl Strategy<Value = (u32, u32, Vec<PoolSpec>)> {
    (1u32..7, 0u32..4, prop::collection::vec(pool_spec(), 0..4)).prop_map(
        |(capacity, waitlist, mut pools)| {
            // Pools never reserve more than the capacity (the admin API refuses it).
            let mut room = capacity;
            for p in &mut pools {
                p.seats = p.seats.min(room);
                room -= p.seats;
            }
            (capacity, waitlist, pools)
        },
    )
}

fn pool_id(i: usize) -> PoolId {
    PoolId(Uuid::from_u128(0x9001 + i as u128))
}

fn pools_of(specs: &[PoolSpec]) -> Vec<ReservePool> {
    specs
        .iter()
        .enumerate()
        .map(|(i, p)| ReservePool {
            id: pool_id(i),
            attribute: p.attribute.clone(),
            seats: p.seats,
            release_at: p.release.map(minute),
            released: false,
        })
        .collect()
}

/// The reference: seats as (student, pool index) in a Vec, the waitlist in a VecDeque.
#[derive(Clone, Debug)]
struct Model {
    capacity: u32,
    waitlist_capacity: u32,
    pools: Vec<(PoolSpec, bool)>,
    seated: Vec<(usize, Option<usize>)>,
    waiting: VecDeque<usize>,
    now: u8,
}

impl Model {
    fn in_pool(&self, i: usize) -> u32 {
        self.seated.iter().filter(|(_, p)| *p == Some(i)).count() as u32
    }

    fn held_back(&self) -> u32 {
        (0..self.pools.len())
            .filter(|i| !self.pools[*i].1)
            .map(|i| self.pools[i].0.seats.saturating_sub(self.in_pool(i)))
            .sum()
    }

    /// `Some(pool or general)` if student `s` may sit now.
    fn seat_for(&self, s: usize) -> Option<Option<usize>> {
        let taken = self.seated.len() as u32;
        if taken >= self.capacity {
            return None;
        }
        let a = attrs(s);
        for (i, (p, released)) in self.pools.iter().enumerate() {
            if !released && self.in_pool(i) < p.seats && a.contains(&p.attribute) {
                return Some(Some(i));
            }
        }
        (taken + self.held_back() < self.capacity).then_some(None)
    }

    fn promote(&mut self) -> Vec<usize> {
        let mut promoted = Vec::new();
        while let Some(k) = self
            .waiting
            .iter()
            .position(|w| self.seat_for(*w).is_some())
        {
            let w = self.waiting.remove(k).unwrap();
            let seat = self.seat_for(w).unwrap();
            self.seated.push((w, seat));
            promoted.push(w);
        }
        promoted
    }

    /// The expected answer: `Ok(outcome)` with the promoted students, or the refusal code.
    fn apply(&mut self, op: &Op) -> Result<(Outcome, Vec<usize>), &'static str> {
        match *op {
            Op::Enroll {
                student: s,
                seat_only,
            } => {
                if self.seated.iter().any(|(x, _)| *x == s) {
                    return Err("already_enrolled");
                }
                if self.waiting.contains(&s) {
                    return Err("already_waitlisted");
                }
                if let Some(seat) = self.seat_for(s) {
                    self.seated.push((s, seat));
                    return Ok((Outcome::Enrolled, vec![]));
                }
                if seat_only || self.waiting.len() as u32 >= self.waitlist_capacity {
                    let free = self.capacity.saturating_sub(self.seated.len() as u32);
                    return Err(if free == 0 {
                        "section_full"
                    } else {
                        "seats_reserved"
                    });
                }
                self.waiting.push_back(s);
                let position = self.waiting.len() as u32;
                Ok((Outcome::Waitlisted { position }, vec![]))
            }
            Op::Drop { student: s } => {
                if let Some(k) = self.seated.iter().position(|(x, _)| *x == s) {
                    self.seated.remove(k);
                    let promoted = self.promote();
                    return Ok((
                        Outcome::Dropped {
                            from: Placement::Enrolled,
                            promoted: promoted.first().map(|p| student(*p)),
                            withdrawn: false,
                        },
                        promoted,
                    ));
                }
                if let Some(k) = self.waiting.iter().position(|x| *x == s) {
                    self.waiting.remove(k);
                    return Ok((
                        Outcome::Dropped {
                            from: Placement::Waitlisted,
                            promoted: None,
                            withdrawn: false,
                        },
                        vec![],
                    ));
                }
                Err("not_enrolled")
            }
            Op::SetCapacity { capacity } => {
                if capacity < self.seated.len() as u32 {
                    return Err("capacity_below_taken");
                }
                self.capacity = capacity;
                let promoted = self.promote();
                let ids = promoted.iter().map(|p| student(*p)).collect();
                Ok((Outcome::CapacityChanged { promoted: ids }, promoted))
            }
            Op::Time { minute: m } => {
                self.now = self.now.max(m);
                let now = self.now;
                for (p, released) in &mut self.pools {
                    if p.release.is_some_and(|r| r <= now) {
                        *released = true;
                    }
                }
                let promoted = self.promote();
                let ids = promoted.iter().map(|p| student(*p)).collect();
                Ok((Outcome::ReservesChanged { promoted: ids }, promoted))
            }
        }
    }
}

fn command(op: &Op, n: usize, now: u8) -> Command {
    let request = RequestId(Uuid::from_u128(0x7e57_0000 + n as u128));
    match *op {
        Op::Enroll {
            student: s,
            seat_only,
        } => Command::Enroll {
            student: student(s),
            request,
            seat_only,
            attrs: attrs(s),
            permits: Vec::new(),
            capacity_permit: None,
        },
        Op::Drop { student: s } => Command::Drop {
            student: student(s),
            request,
            seat: SeatDrop::Plain,
        },
        Op::SetCapacity { capacity } => Command::SetCapacity { capacity, request },
        Op::Time { minute: m } => Command::ReleaseReserves {
            now: minute(m.max(now)),
            request,
        },
    }
}

/// Check the ledger against the model and the stated rules.
fn check_state(ledger: &SeatLedger, model: &Model) -> Result<(), TestCaseError> {
    let counts = ledger.counts();
    prop_assert!(counts.seats_taken <= counts.capacity);
    prop_assert_eq!(counts.seats_taken as usize, model.seated.len());
    let waitlist: Vec<StudentId> = ledger.waitlist().collect();
    let expected: Vec<StudentId> = model.waiting.iter().map(|w| student(*w)).collect();
    prop_assert_eq!(waitlist, expected, "waitlist order");
    for (s, pool) in &model.seated {
        prop_assert_eq!(
            ledger.pool_of(student(*s)),
            pool.map(pool_id),
            "pool of {}",
            s
        );
        if let Some(i) = pool {
            let p = &model.pools[*i].0;
            prop_assert!(
                attrs(*s).contains(&p.attribute),
                "{} sits in a pool it does not match",
                s
            );
        }
    }
    for (i, (p, _)) in model.pools.iter().enumerate() {
        let taken = ledger.reserve_taken(pool_id(i));
        prop_assert!(
            taken <= p.seats,
            "pool {} seats {} of {}",
            i,
            taken,
            p.seats
        );
        prop_assert_eq!(taken, model.in_pool(i));
    }
    for w in &model.waiting {
        prop_assert!(
            model.seat_for(*w).is_none(),
            "{} waits while a seat is free for them",
            w
        );
    }
    let free = counts.capacity - counts.seats_taken;
    prop_assert_eq!(counts.reserved_seats_left, model.held_back().min(free));
    Ok(())
}

fn restored(ledger: &SeatLedger, model: &Model) -> SeatLedger {
    let enrolled: Vec<(StudentId, RequestId)> = ledger
        .enrolled()
        .map(|s| (s, RequestId(Uuid::from_u128(s.0.as_u128() ^ 0xabc))))
        .collect();
    let pooled = ledger
        .enrolled()
        .filter_map(|s| Some((s, ledger.pool_of(s)?)))
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
    let waiting_attrs = model
        .waiting
        .iter()
        .map(|w| (student(*w), attrs(*w)))
        .collect();
    let counts = ledger.counts();
    SeatLedger::restore(
        counts.capacity,
        counts.waitlist_capacity,
        enrolled,
        waitlist,
        100,
    )
    .with_reserves(ledger.reserve_pools().to_vec(), pooled, waiting_attrs)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    })]

    #[test]
    fn pools_hold_their_seats_for_their_students(
        (capacity, waitlist_capacity, specs) in section(),
        ops in prop::collection::vec(op(), 1..60),
        after in prop::collection::vec(op(), 1..20),
    ) {
        let mut ledger = SeatLedger::new(capacity, waitlist_capacity)
            .with_reserves(pools_of(&specs), vec![], vec![]);
        let mut model = Model {
            capacity,
            waitlist_capacity,
            pools: specs.iter().map(|p| (p.clone(), false)).collect(),
            seated: vec![],
            waiting: VecDeque::new(),
            now: 0,
        };
        for (n, op) in ops.iter().enumerate() {
            let cmd = command(op, n, model.now);
            let d = ledger.apply(&cmd);
            let want = model.apply(op);
            match (&d.outcome, want) {
                (Ok(got), Ok((outcome, _))) => prop_assert_eq!(got, &outcome, "step {} {:?}", n, op),
                (Err(r), Err(code)) => {
                    prop_assert_eq!(r.code(), code, "step {} {:?}", n, op);
                    prop_assert!(d.changes.is_empty());
                    if let Refusal::SeatsReserved { left, for_whom } = r {
                        prop_assert!(*left > 0 && !for_whom.is_empty());
                    }
                }
                (got, want) => prop_assert!(false, "step {} {:?}: got {:?}, want {:?}", n, op, got, want),
            }
            check_state(&ledger, &model)?;
        }
        // What is persisted decides the future exactly as the original does.
        let mut copy = restored(&ledger, &model);
        check_state(&copy, &model)?;
        for (n, op) in after.iter().enumerate() {
            let cmd = command(op, 1000 + n, model.now);
            let a = ledger.apply(&cmd);
            let b = copy.apply(&cmd);
            prop_assert_eq!(a.outcome, b.outcome, "after restore, step {} {:?}", n, op);
            prop_assert_eq!(ledger.waitlist().collect::<Vec<_>>(), copy.waitlist().collect::<Vec<_>>());
        }
    }
}

#[test]
fn a_released_pool_seats_the_oldest_waiting_student_at_once() {
    let cs = Attribute::new(AttributeKind::Major, "CS");
    let pool = ReservePool {
        id: pool_id(0),
        attribute: cs.clone(),
        seats: 1,
        release_at: Some(minute(10)),
        released: false,
    };
    let mut l = SeatLedger::new(2, 5).with_reserves(vec![pool], vec![], vec![]);
    let enroll = |l: &mut SeatLedger, s: usize, a: Vec<Attribute>| {
        l.apply(&Command::Enroll {
            student: student(s),
            request: RequestId::new_v4(),
            seat_only: false,
            attrs: a,
            permits: Vec::new(),
            capacity_permit: None,
        })
        .outcome
    };
    assert_eq!(enroll(&mut l, 0, vec![]), Ok(Outcome::Enrolled));
    // The last seat is CS's: a MATH student waits, and a seat-only one is told why.
    assert_eq!(
        enroll(&mut l, 1, vec![]),
        Ok(Outcome::Waitlisted { position: 1 })
    );
    assert_eq!(l.counts().reserved_seats_left, 1);
    let refused = l.apply(&Command::Enroll {
        student: student(2),
        request: RequestId::new_v4(),
        seat_only: true,
        attrs: vec![],
        permits: Vec::new(),
        capacity_permit: None,
    });
    assert_eq!(
        refused.outcome,
        Err(Refusal::SeatsReserved {
            left: 1,
            for_whom: vec![cs]
        })
    );
    // Too early: nothing changes.
    let early = l.apply(&Command::ReleaseReserves {
        now: minute(9),
        request: RequestId::new_v4(),
    });
    assert!(early.changes.is_empty());
    let due = l.apply(&Command::ReleaseReserves {
        now: minute(10),
        request: RequestId::new_v4(),
    });
    assert_eq!(
        due.outcome,
        Ok(Outcome::ReservesChanged {
            promoted: vec![student(1)]
        })
    );
    assert_eq!(due.changes.len(), 2, "the pools, then the promotion");
    assert_eq!(l.counts().seats_taken, 2);
    assert_eq!(l.counts().reserved_seats_left, 0);
}
