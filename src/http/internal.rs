//! The internal endpoints other nodes call over the hop (never part of the public API):
//! decide a command on a section this node owns, hand shards over, and open the binary
//! wire (`cluster::wire`), which carries section calls and forwarded student requests on
//! a connection authenticated once. Each one needs the cluster's internal key
//! (`cluster::peer`); anything else is 403. A node run with `transport = "http"` answers
//! the wire's upgrade 404, so its peers ask it over HTTP.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{ApiJson, Ids};
use super::forward::{ForwardHead, FromPeer, wire_answer};
use crate::cluster::peer::{
    HandoffAnswer, HandoffRequest, INTERNAL_KEY, SectionAnswer, SectionCall,
};
use crate::cluster::router::LocalError;
use crate::cluster::wire::{self, SectionRequest};
use crate::config::Transport;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use registrar_actors::{CallError, SectionId};
use std::sync::Arc;
use tokio::time::Instant;
use tower::ServiceExt;
use uuid::Uuid;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/internal/v1/sections/{section_id}/call",
            post(section_call),
        )
        .route("/internal/v1/handoff", post(handoff))
        .route(wire::PATH, get(open_wire))
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
    Ok(Json(decide(&state, SectionId(section), call).await))
}

/// A peer's section call decided on this node's actor (or why not).
async fn decide(state: &AppState, section: SectionId, call: SectionCall) -> SectionAnswer {
    let router = state.registration.router();
    // While the shard moves away, wait for the move (bounded), then say who owns it.
    let deadline = Instant::now() + state.cluster.handoff_timeout();
    let expires = call
        .deadline_ms
        .map(|ms| Instant::now() + std::time::Duration::from_millis(ms));
    match router
        .local(section, call.command, call.home.as_ref(), deadline, expires)
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
    }
}

/// Open the wire for a peer: check its key and version, answer 101, and serve the
/// upgraded connection in a task of its own.
async fn open_wire(State(state): State<AppState>, mut request: Request) -> Response {
    if let Err(refused) = peer_only(&state, request.headers()) {
        return refused.into_response();
    }
    if state.settings.cluster.transport != Transport::Wire {
        return ApiError::new(ErrorCode::NotFound, "this node does not serve the wire")
            .into_response();
    }
    let headers = request.headers();
    let asks_for_wire = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(wire::UPGRADE.as_bytes()));
    let version = headers
        .get(wire::VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u8>().ok())
        .filter(|v| *v >= 1)
        .map(|v| v.min(wire::VERSION));
    let (true, Some(version)) = (asks_for_wire, version) else {
        return ApiError::invalid_body("expected an upgrade to the wire with a version")
            .into_response();
    };
    let Some(upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return ApiError::invalid_body("the wire is opened by an HTTP/1.1 upgrade").into_response();
    };
    let handler = Arc::new(PeerCalls {
        students: super::forwarded_app(state.clone()),
        state: state.clone(),
    });
    let sessions = state.cluster.wire_sessions.clone();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                wire::serve(hyper_util::rt::TokioIo::new(upgraded), handler, sessions).await;
            }
            Err(e) => tracing::debug!(error = %e, "a peer's wire upgrade failed"),
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static(wire::UPGRADE));
    headers.insert(wire::VERSION_HEADER, HeaderValue::from(u16::from(version)));
    response
}

/// What this node does with its peers' calls over the wire.
struct PeerCalls {
    state: AppState,
    /// The registration routes a forwarded request is served by.
    students: Router,
}

impl wire::Handler for PeerCalls {
    async fn section_call(&self, request: SectionRequest) -> SectionAnswer {
        decide(&self.state, request.section, request.call).await
    }

    async fn forward(&self, head: Bytes, body: Bytes) -> (Bytes, Bytes) {
        let response = match wire::unpack::<ForwardHead>(&head) {
            Ok(head) => self.serve(head, body).await,
            Err(e) => ApiError::unavailable(format!(
                "a peer sent a request this node cannot read ({e}); nothing was recorded"
            ))
            .into_response(),
        };
        wire_answer(response).await
    }
}

impl PeerCalls {
    /// Run a forwarded request through the registration routes, with the claims the edge
    /// verified.
    async fn serve(&self, head: ForwardHead, body: Bytes) -> Response {
        let mut builder = Request::builder()
            .method(head.method.as_str())
            .uri(head.path.as_str());
        for (name, value) in &head.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut request = match builder.body(Body::from(body)) {
            Ok(request) => request,
            Err(e) => {
                return ApiError::unavailable(format!(
                    "a peer forwarded a request this node cannot rebuild ({e}); nothing was recorded"
                ))
                .into_response();
            }
        };
        request.extensions_mut().insert(FromPeer {
            claims: head.claims,
            hops: head.hops,
        });
        match self.students.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
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
