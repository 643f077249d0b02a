//! The operator's reads of the cluster: members with their leases and load, the shard map,
//! where a section lives, the hottest sections, and shard moves. Operators (and admins)
//! only. Everything is read from PostgreSQL, the one place the map lives, so every node
//! answers the same.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{ApiQuery, Caller, Ids};
use crate::resources::Role;
use crate::store::{catalog, cluster as rows};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cluster", get(overview))
        .route("/api/v1/cluster/shards", get(shards))
        .route("/api/v1/cluster/sections/{section_id}", get(section))
        .route("/api/v1/cluster/hot-sections", get(hot_sections))
        .route("/api/v1/cluster/moves/{move_id}", get(one_move))
}

/// 403 unless the caller is an operator or an admin.
fn operator(caller: &Caller) -> Result<(), ApiError> {
    match caller.role {
        Role::Operator | Role::Admin => Ok(()),
        Role::Student => Err(ApiError::forbidden("this needs the operator role")),
    }
}

/// One member.
#[derive(Serialize, ToSchema)]
pub struct NodeView {
    /// Stable id.
    pub id: String,
    /// Where peers reach it.
    pub address: String,
    /// `joining`, `active`, `draining`, `left` or `dead`.
    pub state: String,
    /// Milliseconds since its last heartbeat.
    pub lease_age_ms: i64,
    /// Shards it owns.
    pub shards_owned: usize,
    /// Its load at its last heartbeat.
    pub load: NodeLoad,
}

/// A member's load.
#[derive(Serialize, ToSchema)]
pub struct NodeLoad {
    /// Section commands admitted per second.
    pub decisions_per_s: f64,
    /// Section commands queued or being decided.
    pub in_flight: i32,
}

/// The cluster at a glance.
#[derive(Serialize, ToSchema)]
pub struct ClusterView {
    /// The shard count.
    pub shards: usize,
    /// The member holding the coordinator's lease.
    pub coordinator: Option<String>,
    /// Every member that ever joined (the departed and the dead too).
    pub nodes: Vec<NodeView>,
    /// Moves in progress.
    #[schema(value_type = Vec<Object>)]
    pub moves: Vec<rows::MoveRow>,
}

/// The members, the shard count and the moves in progress.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses((status = 200, body = ClusterView), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn overview(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ClusterView>, ApiError> {
    operator(&caller)?;
    let (members, shards, moves, coordinator) = tokio::try_join!(
        rows::nodes(&state.pool),
        rows::shards(&state.pool),
        rows::moves(&state.pool, true, 1_000),
        rows::coordinator(&state.pool),
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
            },
            id: m.id,
            address: m.address,
            state: m.state,
            lease_age_ms: m.lease_age_ms,
        })
        .collect();
    Ok(Json(ClusterView {
        shards: shards.len(),
        coordinator,
        nodes,
        moves,
    }))
}

/// `?node=ID` filter of the shard list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ShardQuery {
    /// Only the shards of this node.
    pub node: Option<String>,
}

/// One shard's owner.
#[derive(Serialize, ToSchema)]
pub struct ShardView {
    /// The shard.
    pub shard: i32,
    /// Its owner (none while it is reassigned).
    pub node_id: Option<String>,
    /// Bumped at every change of owner.
    pub epoch: i64,
    /// `active`, `moving` or `unowned`.
    pub state: String,
}

/// The shard map.
#[utoipa::path(get, path = "/api/v1/cluster/shards", tag = "cluster", params(ShardQuery),
    responses((status = 200, body = Vec<ShardView>), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn shards(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ShardQuery>,
) -> Result<Json<Vec<ShardView>>, ApiError> {
    operator(&caller)?;
    if let Some(node) = &q.node {
        let members = rows::nodes(&state.pool).await?;
        if !members.iter().any(|m| &m.id == node) {
            return Err(ApiError::new(ErrorCode::NodeNotFound, "no such node"));
        }
    }
    let shards = rows::shards(&state.pool).await?;
    Ok(Json(
        shards
            .into_iter()
            .filter(|s| q.node.is_none() || s.node_id == q.node)
            .map(|s| ShardView {
                shard: s.shard,
                node_id: s.node_id,
                epoch: s.epoch,
                state: s.state,
            })
            .collect(),
    ))
}

/// Where a section lives.
#[derive(Serialize, ToSchema)]
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

/// The node a section lives on.
#[utoipa::path(get, path = "/api/v1/cluster/sections/{section_id}", tag = "cluster", params(("section_id" = Uuid, Path)),
    responses((status = 200, body = SectionPlace), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn section(
    State(state): State<AppState>,
    caller: Caller,
    Ids(section): Ids<Uuid>,
) -> Result<Json<SectionPlace>, ApiError> {
    operator(&caller)?;
    if catalog::section(&state.pool, section).await?.is_none() {
        return Err(ApiError::new(ErrorCode::SectionNotFound, "no such section"));
    }
    let shard = state.cluster.shard_of(section);
    let owner = rows::shards(&state.pool)
        .await?
        .into_iter()
        .find(|s| s.shard == shard as i32);
    Ok(Json(SectionPlace {
        section_id: section,
        shard,
        node_id: owner.as_ref().and_then(|o| o.node_id.clone()),
        epoch: owner.map_or(0, |o| o.epoch),
    }))
}

/// `?limit=N` of the hot-section list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HotQuery {
    /// How many (1-100, default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// The busiest sections now, across the live members (as each reported at its last
/// heartbeat): `[{"section_id","shard","node_id","decisions_per_s","in_flight"}]`.
#[utoipa::path(get, path = "/api/v1/cluster/hot-sections", tag = "cluster", params(HotQuery),
    responses((status = 200, body = Vec<Object>), (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn hot_sections(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HotQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    operator(&caller)?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "limit must be between 1 and 100",
        ));
    }
    let lease = state.settings.cluster.lease_ms as i64;
    let mut hot: Vec<Value> = rows::nodes(&state.pool)
        .await?
        .into_iter()
        .filter(|m| {
            matches!(m.state.as_str(), "joining" | "active" | "draining") && m.lease_age_ms <= lease
        })
        .flat_map(|m| match m.hot_sections {
            Value::Array(list) => list,
            _ => Vec::new(),
        })
        .collect();
    let rate = |v: &Value| v["decisions_per_s"].as_f64().unwrap_or(0.0);
    hot.sort_by(|a, b| rate(b).total_cmp(&rate(a)));
    hot.truncate(limit as usize);
    Ok(Json(hot))
}

/// One shard move.
#[utoipa::path(get, path = "/api/v1/cluster/moves/{move_id}", tag = "cluster", params(("move_id" = i64, Path)),
    responses((status = 200, body = Object), (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn one_move(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    operator(&caller)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::invalid_id(format!("`{id}` is not a move id")))?;
    let found = rows::move_by_id(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::MoveNotFound, "no such move"))?;
    Ok(Json(json!(found)))
}
