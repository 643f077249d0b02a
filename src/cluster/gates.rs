//! Per-shard admission on this node, which is what lets a handoff quiesce a shard: every
//! piece of work on a shard holds a [`Pass`] while it runs, and a handoff closes the
//! shard's gate (new work waits, counted as held), waits for the passes out to come back,
//! then opens the gate once ownership has moved (the waiting work then finds the new owner).
//!
//! Two gates per shard: [`Kind::Home`] for the registration requests of the shard's
//! students (held from the student's lock to the section's answer) and [`Kind::Section`]
//! for commands on the shard's sections. A handoff quiets the home gates first, with the
//! section gates still open, so a student request in flight can always reach its
//! sections; section commands wait on nothing, so the second wait always ends.
//!
//! Closing and entering use sequentially consistent atomics: the closer sets `closed`
//! then reads `in_flight`, an entrant adds itself to `in_flight` then reads `closed`;
//! at least one of them sees the other, so no pass slips past a quiet shard.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Which work a gate admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Registration requests of the shard's students.
    Home,
    /// Commands on the shard's sections.
    Section,
}

#[derive(Default)]
struct Gate {
    in_flight: AtomicUsize,
    closed: AtomicBool,
    /// Entrants that found the gate closed since it was last closed.
    held: AtomicUsize,
    /// Wakes held entrants when the gate opens.
    opened: Notify,
    /// Wakes the closer when the last pass comes back.
    drained: Notify,
}

/// The gates of every shard (see module docs).
pub struct ShardGates {
    home: Vec<Gate>,
    section: Vec<Gate>,
}

/// The gate stayed closed until the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("shard {0} is moving")]
pub struct Moving(pub u32);

/// A piece of work admitted on a shard; given back on drop.
pub struct Pass {
    gates: Arc<ShardGates>,
    kind: Kind,
    shard: u32,
}

impl Drop for Pass {
    fn drop(&mut self) {
        let gate = self.gates.gate(self.kind, self.shard);
        if gate.in_flight.fetch_sub(1, SeqCst) == 1 && gate.closed.load(SeqCst) {
            gate.drained.notify_waiters();
        }
    }
}

impl ShardGates {
    /// Open gates for `shards` shards.
    pub fn new(shards: u32) -> Arc<Self> {
        let gates = || (0..shards).map(|_| Gate::default()).collect();
        Arc::new(Self {
            home: gates(),
            section: gates(),
        })
    }

    fn gate(&self, kind: Kind, shard: u32) -> &Gate {
        let gates = match kind {
            Kind::Home => &self.home,
            Kind::Section => &self.section,
        };
        &gates[shard as usize % gates.len()]
    }

    /// Admit work on `shard`, waiting while its gate is closed, at most until `deadline`.
    pub async fn enter(
        self: &Arc<Self>,
        kind: Kind,
        shard: u32,
        deadline: Instant,
    ) -> Result<Pass, Moving> {
        let gate = self.gate(kind, shard);
        let mut counted = false;
        loop {
            gate.in_flight.fetch_add(1, SeqCst);
            if !gate.closed.load(SeqCst) {
                return Ok(Pass {
                    gates: self.clone(),
                    kind,
                    shard,
                });
            }
            // Closed: step back out (waking the closer if we were the last) and wait for
            // the gate to open; registered before the re-check, so no opening is missed.
            if gate.in_flight.fetch_sub(1, SeqCst) == 1 {
                gate.drained.notify_waiters();
            }
            if !counted {
                gate.held.fetch_add(1, SeqCst);
                counted = true;
            }
            let opened = gate.opened.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if !gate.closed.load(SeqCst) {
                continue;
            }
            if tokio::time::timeout_at(deadline, opened).await.is_err() {
                return Err(Moving(shard));
            }
        }
    }

    /// Close the gates of `shards`: new work waits until [`ShardGates::open`].
    pub fn close(&self, kind: Kind, shards: &[u32]) {
        for s in shards {
            let gate = self.gate(kind, *s);
            gate.held.store(0, SeqCst);
            gate.closed.store(true, SeqCst);
        }
    }

    /// Open the gates of `shards`; the work that waited goes on (and finds the shard's
    /// owner again). The number of entrants that were held, per shard.
    pub fn open(&self, kind: Kind, shards: &[u32]) -> Vec<usize> {
        shards
            .iter()
            .map(|s| {
                let gate = self.gate(kind, *s);
                gate.closed.store(false, SeqCst);
                gate.opened.notify_waiters();
                gate.held.load(SeqCst)
            })
            .collect()
    }

    /// Wait until no pass of `shards` is out (their gates closed first), at most until
    /// `deadline`; whether they went quiet.
    pub async fn quiet(&self, kind: Kind, shards: &[u32], deadline: Instant) -> bool {
        for s in shards {
            let gate = self.gate(kind, *s);
            loop {
                let drained = gate.drained.notified();
                tokio::pin!(drained);
                drained.as_mut().enable();
                if gate.in_flight.load(SeqCst) == 0 {
                    break;
                }
                if tokio::time::timeout_at(deadline, drained).await.is_err() {
                    return false;
                }
            }
        }
        true
    }

    /// Entrants held at `shard`'s gate since it was last closed.
    pub fn held(&self, kind: Kind, shard: u32) -> usize {
        self.gate(kind, shard).held.load(SeqCst)
    }

    /// Passes out on every shard of `kind` now (this node's gate occupancy).
    pub fn total_in_flight(&self, kind: Kind) -> usize {
        let gates = match kind {
            Kind::Home => &self.home,
            Kind::Section => &self.section,
        };
        gates.iter().map(|g| g.in_flight.load(SeqCst)).sum()
    }

    /// Passes out on `shard` now.
    pub fn in_flight(&self, kind: Kind, shard: u32) -> usize {
        self.gate(kind, shard).in_flight.load(SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn a_closed_gate_holds_entrants_until_it_opens() {
        let gates = ShardGates::new(4);
        let pass = gates.enter(Kind::Section, 1, soon()).await.unwrap();
        gates.close(Kind::Section, &[1]);
        // The pass out keeps the shard busy; a short wait fails.
        let short = Instant::now() + Duration::from_millis(20);
        assert!(!gates.quiet(Kind::Section, &[1], short).await);
        let waiter = {
            let gates = gates.clone();
            tokio::spawn(async move { gates.enter(Kind::Section, 1, soon()).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "entered a closed gate");
        drop(pass);
        assert!(gates.quiet(Kind::Section, &[1], soon()).await);
        // Other shards and the other kind are not affected.
        assert!(gates.enter(Kind::Section, 2, soon()).await.is_ok());
        assert!(gates.enter(Kind::Home, 1, soon()).await.is_ok());
        assert_eq!(gates.open(Kind::Section, &[1]), vec![1]);
        assert!(waiter.await.unwrap());
        assert_eq!(gates.in_flight(Kind::Section, 1), 0);
    }

    #[tokio::test]
    async fn an_entrant_gives_up_at_its_deadline() {
        let gates = ShardGates::new(2);
        gates.close(Kind::Home, &[0]);
        let short = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            gates.enter(Kind::Home, 0, short).await.err(),
            Some(Moving(0))
        );
        assert_eq!(gates.in_flight(Kind::Home, 0), 0);
    }
}
