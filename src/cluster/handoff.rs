//! The old owner's side of a handoff (shards S from this node A to node B):
//!
//! 1. close S's home gates and wait until the registration requests of S's students in
//!    flight here have been answered (section gates still open, so they can finish);
//! 2. close S's section gates and wait until the section commands in flight have been
//!    answered (committed);
//! 3. stop S's actors (each commits what it holds first);
//! 4. ONE transaction: S goes to B with its epoch bumped, if B is still an active member
//!    and this incarnation still owns S; the moves are recorded done or failed with it;
//! 5. reload the map, then open the gates: the held work finds S's new owner and goes
//!    there (over the internal hop), or, if the move failed, carries on here.
//!
//! If the shards do not go quiet before the handoff's deadline, the gates open again and
//! nothing changed hands: the held requests only waited. The new owner activates the
//! sections lazily from PostgreSQL at their first command.
//!
//! One handoff of a shard at a time on a node ([`HandoffClaims`]): a second one (a new
//! move, after the coordinator gave up on the first) waits until the first ends, within
//! its own deadline, else it is refused; two never close and open one shard's gates.

use super::gates::{Kind, ShardGates};
use super::map::ShardMap;
use super::map_cache::MapCache;
use super::membership::Membership;
use super::peer::{HandoffAnswer, HandoffRequest};
use super::shard_of;
use super::stats::ClusterStats;
use crate::store::cluster as rows;
use registrar_actors::SectionRegistry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The shards this node is handing off now, each with its move (see module docs).
#[derive(Default)]
pub struct HandoffClaims {
    /// Shard -> the move handing it off.
    claimed: Mutex<HashMap<u32, i64>>,
    /// Woken whenever a handoff ends, for those waiting on its shards.
    released: Notify,
}

/// The shards of one handoff, claimed until it is dropped.
pub struct Claim<'a> {
    claims: &'a HandoffClaims,
    shards: Vec<u32>,
}

impl HandoffClaims {
    /// Claim the shards of `moves`, waiting until `deadline` for other handoffs of them to
    /// end; `Err` with the `(shard, move)` still being handed off then.
    pub async fn claim(
        &self,
        moves: &[(u32, i64)],
        deadline: Instant,
    ) -> Result<Claim<'_>, Vec<(u32, i64)>> {
        loop {
            // Registered before the check, so a release between the two is not missed.
            let released = self.released.notified();
            let mut released = std::pin::pin!(released);
            released.as_mut().enable();
            {
                let mut claimed = self.claimed.lock().expect("handoff claims");
                let busy: Vec<(u32, i64)> = moves
                    .iter()
                    .filter_map(|(shard, _)| claimed.get(shard).map(|id| (*shard, *id)))
                    .collect();
                if busy.is_empty() {
                    claimed.extend(moves.iter().copied());
                    let shards = moves.iter().map(|m| m.0).collect();
                    return Ok(Claim {
                        claims: self,
                        shards,
                    });
                }
                if Instant::now() >= deadline {
                    return Err(busy);
                }
            }
            let _ = tokio::time::timeout_at(deadline, released).await;
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut claimed = self.claims.claimed.lock().expect("handoff claims");
        for shard in &self.shards {
            claimed.remove(shard);
        }
        drop(claimed);
        self.claims.released.notify_waiters();
    }
}

/// The old owner's side of handoffs on this node (see module docs).
pub struct Handoff {
    membership: Arc<Membership>,
    map: Arc<MapCache>,
    /// The gates a handoff closes to quiet its shards.
    gates: Arc<ShardGates>,
    /// The actors of the shards handed off are stopped here.
    registry: Arc<SectionRegistry>,
    stats: Arc<ClusterStats>,
    /// The shards this node is handing off now: one handoff of a shard at a time.
    claims: HandoffClaims,
}

impl Handoff {
    /// The handoffs of the node whose membership, map and gates these are.
    pub fn new(
        membership: Arc<Membership>,
        map: Arc<MapCache>,
        gates: Arc<ShardGates>,
        registry: Arc<SectionRegistry>,
        stats: Arc<ClusterStats>,
    ) -> Self {
        Self {
            membership,
            map,
            gates,
            registry,
            stats,
            claims: HandoffClaims::default(),
        }
    }

