//! Property tests of the add/drop deadlines, the pure rule and the ledger's drop path:
//! - over any deadlines in order and any two times, judgements only get stricter with
//!   time: an add refused at one time is refused later too, and a seat's drop goes plain,
//!   then withdrawal, then closed, never back;
//! - the three drop outcomes partition the timeline exactly as the deadlines say: closed
//!   after `withdraw_by`, a withdrawal after `drop_by` (and by `withdraw_by`), plain before;
//!   a permitted add always passes;
//! - the ledger applies a judgement to seats only: over random enrolls and drops, each
//!   with a random [`SeatDrop`], a closed seat drop is refused and changes nothing, a
//!   withdrawal frees the seat (promoting the waitlist head as any drop) and is marked
//!   withdrawn in its outcome and its change, and a waitlist place is always left plainly;
//! - a plain drop (and its outcome) reads on the wire as it did before deadlines.

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use registrar_actors::student_rules::{Deadlines, check_add, check_seat_drop, seat_drop};
use registrar_actors::{
    ChangeKind, Command, Outcome, Placement, Refusal, RequestId, SeatDrop, SeatLedger, StudentId,
};
use uuid::Uuid;

fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn at(minute: i64) -> DateTime<Utc> {
    epoch() + TimeDelta::minutes(minute)
}

/// Deadlines in order, each given or not, within the first 1000 minutes.
fn deadlines() -> impl Strategy<Value = Deadlines> {
    (proptest::collection::vec(0i64..1000, 3), any::<[bool; 3]>()).prop_map(
        |(mut minutes, given)| {
            minutes.sort_unstable();
            let pick = |i: usize| given[i].then(|| at(minutes[i]));
            Deadlines {
                add_by: pick(0),
                drop_by: pick(1),
                withdraw_by: pick(2),
            }
        },
    )
}

fn strictness(seat: SeatDrop) -> u8 {
    match seat {
        SeatDrop::Plain => 0,
        SeatDrop::Withdraw => 1,
        SeatDrop::Closed => 2,
    }
}

fn seat_drop_mode() -> impl Strategy<Value = SeatDrop> {
    prop_oneof![
        Just(SeatDrop::Plain),
        Just(SeatDrop::Withdraw),
        Just(SeatDrop::Closed),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Enroll(usize),
    Drop(usize, SeatDrop),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..6).prop_map(Op::Enroll),
        ((0usize..6), seat_drop_mode()).prop_map(|(s, m)| Op::Drop(s, m)),
    ]
}

fn student(n: usize) -> StudentId {
    StudentId(Uuid::from_u128(n as u128 + 1))
}

