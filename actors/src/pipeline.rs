//! The order in which a section's batches in flight are settled, free of I/O so that it
//! can be property-tested and loom-tested.
//!
//! A section actor decides batch N+1 while batch N is still committing. Commits may finish
//! in any order, but their callers are answered strictly in the order the batches were
//! decided: a batch is settled only once every earlier one is. After a commit fails, no
//! batch is started until every batch in flight has settled (each with its own result:
//! the store refuses a batch decided on top of one that did not commit, see
//! [`CommitBatch::after`](crate::store::CommitBatch::after)), and the actor reloads before
//! it [`restart`](Pipeline::restart)s.

use crate::store::StoreError;
use std::collections::VecDeque;

/// Batches in flight, in decision order. `B` is what the actor keeps of a batch (its
/// callers), `C` what a successful commit gives back.
#[derive(Debug)]
pub struct Pipeline<B, C> {
    /// Most batches in flight at once (1: each batch waits for the previous commit).
    depth: usize,
    /// The number the next started batch gets.
    next: u64,
    /// In flight, oldest first; each with its result once its commit finished.
    slots: VecDeque<Slot<B, C>>,
    /// A commit failed since the last restart: nothing starts until one.
    broken: bool,
}

#[derive(Debug)]
struct Slot<B, C> {
    seq: u64,
    batch: B,
    result: Option<Result<C, StoreError>>,
}

impl<B, C> Pipeline<B, C> {
    /// An empty pipeline holding at most `depth` batches (at least one).
    pub fn new(depth: usize) -> Self {
        Self {
            depth: depth.max(1),
            next: 0,
            slots: VecDeque::new(),
            broken: false,
        }
    }

    /// Whether another batch may be started now.
    pub fn can_start(&self) -> bool {
        !self.broken && self.slots.len() < self.depth
    }

    /// Batches started and not settled yet.
    pub fn in_flight(&self) -> usize {
        self.slots.len()
    }

    /// A commit failed since the last [`restart`](Pipeline::restart).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Start `batch`; returns its number, to [`finish`](Pipeline::finish) it with.
    ///
    /// # Panics
    /// If no batch may start ([`can_start`](Pipeline::can_start) is false).
    pub fn start(&mut self, batch: B) -> u64 {
        assert!(
            self.can_start(),
            "a batch started past the pipeline's bound"
        );
        let seq = self.next;
        self.next += 1;
        self.slots.push_back(Slot {
            seq,
            batch,
            result: None,
        });
        seq
    }

    /// Batch `seq`'s commit finished with `result`; false if no such batch is in flight
    /// (or it finished already). A failure stops new starts at once.
    pub fn finish(&mut self, seq: u64, result: Result<C, StoreError>) -> bool {
        let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| s.seq == seq && s.result.is_none())
        else {
            return false;
        };
        if result.is_err() {
            self.broken = true;
        }
        slot.result = Some(result);
        true
    }

    /// The oldest batch, once it and every batch before it finished (they were settled).
    pub fn settle(&mut self) -> Option<(B, Result<C, StoreError>)> {
        self.slots.front()?.result.as_ref()?;
        let slot = self.slots.pop_front()?;
        Some((slot.batch, slot.result?))
    }

    /// Whether a failure is waiting for the actor to reload: broken, and nothing in flight.
    pub fn needs_recovery(&self) -> bool {
        self.broken && self.slots.is_empty()
    }

    /// After a reload: batches may start again.
    pub fn restart(&mut self) {
        debug_assert!(self.slots.is_empty(), "restarted with batches in flight");
        self.broken = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settles_in_start_order_whatever_the_finish_order() {
        let mut p: Pipeline<&str, ()> = Pipeline::new(2);
        let a = p.start("a");
        let b = p.start("b");
        assert!(!p.can_start(), "bounded at two");
        assert!(p.finish(b, Ok(())));
        assert!(p.settle().is_none(), "b waits for a");
        assert!(p.finish(a, Ok(())));
        assert_eq!(p.settle().map(|s| s.0), Some("a"));
        assert_eq!(p.settle().map(|s| s.0), Some("b"));
        assert!(p.settle().is_none());
        assert!(!p.finish(a, Ok(())), "settled already");
    }

    #[test]
    fn a_failure_stops_new_batches_until_a_restart() {
        let mut p: Pipeline<u8, ()> = Pipeline::new(3);
        let a = p.start(1);
        let b = p.start(2);
        p.finish(a, Err(StoreError::Unavailable("down".into())));
        assert!(!p.can_start() && p.is_broken());
        assert!(matches!(p.settle(), Some((1, Err(_)))));
        assert!(!p.needs_recovery(), "b is still in flight");
        p.finish(b, Err(StoreError::Unavailable("chain".into())));
        assert!(matches!(p.settle(), Some((2, Err(_)))));
        assert!(p.needs_recovery());
        p.restart();
        assert!(p.can_start());
    }
}
