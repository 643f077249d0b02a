//! The internal endpoints other nodes call over the hop (never part of the public API):
//! decide a command on a section this node owns, and hand shards over. Each one needs the
//! cluster's internal key (`cluster::peer`); anything else is 403.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Ids};
use crate::cluster::peer::{
    HandoffAnswer, HandoffRequest, INTERNAL_KEY, SectionAnswer, SectionCall,
};
use crate::cluster::router::LocalError;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use registrar_actors::{CallError, SectionId};
use tokio::time::Instant;
use uuid::Uuid;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/internal/v1/sections/{section_id}/call",
            post(section_call),
        )
        .route("/internal/v1/handoff", post(handoff))
}

/// 403 unless the caller presented the cluster's internal key.
fn peer_only(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers.get(INTERNAL_KEY).map(|v| v.as_bytes());
    match presented {
        Some(key) if state.cluster.peers.accepts(key) => Ok(()),
        _ => Err(ApiError::forbidden("internal endpoint")),
    }
}

/// Decide a command on a section this node owns, for a peer.
async fn section_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    Ids(section): Ids<Uuid>,
    ApiJson(call): ApiJson<SectionCall>,
) -> Result<Json<SectionAnswer>, ApiError> {
    peer_only(&state, &headers)?;
    let router = state.registration.router();
    // While the shard moves away, wait for the move (bounded), then say who owns it.
    let deadline = Instant::now() + state.cluster.handoff_timeout();
    let expires = call
        .deadline_ms
        .map(|ms| Instant::now() + std::time::Duration::from_millis(ms));
    let answer = match router
        .local(
            SectionId(section),
            call.command,
            call.home.as_ref(),
            deadline,
            expires,
        )
        .await
    {
        Ok(reply) => SectionAnswer::Decided {
            reply,
            node: state.cluster.id.to_string(),
        },
        Err(LocalError::NotOwner) => SectionAnswer::NotOwner,
        Err(LocalError::StaleHome) => SectionAnswer::StaleHome,
        Err(LocalError::Call(e)) => match e {
            CallError::Overloaded => SectionAnswer::Overloaded,
            CallError::NotFound => SectionAnswer::NotFound,
            CallError::NotOwner => SectionAnswer::NotOwner,
            CallError::Unavailable(message) => SectionAnswer::Unavailable { message },
            CallError::Pending => SectionAnswer::Pending,
        },
    };
    Ok(Json(answer))
}

/// Hand shards over, as the coordinator asks.
async fn handoff(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<HandoffRequest>,
) -> Result<Json<HandoffAnswer>, ApiError> {
    peer_only(&state, &headers)?;
    // In a task of its own: an asker that gives up drops the connection, and a handoff
    // cancelled with it between closing and opening its gates would leave its shards
    // closed here, and let another handoff of them start beside what it left half done.
    let cluster = state.cluster.clone();
    let answer = tokio::spawn(async move { cluster.release(&request).await })
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(answer))
}
