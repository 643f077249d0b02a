//! The operator's reads of the cluster: members with their leases and load, the shard map,
//! where a section lives, the hottest sections, and shard moves. Operators (and admins)
//! only. Everything is read from PostgreSQL, the one place the map lives, so every node
//! answers the same.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{ApiJson, ApiQuery, Caller, Ids};
use crate::cluster::{coordinator, plan};
use crate::resources::Role;
use crate::store::{catalog, cluster as rows};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
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
        .route("/api/v1/cluster/moves", get(list_moves))
        .route("/api/v1/cluster/moves/{move_id}", get(one_move))
        .route("/api/v1/cluster/shards/{shard}/move", post(move_shard))
        .route("/api/v1/cluster/nodes/{node_id}/drain", post(drain_node))
        .route("/api/v1/cluster/rebalance", post(rebalance))
}

/// 403 unless the caller is an operator or an admin (reads).
fn operator(caller: &Caller) -> Result<(), ApiError> {
    match caller.role {
        Role::Operator | Role::Admin => Ok(()),
        Role::Student => Err(ApiError::forbidden("this needs the operator role")),
    }
}

/// 403 unless the caller is an operator (changes).
fn operator_only(caller: &Caller) -> Result<(), ApiError> {
    caller.require(Role::Operator)
}

/// Who asked, for the record of moves: the operator's username.
async fn requested_by(state: &AppState, caller: &Caller) -> Result<String, ApiError> {
    Ok(crate::store::students::get(&state.pool, caller.id)
        .await?
        .map(|s| s.username)
        .unwrap_or_else(|| caller.id.to_string()))
}

