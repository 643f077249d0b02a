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

use super::gates::Kind;
use super::node::ClusterNode;
use super::peer::{HandoffAnswer, HandoffRequest};
use super::shard_of;
use crate::store::cluster as rows;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

/// Carry out `request` on this node (see module docs).
pub async fn release(node: &ClusterNode, request: &HandoffRequest) -> HandoffAnswer {
    let mine = |map: &super::map::ShardMap| {
        request
            .moves
            .iter()
            .all(|(shard, _)| map.owner(*shard).is_some_and(|o| *o == node.id))
    };
    if !mine(&node.map()) {
        // The map may be a notification behind the database: read it first.
        let _ = node.refresh().await;
    }
    let map = node.map();
    // Only shards this node owns; anything else fails at once.
    let (shards, ids): (Vec<u32>, Vec<i64>) = request
        .moves
        .iter()
        .filter(|(shard, _)| map.owner(*shard).is_some_and(|o| *o == node.id))
        .copied()
        .unzip();
    let not_mine: Vec<i64> = request
        .moves
        .iter()
        .filter(|(shard, _)| !shards.contains(shard))
        .map(|m| m.1)
        .collect();
    if !not_mine.is_empty() {
        let _ = rows::fail_moves(&node.pool, &not_mine, "the source does not own the shard").await;
    }
    if shards.is_empty() {
        return HandoffAnswer::default();
    }
    let started = Instant::now();
    let deadline = started + node.handoff_timeout();
    let gates = &node.gates;
    gates.close(Kind::Home, &shards);
    let quiet = gates.quiet(Kind::Home, &shards, deadline).await && {
        gates.close(Kind::Section, &shards);
        gates.quiet(Kind::Section, &shards, deadline).await
    };
    if !quiet {
        gates.open(Kind::Section, &shards);
        gates.open(Kind::Home, &shards);
        node.stats
            .moves_failed
            .fetch_add(shards.len() as u64, Ordering::Relaxed);
        let error = "the shards did not go quiet before the handoff deadline".to_string();
        let _ = rows::fail_moves(&node.pool, &ids, &error).await;
        return HandoffAnswer {
            moved: Vec::new(),
            error: Some(error),
        };
    }
    let set: HashSet<u32> = shards.iter().copied().collect();
    let total = node.shards();
    node.registry
        .stop_where(|section| set.contains(&shard_of(section.0, total)))
        .await;
    let held: Vec<i32> = shards
        .iter()
        .map(|s| (gates.held(Kind::Home, *s) + gates.held(Kind::Section, *s)) as i32)
        .collect();
    let moves: Vec<(u32, i64, i32)> = shards
        .iter()
        .zip(&ids)
        .zip(held)
        .map(|((s, id), h)| (*s, *id, h))
        .collect();
    let result = rows::hand_over(
        &node.pool,
        &node.id,
        node.incarnation(),
        &request.to,
        node.settings.lease_ms,
        &moves,
    )
    .await;
    // Whatever happened (even an error after the commit), the map read now is the truth
    // the held work must follow.
    if let Err(e) = node.refresh().await {
        tracing::warn!(error = %e, "map refresh after a handoff failed");
    }
    let held_home = gates.open(Kind::Section, &shards);
    let held_sections = gates.open(Kind::Home, &shards);
    let held: usize = held_home.iter().chain(&held_sections).sum();
    let stats = &node.stats;
    stats
        .held_requests
        .fetch_add(held as u64, Ordering::Relaxed);
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
            tracing::info!(node = %node.id, to = %request.to, shards = moved.len(), held,
                took_ms = started.elapsed().as_millis() as u64, "shards handed over");
            let error = (moved.len() < shards.len())
                .then(|| "some shards did not change hands (target not active)".to_string());
            HandoffAnswer { moved, error }
        }
        Err(e) => {
            stats
                .moves_failed
                .fetch_add(shards.len() as u64, Ordering::Relaxed);
            let _ = rows::fail_moves(&node.pool, &ids, &e.to_string()).await;
            HandoffAnswer {
                moved: Vec::new(),
                error: Some(e.to_string()),
            }
        }
    }
}
