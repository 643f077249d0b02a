//! The operator API of the cluster: members with their leases and load, the shard map,
//! where a section lives, the hottest sections and shard moves (reads, for operators and
//! admins), and moving a shard, draining a node and rebalancing (changes, for operators).
//! The handlers parse, call `cluster::ops` and render its answers (`cluster::view`).

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{ApiJson, ApiQuery, Caller, Ids};
use crate::cluster::ops;
use crate::cluster::view::{
    ClusterView, DrainStarted, HotSection, MoveRow, MoveStarted, RebalanceBy, RebalanceStarted,
    SectionPlace, ShardView,
};
use crate::resources::Role;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
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
fn operator_or_admin(caller: &Caller) -> Result<(), ApiError> {
    match caller.role {
        Role::Operator | Role::Admin => Ok(()),
        Role::Student => Err(ApiError::forbidden("this needs the operator role")),
    }
}

/// 403 unless the caller is an operator (changes).
fn operator_only(caller: &Caller) -> Result<(), ApiError> {
    caller.require(Role::Operator)
}

/// The members, the shard count and the moves in progress.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses((status = 200, body = ClusterView), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn overview(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ClusterView>, ApiError> {
    operator_or_admin(&caller)?;
    let backlog = state.relay.backlog.get(&state.pool).await;
    Ok(Json(ops::overview(&state.cluster, backlog).await?))
}

/// `?node=ID` filter of the shard list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ShardQuery {
    /// Only the shards of this node.
    pub node: Option<String>,
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
    operator_or_admin(&caller)?;
    Ok(Json(ops::shards(&state.cluster, q.node.as_deref()).await?))
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
    operator_or_admin(&caller)?;
    Ok(Json(ops::section(&state.cluster, section).await?))
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
/// heartbeat).
#[utoipa::path(get, path = "/api/v1/cluster/hot-sections", tag = "cluster", params(HotQuery),
    responses((status = 200, body = Vec<HotSection>), (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn hot_sections(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HotQuery>,
) -> Result<Json<Vec<HotSection>>, ApiError> {
    operator_or_admin(&caller)?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "limit must be between 1 and 100",
        ));
    }
    Ok(Json(
        ops::hot_sections(&state.cluster, limit as usize).await?,
    ))
}

/// One shard move.
#[utoipa::path(get, path = "/api/v1/cluster/moves/{move_id}", tag = "cluster", params(("move_id" = i64, Path)),
    responses((status = 200, body = Object), (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem), (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn one_move(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<MoveRow>, ApiError> {
    operator_or_admin(&caller)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::invalid_id(format!("`{id}` is not a move id")))?;
    Ok(Json(ops::one_move(&state.cluster, id).await?))
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
) -> Result<Json<Vec<MoveRow>>, ApiError> {
    operator_or_admin(&caller)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "limit must be between 1 and 1000",
        ));
    }
    Ok(Json(ops::moves(&state.cluster, i64::from(limit)).await?))
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
    let started = ops::move_shard(&state.cluster, shard, body.to, caller.id).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
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
    let started = ops::drain_node(&state.cluster, node_id).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

/// A value the server knows, or what was sent instead (answered `422`, as a field out of
/// range, rather than as a body that is not JSON).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Known<T> {
    /// One of the names the server knows.
    Known(T),
    /// Anything else.
    Other(String),
}

/// How to rebalance.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RebalanceRequest {
    /// `count` (equal shard counts, the default) or `load` (the hottest shards off the
    /// busiest nodes).
    #[schema(value_type = Option<RebalanceBy>)]
    pub by: Option<Known<RebalanceBy>>,
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
    let by = match body.by {
        None => RebalanceBy::default(),
        Some(Known::Known(by)) => by,
        Some(Known::Other(other)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("by must be `count` or `load`, not `{other}`"),
            ));
        }
    };
    let started = ops::rebalance(&state.cluster, by, caller.id).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}
