//! Any node accepts any request. A student's registration requests (enroll, drop, swap,
//! schedule) are served by the student's home node, the owner of the student's shard.
//! [`to_home`] decides first, before the handler runs: when this node is the home, it
//! takes the student's [`HomePass`] and hands it to the handler as a value ([`AtHome`]),
//! which the handler gives to the service; otherwise it sends the request on over the
//! internal hop and hands back the home node's answer unchanged. A map that is stale on
//! either side costs a re-read of the map and another try (within the call timeout,
//! through at most [`MAX_HOPS`] nodes), never a wrong answer: the pass is taken only on
//! the node the map names, after entering the shard's gate.
//!
//! Only a node says how far a request came: the hop count (and the sender's id) counts
//! only on a request carrying the cluster's internal key; a client's made-up hop headers
//! are dropped, so they can neither refuse nor loop its request.
//!
//! A forward whose answer was lost after the request may have reached the home node is
//! sent again only when a second delivery cannot decide twice: a read, or a write with an
//! `Idempotency-Key`. Any other write gets 503 `decision_pending` (it may have been
//! decided); one that never left this node (no connection) is sent again as before.
//!
//! [`node_header`] puts `X-Registrar-Node` on every answer that does not name its node yet:
//! the handlers of enroll, drop and swap name the node that decided the seat, every other
//! answer names the node that answered.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use crate::backoff::Backoff;
use crate::cluster::home::{HomePass, NotHome};
use crate::cluster::peer::{FORWARDED_BY, Forward, HOPS, INTERNAL_KEY, PeerError};
use crate::resources::Role;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// The header naming the node that decided or answered.
pub const NODE_HEADER: &str = "x-registrar-node";

/// Most nodes a client request passes through.
pub const MAX_HOPS: u32 = 4;

/// Request headers a forwarded request keeps.
const PASSED_ON: [HeaderName; 5] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    HeaderName::from_static("idempotency-key"),
    HeaderName::from_static("x-request-id"),
];

/// A student's request admitted on this node as the student's home: the pass the handler
/// hands to the service (see module docs). Put into the request's extensions only by
/// [`to_home`]; a client cannot set it.
#[derive(Clone)]
pub struct AtHome(pub Arc<HomePass>);