    /// Carry out `request` on this node (see module docs).
    pub async fn release(&self, request: &HandoffRequest) -> HandoffAnswer {
        let started = Instant::now();
        let deadline = started + self.membership.handoff_timeout();
        let _claim = match self.claims.claim(&request.moves, deadline).await {
            Ok(claim) => claim,
            Err(busy) => {
                // The move under way is left to its own handoff; only the others end here.
                let others: Vec<i64> = request
                    .moves
                    .iter()
                    .map(|m| m.1)
                    .filter(|id| !busy.iter().any(|(_, b)| b == id))
                    .collect();
                let error = "another handoff of the shard is still under way on this node";
                let _ = rows::fail_moves(self.membership.pool(), &others, error).await;
                self.stats
                    .moves_failed
                    .fetch_add(others.len() as u64, Ordering::Relaxed);
                return HandoffAnswer {
                    moved: Vec::new(),
                    error: Some(error.to_string()),
                };
            }
        };
        let me = self.membership.id();
        let mine = |map: &ShardMap| {
            request
                .moves
                .iter()
                .all(|(shard, _)| map.owner(*shard).is_some_and(|o| *o == *me))
        };
        if !mine(&self.map.map()) {
            // The map may be a notification behind the database: read it first.
            let _ = self.map.refresh().await;
        }
        let map = self.map.map();
        // Only shards this node owns; anything else fails at once.
        let (shards, ids): (Vec<u32>, Vec<i64>) = request
            .moves
            .iter()
            .filter(|(shard, _)| map.owner(*shard).is_some_and(|o| *o == *me))
            .copied()
            .unzip();
        let not_mine: Vec<i64> = request
            .moves
            .iter()
            .filter(|(shard, _)| !shards.contains(shard))
            .map(|m| m.1)
            .collect();
        if !not_mine.is_empty() {
            let _ = rows::fail_moves(
                self.membership.pool(),
                &not_mine,
                "the source does not own the shard",
            )
            .await;
        }
        if shards.is_empty() {
            return HandoffAnswer::default();
        }
        let gates = &self.gates;
        gates.close(Kind::Home, &shards);
        let quiet = gates.quiet(Kind::Home, &shards, deadline).await && {
            gates.close(Kind::Section, &shards);
            gates.quiet(Kind::Section, &shards, deadline).await
        };
        if !quiet {
            gates.open(Kind::Section, &shards);
            gates.open(Kind::Home, &shards);
            self.stats
                .moves_failed
                .fetch_add(shards.len() as u64, Ordering::Relaxed);
            let error = "the shards did not go quiet before the handoff deadline".to_string();
            let _ = rows::fail_moves(self.membership.pool(), &ids, &error).await;
            return HandoffAnswer {
                moved: Vec::new(),
                error: Some(error),
            };
        }
        // Fault suite: the handoff held here, gates closed and shards quiet, nothing
        // handed over yet.
        crate::faults::hold("handoff-hold", me).await;
        let set: HashSet<u32> = shards.iter().copied().collect();
        let total = self.membership.shards();
        self.registry
            .stop_where(|section| set.contains(&shard_of(section.0, total)))
            .await;
        let held_per_shard: Vec<i32> = shards
            .iter()
            .map(|s| (gates.held(Kind::Home, *s) + gates.held(Kind::Section, *s)) as i32)
            .collect();
        let moves: Vec<(u32, i64, i32)> = shards
            .iter()
            .zip(&ids)
            .zip(held_per_shard)
            .map(|((s, id), h)| (*s, *id, h))
            .collect();
        let result = rows::hand_over(
            self.membership.pool(),
            me,
            self.membership.incarnation(),
            &request.to,
            self.membership.lease_ms(),
            &moves,
        )
        .await;
        // Whatever happened (even an error after the commit), the map read now is the truth
        // the held work must follow.
        if let Err(e) = self.map.refresh().await {
            tracing::warn!(error = %e, "map refresh after a handoff failed");
        }
        // Section gates first, so the held home requests let through next find them open.
        let held_at_section_gates = gates.open(Kind::Section, &shards);
        let held_at_home_gates = gates.open(Kind::Home, &shards);
        let held_total: usize = held_at_section_gates
            .iter()
            .chain(&held_at_home_gates)
            .sum();
        let stats = &self.stats;
        stats
            .held_requests
            .fetch_add(held_total as u64, Ordering::Relaxed);
        match result {
            Ok(moved) => {
                stats
                    .shards_handed_over
                    .fetch_add(moved.len() as u64, Ordering::Relaxed);
                stats
                    .moves_finished
                    .fetch_add(moved.len() as u64, Ordering::Relaxed);
                stats
                    .moves_failed
                    .fetch_add((shards.len() - moved.len()) as u64, Ordering::Relaxed);
                for _ in &moved {
                    stats.move_seconds.observe(started.elapsed().as_secs_f64());
                }
                tracing::info!(node = %me, to = %request.to, shards = moved.len(), held = held_total,
                    took_ms = started.elapsed().as_millis() as u64, "shards handed over");
                let error = (moved.len() < shards.len())
                    .then(|| "some shards did not change hands (target not active)".to_string());
                HandoffAnswer { moved, error }
            }
            Err(e) => {
                stats
                    .moves_failed
                    .fetch_add(shards.len() as u64, Ordering::Relaxed);
                let _ = rows::fail_moves(self.membership.pool(), &ids, &e.to_string()).await;
                HandoffAnswer {
                    moved: Vec::new(),
                    error: Some(e.to_string()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_second_handoff_of_a_shard_waits_for_the_first_or_is_refused() {
        let claims = Arc::new(HandoffClaims::default());
        let first = claims
            .claim(&[(1, 10), (2, 11)], Instant::now())
            .await
            .unwrap();
        // Another shard is free at once.
        drop(claims.claim(&[(3, 12)], Instant::now()).await.unwrap());
        // A shard being handed off: refused at the deadline, naming the move under way.
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(
            claims.claim(&[(3, 13), (2, 14)], soon).await.err(),
            Some(vec![(2, 11)])
        );
        // ... or claimed as soon as the first handoff ends.
        let waiting = tokio::spawn({
            let claims = claims.clone();
            async move {
                let later = Instant::now() + Duration::from_secs(5);
                claims.claim(&[(2, 15)], later).await.is_ok()
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        drop(first);
        assert!(waiting.await.unwrap());
    }
}