/// Record `moves` and run them in the background; the recorded moves.
async fn start_moves(
    state: &AppState,
    caller: &Caller,
    moves: Vec<plan::Move>,
    reason: &str,
) -> Result<Vec<MoveStarted>, ApiError> {
    if moves.is_empty() {
        return Ok(Vec::new());
    }
    let who = requested_by(state, caller).await?;
    let (batches, recorded) = coordinator::record(&state.cluster, moves, reason, &who)
        .await
        .map_err(|e| match e {
            crate::store::DbError::Duplicate(_) => ApiError::new(
                ErrorCode::ShardMoving,
                "the shard already has a move in progress",
            ),
            other => other.into(),
        })?;
    let node = state.cluster.clone();
    tokio::spawn(async move { coordinator::execute(&node, batches).await });
    Ok(recorded.into_iter().map(MoveStarted::from).collect())
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

/// A member's load, as its last heartbeat reported it (rates over its last heartbeat
/// interval).
#[derive(Serialize, ToSchema)]
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
    #[schema(pattern = "^(ok|degraded|off)$")]
    pub redis: String,
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
    /// Outbox rows not yet confirmed by the broker (a cached count, at most
    /// `REGISTRAR_BACKLOG_MAX_AGE_MS` old); `null` if the database could not say.
    pub outbox_backlog: Option<i64>,
    /// When this view was taken (RFC 3339).
    pub at: chrono::DateTime<chrono::Utc>,
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
    Ok(Json(ClusterView {
        shards: shards.len(),
        coordinator,
        nodes,
        moves,
        outbox_backlog: state.relay.backlog.get(&state.pool).await,
        at: chrono::Utc::now(),
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

/// A move just asked for.
#[derive(Serialize, ToSchema)]
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
    pub state: String,
}

impl From<rows::MoveRow> for MoveStarted {
    fn from(m: rows::MoveRow) -> Self {
        Self {
            id: m.id,
            shard: m.shard,
            from: m.from_node,
            to: m.to_node,
            state: m.state,
        }
    }
}

/// `?limit=N` of the move list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MovesQuery {
    /// How many (1-1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The newest shard moves first.
#[utoipa::path(get, path = "/api/v1/cluster/moves", tag = "cluster", params(MovesQuery),
    responses((status = 200, body = Vec<Object>), (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_moves(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<MovesQuery>,
) -> Result<Json<Vec<rows::MoveRow>>, ApiError> {
    operator(&caller)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "limit must be between 1 and 1000",
        ));
    }
    Ok(Json(
        rows::moves(&state.pool, false, i64::from(limit)).await?,
    ))
}

/// Where a shard goes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// The receiving node (an active member).
    pub to: String,
}

/// Move one shard to another node: its owner holds new requests for it, lets its commits
/// finish and gives it away in one transaction; the held requests then go to the new
/// owner. Follow it with `GET /api/v1/cluster/moves/{id}`.
#[utoipa::path(post, path = "/api/v1/cluster/shards/{shard}/move", tag = "cluster", params(("shard" = u32, Path)),
    request_body = MoveRequest,
    responses((status = 202, body = MoveStarted), (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
        (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem),
        (status = 422, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn move_shard(
    State(state): State<AppState>,
    caller: Caller,
    Path(shard): Path<String>,
    ApiJson(body): ApiJson<MoveRequest>,
) -> Result<(StatusCode, Json<MoveStarted>), ApiError> {
    operator_only(&caller)?;
    let shard: u32 = shard
        .parse()
        .map_err(|_| ApiError::invalid_id(format!("`{shard}` is not a shard number")))?;
    let node = &state.cluster;
    if shard >= node.shards() {
        return Err(ApiError::new(
            ErrorCode::ShardNotFound,
            format!("shards are numbered 0 to {}", node.shards() - 1),
        ));
    }
    node.refresh().await?;
    let map = node.map();
    let Some(target) = map.members.get(body.to.as_str()) else {
        return Err(ApiError::new(ErrorCode::NodeNotFound, "no such node"));
    };
    if !target.is_active(state.settings.cluster.lease_ms) {
        return Err(ApiError::new(
            ErrorCode::NodeNotActive,
            format!("{} is {}, not an active member", body.to, target.row.state),
        ));
    }
    let Some(from) = map.owner(shard).map(|o| o.to_string()) else {
        return Err(ApiError::unavailable(
            "the shard has no owner right now (a failover is reassigning it); retry shortly",
        ));
    };
    if from == body.to {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("shard {shard} already belongs to {from}"),
        ));
    }
    let moves = vec![plan::Move {
        shard,
        from,
        to: body.to,
    }];
    let started = start_moves(&state, &caller, moves, "operator").await?;
    let first = started.into_iter().next().ok_or_else(|| {
        ApiError::new(
            ErrorCode::ShardMoving,
            "the shard changed hands meanwhile; read the map and ask again",
        )
    })?;
    Ok((StatusCode::ACCEPTED, Json(first)))
}

/// A drain just asked for.
#[derive(Serialize, ToSchema)]
pub struct DrainStarted {
    /// The node.
    pub node_id: String,
    /// `draining`.
    pub state: String,
    /// Shards it owns now (all of them are handed off).
    pub shards_owned: usize,
}

/// Drain a node: every shard it owns is handed to the active members, then it is `left`
/// (it keeps forwarding what reaches it, unready, until it is stopped).
#[utoipa::path(post, path = "/api/v1/cluster/nodes/{node_id}/drain", tag = "cluster", params(("node_id" = String, Path)),
    responses((status = 202, body = DrainStarted), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn drain_node(
    State(state): State<AppState>,
    caller: Caller,
    Path(node_id): Path<String>,
) -> Result<(StatusCode, Json<DrainStarted>), ApiError> {
    operator_only(&caller)?;
    let node = &state.cluster;
    node.refresh().await?;
    let map = node.map();
    let lease = state.settings.cluster.lease_ms;
    let Some(member) = map.members.get(node_id.as_str()) else {
        return Err(ApiError::new(ErrorCode::NodeNotFound, "no such node"));
    };
    if !member.is_active(lease) {
        return Err(ApiError::new(
            ErrorCode::NodeNotActive,
            format!("{node_id} is {}, not an active member", member.row.state),
        ));
    }
    let others = map
        .members
        .iter()
        .any(|(id, m)| **id != *node_id && m.is_active(lease));
    if !others {
        return Err(ApiError::new(
            ErrorCode::NoActiveNode,
            "no other active node could take its shards",
        ));
    }
    if !rows::drain(&state.pool, &node_id).await? {
        return Err(ApiError::new(
            ErrorCode::NodeNotActive,
            format!("{node_id} stopped being active meanwhile"),
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(DrainStarted {
            shards_owned: map.owned_by(&node_id),
            node_id,
            state: "draining".into(),
        }),
    ))
}

/// How to rebalance.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RebalanceRequest {
    /// `count` (equal shard counts) or `load` (the hottest shards off the busiest nodes).
    pub by: Option<String>,
}

/// The moves of a rebalance.
#[derive(Serialize, ToSchema)]
pub struct RebalanceStarted {
    /// The moves asked for (empty when already balanced).
    pub moves: Vec<MoveStarted>,
}

/// Rebalance the shards over the active nodes, by shard count or by the load each node
/// reports.
#[utoipa::path(post, path = "/api/v1/cluster/rebalance", tag = "cluster", request_body = RebalanceRequest,
    responses((status = 202, body = RebalanceStarted), (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
        (status = 403, body = super::error::Problem), (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn rebalance(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RebalanceRequest>,
) -> Result<(StatusCode, Json<RebalanceStarted>), ApiError> {
    operator_only(&caller)?;
    let by_load = match body.by.as_deref() {
        None | Some("count") => false,
        Some("load") => true,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("by must be `count` or `load`, not `{other}`"),
            ));
        }
    };
    let moves = coordinator::plan_rebalance(&state.cluster, by_load).await?;
    let reason = "rebalance";
    let moves = start_moves(&state, &caller, moves, reason).await?;
    Ok((StatusCode::ACCEPTED, Json(RebalanceStarted { moves })))
}