/// Failures are kept beside this file (`deadlines_props.proptest-regressions`).
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn judgements_only_get_stricter_with_time(
        d in deadlines(),
        a in -10i64..1010,
        b in -10i64..1010,
    ) {
        let (early, late) = (at(a.min(b)), at(a.max(b)));
        if check_add(&d, early, false).is_err() {
            prop_assert!(check_add(&d, late, false).is_err());
        }
        prop_assert!(strictness(seat_drop(&d, early)) <= strictness(seat_drop(&d, late)));
    }

    #[test]
    fn the_drop_outcomes_partition_the_timeline(d in deadlines(), t in -10i64..1010) {
        prop_assert!(d.in_order());
        let now = at(t);
        let closed = d.withdraw_by.is_some_and(|w| now > w);
        let withdraw = !closed && d.drop_by.is_some_and(|x| now > x);
        let expected = if closed {
            SeatDrop::Closed
        } else if withdraw {
            SeatDrop::Withdraw
        } else {
            SeatDrop::Plain
        };
        prop_assert_eq!(seat_drop(&d, now), expected);
        prop_assert_eq!(check_seat_drop(&d, now).is_err(), closed);
        prop_assert_eq!(
            check_add(&d, now, false).is_err(),
            d.add_by.is_some_and(|x| now > x)
        );
        prop_assert!(check_add(&d, now, true).is_ok(), "a permit passes at any time");
    }

    #[test]
    fn the_ledger_applies_a_drop_judgement_to_seats_only(
        capacity in 0u32..=3,
        waitlist in 0u32..=3,
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        let mut l = SeatLedger::new(capacity, waitlist);
        for op in &ops {
            let (s, command) = match *op {
                Op::Enroll(s) => (s, Command::Enroll {
                    student: student(s),
                    request: RequestId::new_v4(),
                    seat_only: false,
                    attrs: Vec::new(),
                    permits: Vec::new(),
                    capacity_permit: None,
                }),
                Op::Drop(s, seat) => (s, Command::Drop {
                    student: student(s),
                    request: RequestId::new_v4(),
                    seat,
                }),
            };
            let before = l.placement(student(s));
            let counts = l.counts();
            let head = l.waitlist().next();
            let d = l.apply(&command);
            let Op::Drop(_, seat) = *op else { continue };
            match (before, seat) {
                (Some(Placement::Enrolled), SeatDrop::Closed) => {
                    prop_assert_eq!(d.outcome, Err(Refusal::DropDeadlinePassed));
                    prop_assert!(d.changes.is_empty());
                    prop_assert_eq!(l.counts(), counts);
                    prop_assert_eq!(l.placement(student(s)), Some(Placement::Enrolled));
                }
                (Some(Placement::Enrolled), _) => {
                    let withdrawn = seat == SeatDrop::Withdraw;
                    prop_assert_eq!(d.outcome, Ok(Outcome::Dropped {
                        from: Placement::Enrolled,
                        promoted: head,
                        withdrawn,
                    }));
                    prop_assert_eq!(&d.changes[0].kind, &ChangeKind::Dropped {
                        student: student(s),
                        from: Placement::Enrolled,
                        withdrawn,
                    });
                    prop_assert_eq!(l.placement(student(s)), None);
                    // The seat is freed either way: the head (if any) has it now.
                    prop_assert_eq!(l.counts().seats_taken, counts.seats_taken - u32::from(head.is_none()));
                }
                (Some(Placement::Waitlisted), _) => {
                    prop_assert_eq!(d.outcome, Ok(Outcome::Dropped {
                        from: Placement::Waitlisted,
                        promoted: None,
                        withdrawn: false,
                    }));
                    let marked = d
                        .changes
                        .iter()
                        .any(|c| matches!(c.kind, ChangeKind::Dropped { withdrawn: true, .. }));
                    prop_assert!(!marked, "a waitlist place is never withdrawn from");
                    prop_assert_eq!(l.counts().waitlist_length, counts.waitlist_length - 1);
                }
                (None | Some(Placement::Held), _) => {
                    prop_assert_eq!(d.outcome, Err(Refusal::NotEnrolled));
                }
                (Some(Placement::Offered), _) => unreachable!("auto-mode sections make no offers"),
            }
        }
    }
}

#[test]
fn a_plain_drop_reads_on_the_wire_as_it_always_did() {
    let (student, request) = (student(0), RequestId(Uuid::from_u128(9)));
    let plain = Command::Drop {
        student,
        request,
        seat: SeatDrop::Plain,
    };
    let json = serde_json::to_value(&plain).unwrap();
    assert!(json.get("seat").is_none(), "{json}");
    // A command from a node that does not know deadlines is a plain drop.
    assert_eq!(serde_json::from_value::<Command>(json).unwrap(), plain);
    let withdraw = Command::Drop {
        student,
        request,
        seat: SeatDrop::Withdraw,
    };
    let json = serde_json::to_value(&withdraw).unwrap();
    assert_eq!(json["seat"], "withdraw", "{json}");
    assert_eq!(serde_json::from_value::<Command>(json).unwrap(), withdraw);
    // The outcome, as the audit trail keeps it: `withdrawn` only when true.
    let left = Outcome::Dropped {
        from: Placement::Enrolled,
        promoted: None,
        withdrawn: false,
    };
    let json = serde_json::to_value(&left).unwrap();
    assert!(json.get("withdrawn").is_none(), "{json}");
    assert_eq!(serde_json::from_value::<Outcome>(json).unwrap(), left);
}
