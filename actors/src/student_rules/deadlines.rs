//! A term's add/drop calendar: the last day to add a section, to drop one without a
//! record, and to withdraw from one (leave it with a W), each optional. The student's home
//! node judges them by the database clock; this module only says what a time means.
//!
//! Each deadline is inclusive ("add by"): the instant itself is still before it. The drop
//! deadlines split a seat's timeline in three, in this order: a plain drop, a withdrawal,
//! and no drop at all. A missing deadline ends nothing: without `drop_by` a drop leaves no
//! record until the withdrawal deadline; without `withdraw_by` a withdrawal stays possible.
//! Leaving a waitlist place is never judged here: it was never a seat, so it is always
//! allowed and leaves no record (the section's ledger applies [`SeatDrop`] to seats only).

use super::RuleViolation;
use crate::ledger::SeatDrop;
use chrono::{DateTime, Utc};

/// A term's deadlines (none set: adds and drops are judged by the windows alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadlines {
    /// The last instant a section may be added.
    pub add_by: Option<DateTime<Utc>>,
    /// The last instant a seat may be dropped with no record.
    pub drop_by: Option<DateTime<Utc>>,
    /// The last instant a seat may be left at all (with a W after `drop_by`).
    pub withdraw_by: Option<DateTime<Utc>>,
}

impl Deadlines {
    /// Whether the deadlines given come in their order: add, drop, withdraw (equal ones
    /// allowed: a period may be empty).
    pub fn in_order(&self) -> bool {
        let given: Vec<DateTime<Utc>> = [self.add_by, self.drop_by, self.withdraw_by]
            .into_iter()
            .flatten()
            .collect();
        given.windows(2).all(|w| w[0] <= w[1])
    }
}

/// Whether a section may be added at `now`. `permitted` is the seam for a late-add permit
/// (an instructor's or the registrar's override for one section, as Banner and PeopleSoft
/// issue them): a permitted add passes whatever the time.
pub fn check_add(
    deadlines: &Deadlines,
    now: DateTime<Utc>,
    permitted: bool,
) -> Result<(), RuleViolation> {
    match deadlines.add_by {
        Some(add_by) if now > add_by && !permitted => {
            Err(RuleViolation::AddDeadlinePassed { add_by })
        }
        _ => Ok(()),
    }
}

/// What leaving a seat is at `now`: a plain drop, a withdrawal, or closed.
pub fn seat_drop(deadlines: &Deadlines, now: DateTime<Utc>) -> SeatDrop {
    if deadlines.withdraw_by.is_some_and(|w| now > w) {
        SeatDrop::Closed
    } else if deadlines.drop_by.is_some_and(|d| now > d) {
        SeatDrop::Withdraw
    } else {
        SeatDrop::Plain
    }
}

/// [`seat_drop`] for seats known to be seats (a linked set's, which is never waitlisted):
/// closed is a refusal.
pub fn check_seat_drop(
    deadlines: &Deadlines,
    now: DateTime<Utc>,
) -> Result<SeatDrop, RuleViolation> {
    match (seat_drop(deadlines, now), deadlines.withdraw_by) {
        (SeatDrop::Closed, Some(withdraw_by)) => {
            Err(RuleViolation::DropDeadlinePassed { withdraw_by })
        }
        (seat, _) => Ok(seat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn calendar(now: DateTime<Utc>) -> Deadlines {
        Deadlines {
            add_by: Some(now - TimeDelta::days(30)),
            drop_by: Some(now - TimeDelta::days(20)),
            withdraw_by: Some(now - TimeDelta::days(10)),
        }
    }

    #[test]
    fn no_deadline_allows_everything() {
        let now = Utc::now();
        let none = Deadlines::default();
        assert_eq!(check_add(&none, now, false), Ok(()));
        assert_eq!(seat_drop(&none, now), SeatDrop::Plain);
        assert!(none.in_order());
    }

    #[test]
    fn the_timeline_goes_plain_then_withdraw_then_closed() {
        let now = Utc::now();
        let d = calendar(now);
        let at = |days: i64| now - TimeDelta::days(days);
        assert_eq!(check_add(&d, at(31), false), Ok(()));
        assert_eq!(check_add(&d, at(30), false), Ok(()), "the deadline itself");
        assert_eq!(
            check_add(&d, at(29), false),
            Err(RuleViolation::AddDeadlinePassed { add_by: at(30) })
        );
        assert_eq!(check_add(&d, now, true), Ok(()), "a permit lets it in");
        assert_eq!(seat_drop(&d, at(25)), SeatDrop::Plain);
        assert_eq!(seat_drop(&d, at(20)), SeatDrop::Plain);
        assert_eq!(seat_drop(&d, at(15)), SeatDrop::Withdraw);
        assert_eq!(seat_drop(&d, at(10)), SeatDrop::Withdraw);
        assert_eq!(seat_drop(&d, at(9)), SeatDrop::Closed);
        assert_eq!(
            check_seat_drop(&d, now),
            Err(RuleViolation::DropDeadlinePassed {
                withdraw_by: at(10)
            })
        );
        assert_eq!(check_seat_drop(&d, at(15)), Ok(SeatDrop::Withdraw));
        assert_eq!(
            check_add(&d, now, false).unwrap_err().code(),
            "add_deadline_passed"
        );
        assert_eq!(
            check_seat_drop(&d, now).unwrap_err().code(),
            "drop_deadline_passed"
        );
    }

    #[test]
    fn a_missing_deadline_ends_nothing() {
        let now = Utc::now();
        let past = now - TimeDelta::days(1);
        // No drop deadline: no record until the withdrawal deadline, then closed.
        let only_withdraw = Deadlines {
            withdraw_by: Some(past),
            ..Deadlines::default()
        };
        assert_eq!(seat_drop(&only_withdraw, past), SeatDrop::Plain);
        assert_eq!(seat_drop(&only_withdraw, now), SeatDrop::Closed);
        // No withdrawal deadline: a withdrawal for good.
        let only_drop = Deadlines {
            drop_by: Some(past),
            ..Deadlines::default()
        };
        assert_eq!(
            seat_drop(&only_drop, now + TimeDelta::days(365)),
            SeatDrop::Withdraw
        );
    }

    #[test]
    fn deadlines_must_come_in_order() {
        let now = Utc::now();
        assert!(calendar(now).in_order());
        let mut d = calendar(now);
        d.drop_by = d.add_by;
        assert!(d.in_order(), "an empty period is allowed");
        d.drop_by = Some(now);
        assert!(!d.in_order(), "drop after withdraw");
        let skip = Deadlines {
            add_by: Some(now),
            drop_by: None,
            withdraw_by: Some(now - TimeDelta::days(1)),
        };
        assert!(!skip.in_order(), "compared across a missing one");
    }
}
