//! The cluster as the operator API answers and `registrar cluster` reads it: one
//! definition of each answer, serialized by `http::cluster` and deserialized by
//! `cli::cluster`, so the two cannot drift apart. The states in them are the stored ones
//! (`store::cluster`), re-exported here for readers of the views.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::store::cluster::{
    HotSection, MirrorHealth, MoveReason, MoveRow, MoveState, NodeState, ShardState,
};

/// One member.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    /// Stable id.
    pub id: String,
    /// Where peers reach it.
    pub address: String,
    /// Its state.
    pub state: NodeState,
    /// Milliseconds since its last heartbeat.
    pub lease_age_ms: i64,
    /// Shards it owns.
    pub shards_owned: usize,
    /// Its load at its last heartbeat.
    pub load: NodeLoad,
}

/// A member's load, as its last heartbeat reported it (rates over its last heartbeat
/// interval).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeLoad {
    /// Section commands admitted per second.
    pub decisions_per_s: f64,
    /// Section commands queued or being decided.
    pub in_flight: i32,
    /// Client requests answered per second.
    pub requests_per_s: f64,
    /// p99 latency (milliseconds) of its registration requests (enroll, drop, swap,
    /// schedule); `null` if it answered none.
    pub p99_ms: Option<f64>,
    /// 503 `overloaded` answers per second.
    pub overloaded_per_s: f64,
    /// Whether its outbox relay holds a broker link.
    pub broker_connected: bool,
    /// Its Redis mirror: `ok`, `degraded` (breaker open) or `off` (not configured).
    pub redis: MirrorHealth,
}

/// The cluster at a glance (`GET /api/v1/cluster`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    /// The shard count.
    pub shards: usize,
    /// The member holding the coordinator's lease.
    pub coordinator: Option<String>,
    /// Every member that ever joined (the departed and the dead too).
    pub nodes: Vec<NodeView>,
    /// Moves in progress.
    #[schema(value_type = Vec<Object>)]
    pub moves: Vec<MoveRow>,
    /// Outbox rows not yet confirmed by the broker (a cached count, at most
    /// `REGISTRAR_BACKLOG_MAX_AGE_MS` old); `null` if the database could not say.
    pub outbox_backlog: Option<i64>,
    /// When this view was taken (RFC 3339).
    pub at: chrono::DateTime<chrono::Utc>,
}

/// One shard's owner.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ShardView {
    /// The shard.
    pub shard: i32,
    /// Its owner (none while it is reassigned).
    pub node_id: Option<String>,
    /// Bumped at every change of owner.
    pub epoch: i64,
    /// Its state.
    pub state: ShardState,
}

/// Where a section lives.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SectionPlace {
    /// The section.
    pub section_id: Uuid,
    /// Its shard.
    pub shard: u32,
    /// The shard's owner.
    pub node_id: Option<String>,
    /// The shard's epoch.
    pub epoch: i64,
}

/// A move just asked for.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MoveStarted {
    /// Its id (`GET /api/v1/cluster/moves/{id}` follows it).
    pub id: i64,
    /// The shard.
    pub shard: i32,
    /// From this node.
    pub from: String,
    /// To this node.
    pub to: String,
    /// `running` when asked.
    pub state: MoveState,
}

impl From<MoveRow> for MoveStarted {
    fn from(m: MoveRow) -> Self {
        Self {
            id: m.id,
            shard: m.shard,
            from: m.from_node,
            to: m.to_node,
            state: m.state,
        }
    }
}

/// A drain just asked for.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DrainStarted {
    /// The node.
    pub node_id: String,
    /// `draining`.
    pub state: NodeState,
    /// Shards it owns now (all of them are handed off).
    pub shards_owned: usize,
}

/// What a rebalance evens out over the active nodes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum RebalanceBy {
    /// The number of shards each node owns.
    #[default]
    Count,
    /// The load each node reports (the hottest shards leave the busiest nodes).
    Load,
}

impl RebalanceBy {
    /// The API's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Load => "load",
        }
    }
}

/// The moves of a rebalance.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RebalanceStarted {
    /// The moves asked for (empty when already balanced).
    pub moves: Vec<MoveStarted>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebalance_by_has_one_name_for_the_api_and_the_command_line() {
        for by in [RebalanceBy::Count, RebalanceBy::Load] {
            let json = serde_json::to_value(by).unwrap();
            assert_eq!(json, by.as_str());
            assert_eq!(serde_json::from_value::<RebalanceBy>(json).unwrap(), by);
            let arg = clap::ValueEnum::to_possible_value(&by).unwrap();
            assert_eq!(arg.get_name(), by.as_str());
        }
        assert!(serde_json::from_str::<RebalanceBy>(r#""mood""#).is_err());
    }
}
