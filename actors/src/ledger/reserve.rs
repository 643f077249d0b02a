//! Reserved capacity: pools of a section's seats set aside for students with one attribute
//! (majors of the department, an honors cohort, seniors), as Banner's reserved seats and
//! PeopleSoft's reserve capacity work. A student who matches a pool with room takes a
//! reserved seat first; anyone else takes only the seats no pool holds back. At its release
//! time a pool's unused seats join the general ones (the ledger is told the time by
//! [`Command::ReleaseReserves`](super::Command::ReleaseReserves)). The seat counts stay the
//! section's: a reserved seat is one of its `capacity` seats, so no pool can oversell it.

use crate::attributes::Attribute;
use crate::ids::{PoolId, StudentId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Seats a section sets aside for students with one attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservePool {
    /// Id (stable across edits of the pool's seats).
    pub id: PoolId,
    /// Who may take its seats.
    pub attribute: Attribute,
    /// Seats set aside.
    pub seats: u32,
    /// When its unused seats join the general ones (by the database clock); none: never.
    #[serde(default)]
    pub release_at: Option<DateTime<Utc>>,
    /// Released: it reserves nothing any more (its students keep their seats).
    #[serde(default)]
    pub released: bool,
}

/// Where a seat comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Seat {
    /// A seat no pool holds back.
    General,
    /// A seat of this pool.
    Pool(PoolId),
}

/// The pools of one section and who sits in them.
#[derive(Clone, Debug, Default)]
pub(super) struct Reserves {
    /// The pools, in the order a student who matches several tries them.
    pools: Vec<ReservePool>,
    /// Seats of each pool in use (same order as `pools`).
    taken: Vec<u32>,
    /// Seated students (enrolled or held) whose seat is a pool's.
    seated: HashMap<StudentId, PoolId>,
    /// Attributes of waitlisted students, to find who may take a freed reserved seat.
    waiting: HashMap<StudentId, Vec<Attribute>>,
}

impl Reserves {
    /// `pools`, with `seated` students in them.
    pub(super) fn restore(pools: Vec<ReservePool>, seated: Vec<(StudentId, PoolId)>) -> Self {
        let mut reserves = Self {
            seated: seated.into_iter().collect(),
            ..Self::default()
        };
        reserves.replace(pools);
        reserves
    }

    /// The pools.
    pub(super) fn pools(&self) -> &[ReservePool] {
        &self.pools
    }

    /// Seats of `pool` in use.
    pub(super) fn taken_of(&self, pool: PoolId) -> u32 {
        self.index(pool).map_or(0, |i| self.taken[i])
    }

    fn index(&self, pool: PoolId) -> Option<usize> {
        self.pools.iter().position(|p| p.id == pool)
    }

    /// Seats still held back: the unused seats of pools not released.
    pub(super) fn free(&self) -> u32 {
        self.pools
            .iter()
            .zip(&self.taken)
            .filter(|(p, _)| !p.released)
            .map(|(p, t)| p.seats.saturating_sub(*t))
            .sum()
    }

    /// The first pool not released with room that `attrs` match.
    pub(super) fn pick(&self, attrs: &[Attribute]) -> Option<PoolId> {
        if self.pools.is_empty() {
            return None;
        }
        self.pools
            .iter()
            .zip(&self.taken)
            .find(|(p, t)| !p.released && **t < p.seats && attrs.contains(&p.attribute))
            .map(|(p, _)| p.id)
    }

    /// `student` took `seat`.
    pub(super) fn take(&mut self, student: StudentId, seat: Seat) {
        if let Seat::Pool(pool) = seat
            && let Some(i) = self.index(pool)
        {
            self.taken[i] += 1;
            self.seated.insert(student, pool);
        }
    }

    /// `student` left their seat.
    pub(super) fn give_back(&mut self, student: StudentId) {
        if let Some(pool) = self.seated.remove(&student)
            && let Some(i) = self.index(pool)
        {
            self.taken[i] -= 1;
        }
    }

    /// The pool `student`'s seat belongs to, if any.
    pub(super) fn pool_of(&self, student: StudentId) -> Option<PoolId> {
        self.seated.get(&student).copied()
    }

    /// `student` waits, with `attrs`.
    pub(super) fn wait(&mut self, student: StudentId, attrs: &[Attribute]) {
        if !attrs.is_empty() {
            self.waiting.insert(student, attrs.to_vec());
        }
    }

    /// `student` waits no more.
    pub(super) fn stop_waiting(&mut self, student: StudentId) {
        self.waiting.remove(&student);
    }

    /// The attributes `student` waits with.
    pub(super) fn waiting_attrs(&self, student: StudentId) -> &[Attribute] {
        self.waiting.get(&student).map_or(&[], Vec::as_slice)
    }

    /// Waitlisted students' attributes, as persisted.
    pub(super) fn with_waiting(&mut self, waiting: Vec<(StudentId, Vec<Attribute>)>) {
        self.waiting
            .extend(waiting.into_iter().filter(|(_, a)| !a.is_empty()));
    }

    /// Release every pool due by `now`; whether any was.
    pub(super) fn release_due(&mut self, now: DateTime<Utc>) -> bool {
        let mut any = false;
        for p in &mut self.pools {
            if !p.released && p.release_at.is_some_and(|at| at <= now) {
                p.released = true;
                any = true;
            }
        }
        any
    }

    /// Replace the pools. A seated student whose pool is gone keeps the seat as a general one.
    pub(super) fn replace(&mut self, pools: Vec<ReservePool>) {
        self.seated
            .retain(|_, pool| pools.iter().any(|p| p.id == *pool));
        self.taken = pools
            .iter()
            .map(|p| self.seated.values().filter(|s| **s == p.id).count() as u32)
            .collect();
        self.pools = pools;
    }
}