/// Serve a student's registration request on the student's home node (see module docs).
pub async fn to_home(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let claims = super::extract::bearer_claims(&state, request.headers())
        .ok()
        .filter(|c| c.role == Role::Student);
    let Some(claims) = claims else {
        // Not a student's call: the handler answers it here (401/403 as it should).
        return next.run(request).await;
    };
    let student = claims.sub;
    let node = state.cluster.clone();
    let shard = node.shard_of(student);
    let (mut parts, body) = request.into_parts();
    let from_peer = parts
        .headers
        .get(INTERNAL_KEY)
        .is_some_and(|key| node.peers.accepts(key.as_bytes()));
    if !from_peer {
        for name in [HOPS, FORWARDED_BY, INTERNAL_KEY] {
            parts.headers.remove(name);
        }
    }
    let hops: u32 = parts
        .headers
        .get(HOPS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // A second delivery of a read, or of a write with a key, cannot decide twice.
    let resendable = parts.method.is_safe() || parts.headers.contains_key("idempotency-key");
    // Served here, the handler's `Caller` takes these verified claims instead of checking
    // the token again (extensions never come from the client).
    parts.extensions.insert(claims);
    // The body is read into memory only if the request is sent on.
    let mut body = Some(body);
    let mut buffered: Option<axum::body::Bytes> = None;
    // A map that is stale here or there costs a re-read and another try, within the call
    // timeout; forwarding stops after MAX_HOPS nodes.
    let deadline = Instant::now() + state.settings.sections_call_timeout();
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(200));
    let mut reread = false;
    loop {
        if reread {
            let _ = node.refresh_soon().await;
        }
        let map = node.map();
        match map.owner(shard) {
            Some(owner) if *owner == node.id => {
                match HomePass::enter(&node, student, deadline).await {
                    Ok(pass) => {
                        parts.extensions.insert(AtHome(Arc::new(pass)));
                        let body = match (body.take(), buffered.take()) {
                            (Some(body), _) => body,
                            (None, Some(bytes)) => Body::from(bytes),
                            (None, None) => Body::empty(),
                        };
                        return next.run(Request::from_parts(parts, body)).await;
                    }
                    Err(e @ NotHome::NoLease) => return ApiError::from(e).into_response(),
                    // Moved away meanwhile: read the map and follow the student.
                    Err(e @ NotHome::Elsewhere) if Instant::now() >= deadline => {
                        return ApiError::from(e).into_response();
                    }
                    Err(NotHome::Elsewhere) => {}
                }
            }
            // A forwarded request that would go on: read the map first, once (the sender
            // may know better than this node).
            Some(_) if hops > 0 && !reread => {
                reread = true;
                continue;
            }
            Some(owner) if hops.saturating_add(1) < MAX_HOPS => {
                let Some(base) = map.address(owner) else {
                    reread = true;
                    continue;
                };
                if let Some(body) = body.take() {
                    match axum::body::to_bytes(body, state.settings.http.max_body_bytes).await {
                        Ok(bytes) => buffered = Some(bytes),
                        Err(_) => {
                            return ApiError::new(
                                ErrorCode::PayloadTooLarge,
                                "the request body is too large",
                            )
                            .into_response();
                        }
                    }
                }
                let mut headers = reqwest::header::HeaderMap::new();
                for name in &PASSED_ON {
                    if let Some(value) = parts.headers.get(name) {
                        headers.insert(name.clone(), value.clone());
                    }
                }
                headers.insert(HOPS, HeaderValue::from(hops.saturating_add(1)));
                let forward = Forward {
                    method: parts.method.clone(),
                    path: parts
                        .uri
                        .path_and_query()
                        .map_or_else(|| parts.uri.path().to_string(), |p| p.to_string()),
                    headers,
                    body: buffered.clone().unwrap_or_default(),
                };
                let timeout = state.settings.request_timeout() + node.lease();
                node.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                match node.peers.forward(base, &node.id, forward, timeout).await {
                    Ok(answer) => return forwarded(answer),
                    Err(e) if resendable || matches!(e, PeerError::Unreached(_)) => {
                        tracing::debug!(%owner, error = %e, "forward failed; re-reading the map");
                    }
                    Err(e) => {
                        tracing::warn!(%owner, error = %e, "forward lost after sending; not resent");
                        return ApiError::new(
                            ErrorCode::DecisionPending,
                            "the link to the student's home node broke after the request \
                             was sent: it may have been recorded; read the schedule before \
                             retrying (with an Idempotency-Key a retry is always safe)",
                        )
                        .retry_after(1)
                        .into_response();
                    }
                }
            }
            // No owner yet (a failover in progress), or too many hops already.
            _ => {}
        }
        if Instant::now() >= deadline {
            return ApiError::unavailable(
                "the student's home node could not be reached; nothing was recorded",
            )
            .into_response();
        }
        reread = true;
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// The home node's answer, as the client gets it.
fn forwarded(answer: crate::cluster::peer::Forwarded) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = answer.status;
    for name in [header::CONTENT_TYPE, header::RETRY_AFTER, header::LOCATION] {
        if let Some(value) = answer.headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    if let Some(value) = answer.headers.get(NODE_HEADER) {
        response.headers_mut().insert(NODE_HEADER, value.clone());
    }
    response
}

/// Put `X-Registrar-Node` on every answer that does not name its node yet.
pub async fn node_header(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let named = response.headers().contains_key(NODE_HEADER);
    if let (false, Ok(value)) = (named, HeaderValue::from_str(&state.cluster.id)) {
        response.headers_mut().insert(NODE_HEADER, value);
    }
    response
}
