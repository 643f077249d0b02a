//! The cluster's figures on this node (forwards, hops, moves, held requests), shared by
//! the parts that count them and read by `/metrics` and the benchmarks.

use prometheus_client::metrics::histogram::Histogram;
use std::sync::atomic::AtomicU64;

/// Cluster figures for `/metrics` and the benchmarks.
pub struct ClusterStats {
    /// Client requests this node sent on to the student's home node.
    pub forwarded: AtomicU64,
    /// Section commands this node routed (local or remote).
    pub section_calls: AtomicU64,
    /// Section commands that took the internal hop to another node.
    pub section_hops: AtomicU64,
    /// Hops resent after a stale map, a lost connection or a move.
    pub section_retries: AtomicU64,
    /// Times this node found itself declared dead and rejoined.
    pub rejoins: AtomicU64,
    /// Handoffs this node completed as the old owner (shards).
    pub shards_handed_over: AtomicU64,
    /// Moves this node recorded (as coordinator or for an operator).
    pub moves_started: AtomicU64,
    /// Moves this node carried out as the old owner.
    pub moves_finished: AtomicU64,
    /// Moves that failed here (not quiet in time, target gone, owner unreachable).
    pub moves_failed: AtomicU64,
    /// Requests held at a moving shard's gates on this node.
    pub held_requests: AtomicU64,
    /// How long the moves this node carried out took.
    pub move_seconds: Histogram,
}

impl Default for ClusterStats {
    fn default() -> Self {
        Self {
            forwarded: AtomicU64::default(),
            section_calls: AtomicU64::default(),
            section_hops: AtomicU64::default(),
            section_retries: AtomicU64::default(),
            rejoins: AtomicU64::default(),
            shards_handed_over: AtomicU64::default(),
            moves_started: AtomicU64::default(),
            moves_finished: AtomicU64::default(),
            moves_failed: AtomicU64::default(),
            held_requests: AtomicU64::default(),
            move_seconds: crate::metrics::move_histogram(),
        }
    }
}
