//! The operator's use cases of the cluster, one function each: what the cluster looks
//! like (members, shards, where a section lives, the hottest sections, the moves), and
//! the changes (move a shard, drain a node, rebalance). Each checks what the request may
//! ask of the cluster as it is now and says why not in an [`OpsError`]; the HTTP handlers
//! only parse, call and render (`http::cluster`), and `http::error` maps the errors.
//!
//! Everything is read from PostgreSQL, the one place the map lives, so every node answers
//! the same. Moves asked for are recorded before the answer and carried out in the
//! background by this node's coordinator part, which waits for them at shutdown.

use super::node::ClusterNode;
use super::plan;
use super::view::{
    ClusterView, DrainStarted, HotSection, MoveReason, MoveRow, MoveStarted, NodeLoad, NodeState,
    NodeView, RebalanceBy, RebalanceStarted, SectionPlace, ShardView,
};
use crate::store::{DbError, catalog, cluster as rows, students};
use uuid::Uuid;

/// Why an operator's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The shard number is out of range.
    #[error("shards are numbered 0 to {last}")]
    ShardNotFound {
        /// The highest shard number.
        last: u32,
    },
    /// No member has this id.
    #[error("no such node")]
    NodeNotFound,
    /// The member is not active (or its lease is not live).
    #[error("{node} is {state}, not an active member")]
    NodeNotActive {
        /// The member.
        node: String,
        /// Its state.
        state: NodeState,
    },
    /// The member stopped being active between the check and the change.
    #[error("{node} stopped being active meanwhile")]
    StoppedBeingActive {
        /// The member.
        node: String,
    },
    /// Draining the member would leave its shards to nobody.
    #[error("no other active node could take its shards")]
    NoOtherActive,
    /// The shard is being reassigned after a failure.
    #[error("the shard has no owner right now (a failover is reassigning it); retry shortly")]
    NoOwner,
    /// The shard is where it was asked to go.
    #[error("shard {shard} already belongs to {owner}")]
    AlreadyThere {
        /// The shard.
        shard: u32,
        /// Its owner, the move's target.
        owner: String,
    },
    /// The shard has a move in progress.
    #[error("the shard already has a move in progress")]
    ShardMoving,
    /// The shard's owner changed between the check and the record.
    #[error("the shard changed hands meanwhile; read the map and ask again")]
    ChangedHands,
    /// No such section.
    #[error("no such section")]
    SectionNotFound,
    /// No such move.
    #[error("no such move")]
    MoveNotFound,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The members, the shard count and the moves in progress, with the relay's
/// `outbox_backlog`.
pub async fn overview(
    node: &ClusterNode,
    outbox_backlog: Option<i64>,
) -> Result<ClusterView, DbError> {
    let pool = node.pool();
    let (members, shards, moves, coordinator) = tokio::try_join!(
        rows::nodes(pool),
        rows::shards(pool),
        rows::moves(pool, true, 1_000),
        rows::coordinator(pool),
    )?;
    let owned = |id: &str| {
        shards
            .iter()
            .filter(|s| s.node_id.as_deref() == Some(id))
            .count()
    };
    let nodes = members
        .into_iter()
        .map(|m| NodeView {
            shards_owned: owned(&m.id),
            load: NodeLoad {
                decisions_per_s: m.decisions_per_s,
                in_flight: m.in_flight,
                requests_per_s: m.requests_per_s,
                p99_ms: m.p99_ms,
                overloaded_per_s: m.overloaded_per_s,
                broker_connected: m.broker_connected,
                redis: m.redis,
            },
            id: m.id,
            address: m.address,
            state: m.state,
            lease_age_ms: m.lease_age_ms,
        })
        .collect();
    Ok(ClusterView {
        shards: shards.len(),
        coordinator,
        nodes,
        moves,
        outbox_backlog,
        at: chrono::Utc::now(),
    })
}

/// The shard map, or only the shards of `of`.
pub async fn shards(node: &ClusterNode, of: Option<&str>) -> Result<Vec<ShardView>, OpsError> {
    let pool = node.pool();
    if let Some(of) = of {
        let members = rows::nodes(pool).await?;
        if !members.iter().any(|m| m.id == of) {
            return Err(OpsError::NodeNotFound);
        }
    }
    let shards = rows::shards(pool).await?;
    Ok(shards
        .into_iter()
        .filter(|s| of.is_none() || s.node_id.as_deref() == of)
        .map(|s| ShardView {
            shard: s.shard,
            node_id: s.node_id,
            epoch: s.epoch,
            state: s.state,
        })
        .collect())
}

/// The node a section lives on.
pub async fn section(node: &ClusterNode, section: Uuid) -> Result<SectionPlace, OpsError> {
    let pool = node.pool();
    if catalog::section(pool, section).await?.is_none() {
        return Err(OpsError::SectionNotFound);
    }
    let shard = node.shard_of(section);
    let owner = rows::shards(pool)
        .await?
        .into_iter()
        .find(|s| s.shard == shard as i32);
    Ok(SectionPlace {
        section_id: section,
        shard,
        node_id: owner.as_ref().and_then(|o| o.node_id.clone()),
        epoch: owner.map_or(0, |o| o.epoch),
    })
}

