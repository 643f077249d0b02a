//! Admission gates: lock-free bounds on in-flight commands.
//!
//! ractor mailboxes are unbounded, so every command first takes a [`Permit`] from the node's
//! gate and from its section's gate; a full gate means 503 `overloaded` instead of an
//! ever-growing queue. The permit travels inside the message and is released when the
//! actor has answered it (or when the message is dropped), so a section gate's count is
//! exactly "commands queued or being decided".
//!
//! A section gate can also be *closed*: an idle actor closes its gate only when the count is
//! zero (one compare-and-swap), which is what makes passivation safe. A command either got
//! its permit before the close (then the count was not zero and the close fails) or sees the
//! gate closed and activates a fresh actor. The loom model in `tests/loom_gate.rs` checks
//! both properties.

use crate::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Set in the state word once a gate is closed; the low bits keep counting permits.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// Why a permit was not granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The bound is reached: shed load.
    Full,
    /// The gate's actor passivated or stopped: activate a new one.
    Closed,
}

/// A counter of in-flight commands with an upper bound.
#[derive(Debug)]
pub struct AdmissionGate {
    /// Permits held, plus the [`CLOSED`] bit.
    state: AtomicUsize,
    /// The most permits held at once.
    bound: usize,
}

impl AdmissionGate {
    /// A gate admitting at most `bound` commands at once.
    pub fn new(bound: usize) -> Self {
        Self {
            state: AtomicUsize::new(0),
            bound: bound.min(CLOSED - 1),
        }
    }

    /// Take one place, unless the gate is full or closed.
    pub fn try_enter(&self) -> Result<(), Refused> {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current & CLOSED != 0 {
                return Err(Refused::Closed);
            }
            if current >= self.bound {
                return Err(Refused::Full);
            }
            match self.state.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    /// Give a place back.
    pub fn leave(&self) {
        self.state.fetch_sub(1, Ordering::AcqRel);
    }

    /// Close the gate if nothing is in flight; true if it is now closed by this call.
    pub fn try_close(&self) -> bool {
        self.state
            .compare_exchange(0, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Close the gate whatever is in flight (the actor is stopping for another reason).
    pub fn force_close(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
    }

    /// Commands in flight now.
    pub fn in_flight(&self) -> usize {
        self.state.load(Ordering::Acquire) & !CLOSED
    }

    /// Whether the gate is closed.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }
}

/// Places held in a node gate and a section gate; both are returned on drop.
#[derive(Debug)]
pub struct Permit {
    node: Arc<AdmissionGate>,
    section: Arc<AdmissionGate>,
}

impl Permit {
    /// Take a place in `node`, then in `section`; on refusal nothing is held.
    pub fn acquire(
        node: &Arc<AdmissionGate>,
        section: &Arc<AdmissionGate>,
    ) -> Result<Self, Refused> {
        node.try_enter()?;
        if let Err(refused) = section.try_enter() {
            node.leave();
            return Err(refused);
        }
        Ok(Self {
            node: node.clone(),
            section: section.clone(),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.section.leave();
        self.node.leave();
    }
}

#[cfg(all(test, not(registrar_loom)))]
mod tests {
    use super::*;

    #[test]
    fn bound_is_enforced_and_places_come_back() {
        let node = Arc::new(AdmissionGate::new(3));
        let section = Arc::new(AdmissionGate::new(2));
        let a = Permit::acquire(&node, &section).unwrap();
        let _b = Permit::acquire(&node, &section).unwrap();
        assert_eq!(Permit::acquire(&node, &section).unwrap_err(), Refused::Full);
        assert_eq!(
            node.in_flight(),
            2,
            "a refused section must not keep a node place"
        );
        drop(a);
        assert_eq!(section.in_flight(), 1);
        assert!(
            !section.try_close(),
            "cannot close with a command in flight"
        );
    }

    #[test]
    fn closed_gate_refuses_and_counts_down_after_force_close() {
        let g = AdmissionGate::new(5);
        g.try_enter().unwrap();
        g.force_close();
        assert_eq!(g.try_enter(), Err(Refused::Closed));
        g.leave();
        assert_eq!(g.in_flight(), 0);
        assert!(g.is_closed());
    }
}
