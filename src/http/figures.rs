//! [`NodeFigures`]: the collector that exports, at each scrape, the counters and gauges
//! the node's parts keep as atomics in their own stats structs (committed batches, seat
//! feed, relay, mirror, cluster routing) and the gauges read from live state (actors,
//! admission, pool, shards). Reading them where they already are keeps the hot paths on
//! plain atomics and the series names unchanged.
//!
//! It reads every layer (store, events, cluster, service, the Redis module), so it lives
//! here, next to the `/metrics` route ([`super::ops`]), above all of them; the registry in
//! [`crate::metrics`] only holds it as a boxed `Collector`, and stays a leaf.

use crate::cluster::gates::Kind;
use crate::cluster::node::ClusterNode;
use crate::events::relay::RelayStats;
use crate::metrics::CommitStats;
use crate::service::feed::SeatFeed;
use crate::store::sections::CommitterStats;
use crate::supervise::TaskHealth;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use registrar_actors::SectionRegistry;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The parts whose figures are read at scrape time (see module docs).
pub struct NodeFigures {
    /// Committed batches and changes, by kind of change.
    pub commits: Arc<CommitStats>,
    /// Seat feed: SSE subscribers, the mirror, counts received from other nodes.
    pub feed: Arc<SeatFeed>,
    /// Section actors and the node's admission gate.
    pub registry: Arc<SectionRegistry>,
    /// The node's admission bound (commands in flight).
    pub max_in_flight: usize,
    /// The node-wide committer.
    pub committer: Arc<CommitterStats>,
    /// Supervised background tasks.
    pub tasks: Arc<TaskHealth>,
    /// The database pool.
    pub pool: PgPool,
    /// The outbox relay.
    pub relay: Arc<RelayStats>,
    /// This node in the cluster.
    pub cluster: Arc<ClusterNode>,
    /// Reads of students' rule inputs (batched on cache misses).
    pub rule_loads: Arc<crate::service::rule_cache::LoadStats>,
}

impl std::fmt::Debug for NodeFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeFigures").finish_non_exhaustive()
    }
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Encode one unlabelled series: `name` without the `_total` a counter gets.
fn one<M: EncodeMetric + TypedMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: M,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, M::TYPE)?)
}

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    one(e, name, help, ConstCounter::new(value))
}

fn gauge(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    one(e, name, help, ConstGauge::new(value))
}