/// The `limit` busiest sections now, across the live members (as each reported at its
/// last heartbeat).
pub async fn hot_sections(node: &ClusterNode, limit: usize) -> Result<Vec<HotSection>, DbError> {
    let lease = node.lease_ms() as i64;
    let mut hot: Vec<HotSection> = rows::nodes(node.pool())
        .await?
        .into_iter()
        .filter(|m| m.state.takes_part() && m.lease_age_ms <= lease)
        .flat_map(|m| m.hot_sections)
        .collect();
    hot.sort_by(|a, b| b.decisions_per_s.total_cmp(&a.decisions_per_s));
    hot.truncate(limit);
    Ok(hot)
}

/// One shard move.
pub async fn one_move(node: &ClusterNode, id: i64) -> Result<MoveRow, OpsError> {
    rows::move_by_id(node.pool(), id)
        .await?
        .ok_or(OpsError::MoveNotFound)
}

/// The newest `limit` shard moves, newest first.
pub async fn moves(node: &ClusterNode, limit: i64) -> Result<Vec<MoveRow>, DbError> {
    rows::moves(node.pool(), false, limit).await
}

/// Move `shard` to the active member `to`, for `operator`: its owner holds new requests
/// for it, lets its commits finish and gives it away in one transaction; the held
/// requests then go to the new owner.
pub async fn move_shard(
    node: &ClusterNode,
    shard: u32,
    to: String,
    operator: Uuid,
) -> Result<MoveStarted, OpsError> {
    if shard >= node.shards() {
        return Err(OpsError::ShardNotFound {
            last: node.shards() - 1,
        });
    }
    node.refresh().await?;
    let map = node.map();
    let Some(target) = map.members.get(to.as_str()) else {
        return Err(OpsError::NodeNotFound);
    };
    if !target.is_active(node.lease_ms()) {
        return Err(OpsError::NodeNotActive {
            node: to,
            state: target.row.state,
        });
    }
    let Some(from) = map.owner(shard).map(|o| o.to_string()) else {
        return Err(OpsError::NoOwner);
    };
    if from == to {
        return Err(OpsError::AlreadyThere { shard, owner: from });
    }
    let moves = vec![plan::Move { shard, from, to }];
    let started = start_moves(node, operator, moves, MoveReason::Operator).await?;
    started.into_iter().next().ok_or(OpsError::ChangedHands)
}

/// Drain the member `node_id`: every shard it owns is handed to the active members, then
/// it is `left` (it keeps forwarding what reaches it, unready, until it is stopped).
pub async fn drain_node(node: &ClusterNode, node_id: String) -> Result<DrainStarted, OpsError> {
    node.refresh().await?;
    let map = node.map();
    let lease = node.lease_ms();
    let Some(member) = map.members.get(node_id.as_str()) else {
        return Err(OpsError::NodeNotFound);
    };
    if !member.is_active(lease) {
        return Err(OpsError::NodeNotActive {
            node: node_id,
            state: member.row.state,
        });
    }
    let others = map
        .members
        .iter()
        .any(|(id, m)| **id != *node_id && m.is_active(lease));
    if !others {
        return Err(OpsError::NoOtherActive);
    }
    if !rows::drain(node.pool(), &node_id).await? {
        return Err(OpsError::StoppedBeingActive { node: node_id });
    }
    Ok(DrainStarted {
        shards_owned: map.owned_by(&node_id),
        node_id,
        state: NodeState::Draining,
    })
}

/// Rebalance the shards over the active nodes, `by` shard count or by the load each
/// node reports, for `operator`.
pub async fn rebalance(
    node: &ClusterNode,
    by: RebalanceBy,
    operator: Uuid,
) -> Result<RebalanceStarted, OpsError> {
    let by_load = by == RebalanceBy::Load;
    let moves = node.coordinator().plan_rebalance(by_load).await?;
    let moves = start_moves(node, operator, moves, MoveReason::Rebalance).await?;
    Ok(RebalanceStarted { moves })
}

/// Record `moves` and have the coordinator part run them in the background; the recorded
/// moves.
async fn start_moves(
    node: &ClusterNode,
    operator: Uuid,
    moves: Vec<plan::Move>,
    reason: MoveReason,
) -> Result<Vec<MoveStarted>, OpsError> {
    if moves.is_empty() {
        return Ok(Vec::new());
    }
    let who = operator_name(node, operator).await?;
    let coordinator = node.coordinator();
    let (batches, recorded) =
        coordinator
            .record(moves, reason, &who)
            .await
            .map_err(|e| match e {
                DbError::Duplicate(_) => OpsError::ShardMoving,
                other => other.into(),
            })?;
    coordinator.execute_in_background(batches);
    Ok(recorded.into_iter().map(MoveStarted::from).collect())
}

/// Who asked, for the record of moves: the operator's username (its id if it has none).
async fn operator_name(node: &ClusterNode, operator: Uuid) -> Result<String, DbError> {
    Ok(students::get(node.pool(), operator)
        .await?
        .map(|s| s.username)
        .unwrap_or_else(|| operator.to_string()))
}
