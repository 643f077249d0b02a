//! Property tests of waiting students skipped at promotion ([`Command::SetBlocked`]):
//! random enrolls, drops, skips, returns to line and capacity changes, checked step by step
//! against a plain reference model (a FIFO line where some entries are passed over):
//! - seats taken never exceed the capacity;
//! - a skipped student is never promoted, and keeps their place in line;
//! - a freed seat goes to the oldest waiting student not skipped; nobody in line waits
//!   while a seat is free;
//! - a student back in line with a seat free takes it in that decision;
//! - a ledger restored from what is persisted (seats, the waitlist, who is skipped)
//!   decides what follows exactly as the original.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use registrar_actors::{Command, Outcome, RequestId, SeatLedger, StudentId, WaitlistEntry};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

const STUDENTS: usize = 8;

fn student(i: usize) -> StudentId {
    StudentId(Uuid::from_u128(0xb10c_0000 + i as u128))
}

#[derive(Clone, Debug)]
enum Op {
    Enroll(usize),
    Drop(usize),
    Skip(usize),
    Return(usize),
    SetCapacity(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..STUDENTS).prop_map(Op::Enroll),
        3 => (0..STUDENTS).prop_map(Op::Drop),
        2 => (0..STUDENTS).prop_map(Op::Skip),
        2 => (0..STUDENTS).prop_map(Op::Return),
        1 => (0u32..5).prop_map(Op::SetCapacity),
    ]
}

/// The reference: seated students, the line in order, who is skipped.
#[derive(Clone, Debug, Default)]
struct Model {
    capacity: u32,
    seated: HashSet<usize>,
    line: Vec<usize>,
    skipped: HashSet<usize>,
}

impl Model {
    /// Fill free seats from the line, oldest first, passing over skipped students.
    fn promote(&mut self) -> Vec<usize> {
        let mut promoted = Vec::new();
        while (self.seated.len() as u32) < self.capacity {
            let Some(i) = self.line.iter().position(|s| !self.skipped.contains(s)) else {
                break;
            };
            let s = self.line.remove(i);
            self.seated.insert(s);
            promoted.push(s);
        }
        promoted
    }
}

fn command(op: &Op) -> Command {
    let request = RequestId::new_v4();
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
        Op::Skip(s) => Command::SetBlocked {
            student: student(s),
            reason: Some("student_on_hold".into()),
            request,
        },
        Op::Return(s) => Command::SetBlocked {
            student: student(s),
            reason: None,
            request,
        },
        Op::SetCapacity(capacity) => Command::SetCapacity { capacity, request },
    }
}

/// Apply `op` to the model; the students it promotes, or `None` if refused.
fn step(m: &mut Model, op: &Op) -> Option<Vec<usize>> {
    match *op {
        Op::Enroll(s) => {
            if m.seated.contains(&s) || m.line.contains(&s) {
                return None;
            }
            if (m.seated.len() as u32) < m.capacity {
                m.seated.insert(s);
            } else if m.line.len() < 10 {
                m.line.push(s);
            } else {
                return None;
            }
            Some(vec![])
        }
        Op::Drop(s) => {
            if m.seated.remove(&s) {
                Some(m.promote())
            } else if let Some(i) = m.line.iter().position(|x| *x == s) {
                m.line.remove(i);
                m.skipped.remove(&s);
                Some(vec![])
            } else {
                None
            }
        }
        Op::Skip(s) | Op::Return(s) => {
            if !m.line.contains(&s) {
                return None;
            }
            if matches!(op, Op::Skip(_)) {
                m.skipped.insert(s);
                Some(vec![])
            } else {
                m.skipped.remove(&s);
                Some(m.promote())
            }
        }
        Op::SetCapacity(c) => {
            if (c as usize) < m.seated.len() {
                return None;
            }
            m.capacity = c;
            Some(m.promote())
        }
    }
}

fn promoted_of(outcome: &Outcome) -> Vec<StudentId> {
    match outcome {
        Outcome::Dropped { promoted, .. } => promoted.iter().copied().collect(),
        Outcome::CapacityChanged { promoted } | Outcome::BlockChanged { promoted } => {
            promoted.clone()
        }
        _ => vec![],
    }
}

/// The ledger rebuilt from what its commits persist.
fn restored(
    l: &SeatLedger,
    capacity: u32,
    seqs: &HashMap<StudentId, (i64, RequestId)>,
) -> SeatLedger {
    let waitlist: Vec<WaitlistEntry> = l
        .waitlist()
        .map(|s| WaitlistEntry {
            seq: seqs[&s].0,
            student: s,
            request: seqs[&s].1,
        })
        .collect();
    let blocked = waitlist
        .iter()
        .filter_map(|e| l.blocked(e.student).map(|r| (e.student, r.to_string())))
        .collect();
    let enrolled = l.enrolled().map(|s| (s, RequestId::new_v4())).collect();
    SeatLedger::restore(capacity, 10, enrolled, waitlist, l.next_seq()).with_blocked(blocked)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn skipped_students_keep_their_place_and_are_passed_over(
        capacity in 0u32..4,
        ops in proptest::collection::vec(op(), 1..60),
        restore_at in 0usize..60,
    ) {
        let mut l = SeatLedger::new(capacity, 10);
        let mut m = Model { capacity, ..Model::default() };
        // Each waiting student's seq and request, as the rows would keep them.
        let mut seqs: HashMap<StudentId, (i64, RequestId)> = HashMap::new();
        for (n, op) in ops.iter().enumerate() {
            if n == restore_at {
                l = restored(&l, m.capacity, &seqs);
            }
            let command = command(op);
            let d = l.apply(&command);
            let expected = step(&mut m, op);
            match (&d.outcome, &expected) {
                (Ok(outcome), Some(promoted)) => {
                    let got: Vec<StudentId> = promoted_of(outcome);
                    let want: Vec<StudentId> = promoted.iter().map(|s| student(*s)).collect();
                    prop_assert_eq!(got, want, "{:?}", op);
                }
                (Err(_), None) => {}
                (got, want) => prop_assert!(false, "{:?}: ledger {:?}, model {:?}", op, got, want),
            }
            if let (Op::Enroll(s), Ok(Outcome::Waitlisted { .. })) = (op, &d.outcome) {
                seqs.insert(student(*s), (l.next_seq() - 1, command.request()));
            }
            let counts = l.counts();
            prop_assert!(counts.seats_taken <= counts.capacity);
            let line: Vec<StudentId> = l.waitlist().collect();
            let want: Vec<StudentId> = m.line.iter().map(|s| student(*s)).collect();
            prop_assert_eq!(&line, &want, "the line, in order");
            for s in &line {
                let i = (0..STUDENTS).find(|i| student(*i) == *s).unwrap();
                prop_assert_eq!(l.blocked(*s).is_some(), m.skipped.contains(&i));
            }
            let in_line = line.iter().any(|s| l.blocked(*s).is_none());
            prop_assert!(!(in_line && counts.seats_taken < counts.capacity), "someone in line waits beside a free seat");
        }
    }
}