impl Collector for NodeFigures {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut e;
        let s = &self.commits;
        let c = &self.cluster.stats;
        counter(
            e,
            "registrar_batches_committed",
            "Section batches committed.",
            load(&s.batches),
        )?;
        counter(
            e,
            "registrar_changes_committed",
            "Changes committed (outbox rows written).",
            load(&s.changes),
        )?;
        counter(
            e,
            "registrar_commit_transactions",
            "Transactions of the node-wide committer (each holds one or more section batches).",
            load(&self.committer.transactions),
        )?;
        counter(
            e,
            "registrar_commit_batches",
            "Section batches written by the node-wide committer.",
            load(&self.committer.batches),
        )?;
        counter(
            e,
            "registrar_commit_busy_microseconds",
            "Time from BEGIN to COMMIT of the committer's transactions, summed.",
            load(&self.committer.busy_micros),
        )?;
        counter(e, "registrar_enrolled", "Seats taken.", load(&s.enrolled))?;
        counter(
            e,
            "registrar_rule_input_reads",
            "Students whose rule inputs were read from PostgreSQL (cache misses).",
            load(&self.rule_loads.students),
        )?;
        counter(
            e,
            "registrar_rule_input_batches",
            "Queries that read them: misses that arrive while a read is in flight share the next one.",
            load(&self.rule_loads.batches),
        )?;
        counter(
            e,
            "registrar_waitlisted",
            "Waitlist entries added.",
            load(&s.waitlisted),
        )?;
        counter(e, "registrar_dropped", "Drops.", load(&s.dropped))?;
        counter(
            e,
            "registrar_withdrawn",
            "Withdrawals: seats left after the term's drop deadline, with a W on the record.",
            load(&s.withdrawn),
        )?;
        counter(
            e,
            "registrar_promoted",
            "Waitlist promotions.",
            load(&s.promoted),
        )?;
        gauge(
            e,
            "registrar_commands_in_flight",
            "Commands queued or being decided on this node.",
            self.registry.in_flight() as i64,
        )?;
        gauge(
            e,
            "registrar_commands_max_in_flight",
            "The node's admission bound: commands past it are answered 503 overloaded.",
            self.max_in_flight as i64,
        )?;
        let gates = &self.cluster.gates;
        gauge(
            e,
            "registrar_shard_gate_home_in_flight",
            "Registration requests holding a pass at their student's shard gate on this node.",
            gates.total_in_flight(Kind::Home) as i64,
        )?;
        gauge(
            e,
            "registrar_shard_gate_section_in_flight",
            "Section commands holding a pass at their section's shard gate on this node.",
            gates.total_in_flight(Kind::Section) as i64,
        )?;
        gauge(
            e,
            "registrar_active_sections",
            "Section actors alive on this node.",
            self.registry.active_sections() as i64,
        )?;
        counter(
            e,
            "registrar_section_actor_failures",
            "Section actors that failed (panicked) and were cleaned up.",
            self.registry.actor_failures(),
        )?;
        counter(
            e,
            "registrar_task_restarts",
            "Restarts of panicked background tasks.",
            self.tasks.restarts(),
        )?;
        gauge(
            e,
            "registrar_seat_streams",
            "Seat streams (SSE) open on this node.",
            self.feed.subscribers() as i64,
        )?;
        gauge(
            e,
            "registrar_db_pool_connections",
            "PostgreSQL connections open.",
            i64::from(self.pool.size()),
        )?;
        counter(
            e,
            "registrar_events_published",
            "Outbox events confirmed by the broker.",
            load(&self.relay.published),
        )?;
        counter(
            e,
            "registrar_events_unroutable",
            "Publishes returned by the broker as unroutable (no queue bound); each stays in the outbox and is retried.",
            load(&self.relay.unroutable),
        )?;
        gauge(
            e,
            "registrar_broker_connected",
            "1 while the outbox relay holds a working broker link.",
            i64::from(self.relay.connected.load(Ordering::Relaxed)),
        )?;
        gauge(
            e,
            "registrar_cluster_shards_owned",
            "Shards this node owns.",
            self.cluster.map().owned_by(&self.cluster.id) as i64,
        )?;
        gauge(
            e,
            "registrar_cluster_coordinator",
            "1 while this node holds the coordinator's lease.",
            i64::from(self.cluster.is_coordinator()),
        )?;
        counter(
            e,
            "registrar_cluster_forwarded",
            "Client requests sent on to the student's home node.",
            load(&c.forwarded),
        )?;
        counter(
            e,
            "registrar_cluster_section_calls",
            "Section commands routed by this node (local or remote).",
            load(&c.section_calls),
        )?;
        counter(
            e,
            "registrar_cluster_section_hops",
            "Section commands that took the internal hop to another node.",
            load(&c.section_hops),
        )?;
        counter(
            e,
            "registrar_cluster_section_retries",
            "Section commands resent after a stale map, a lost connection or a move.",
            load(&c.section_retries),
        )?;
        counter(
            e,
            "registrar_cluster_rejoins",
            "Times this node found itself declared dead and rejoined.",
            load(&c.rejoins),
        )?;
        counter(
            e,
            "registrar_cluster_shards_handed_over",
            "Shards this node handed to another node.",
            load(&c.shards_handed_over),
        )?;
        counter(
            e,
            "registrar_cluster_moves_started",
            "Shard moves this node recorded (as coordinator or for an operator).",
            load(&c.moves_started),
        )?;
        counter(
            e,
            "registrar_cluster_moves_finished",
            "Shard moves this node carried out as the old owner.",
            load(&c.moves_finished),
        )?;
        counter(
            e,
            "registrar_cluster_moves_failed",
            "Shard moves that failed on this node (not quiet in time, target gone, owner unreachable).",
            load(&c.moves_failed),
        )?;
        counter(
            e,
            "registrar_cluster_held_requests",
            "Requests held at a moving shard's gates on this node.",
            load(&c.held_requests),
        )?;
        one(
            e,
            "registrar_cluster_decisions_per_second",
            "Section commands admitted per second on this node, over the last heartbeat.",
            ConstGauge::new(self.cluster.last_rate()),
        )?;
        if let Some(m) = &self.feed.mirror {
            let r = &self.feed.remote;
            counter(
                e,
                "registrar_mirror_writes",
                "Section hashes written to Redis.",
                load(&m.writes),
            )?;
            counter(
                e,
                "registrar_mirror_failures",
                "Failed Redis write rounds.",
                load(&m.failures),
            )?;
            counter(
                e,
                "registrar_mirror_hits",
                "Section reads answered from Redis.",
                load(&m.hits),
            )?;
            counter(
                e,
                "registrar_mirror_bypassed",
                "Section reads that skipped Redis while its breaker was open.",
                load(&m.bypassed),
            )?;
            counter(
                e,
                "registrar_mirror_stale",
                "Mirror writes refused because Redis held the same or newer counts.",
                load(&m.stale),
            )?;
            counter(
                e,
                "registrar_seat_messages_received",
                "Seat counts received on the Redis seat channel (every node's commits).",
                load(&r.received),
            )?;
            counter(
                e,
                "registrar_seat_messages_applied",
                "Received seat counts that moved a watched section on.",
                load(&r.applied),
            )?;
        }
        let hot = self.cluster.shard_loads();
        if !hot.is_empty() {
            let mut family = e.encode_descriptor(
                "registrar_cluster_shard_decisions_per_second",
                "Decisions per second of this node's busiest shards (top 10), over the last heartbeat.",
                None,
                MetricType::Gauge,
            )?;
            for (shard, rate) in hot.iter().take(10) {
                let labels = [("shard", shard.to_string())];
                ConstGauge::new(*rate).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
