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
//! Over the wire (`cluster::wire`), a forward carries the request's method, path, a few
//! headers, body and the verified claims ([`ForwardHead`]): the home checks no token
//! again, and runs the handler behind [`crate::http::forwarded_app`]'s few layers. A
//! peer that does not speak the wire gets the HTTP request, with the token, as before.
//!
//! [`node_header`] puts `X-Registrar-Node` on every answer that does not name its node yet:
//! the handlers of enroll, drop and swap name the node that decided the seat, every other
//! answer names the node that answered.
//!
//! Every answer to a student's registration request (and a student's sign-in) also says
//! where the student's home is, by this node's map: `X-Registrar-Home`, the address peers
//! reach it at ([`home_hint`]). A client that can reach the nodes (a load generator, a
//! sidecar, an ingress on the nodes' network) may send the student's next requests there
//! and save the forward; any node still answers, so a stale hint costs a forward, never a
//! wrong answer.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use crate::backoff::Backoff;
use crate::cluster::home::{HomePass, NotHome};
use crate::cluster::node::ClusterNode;
use crate::cluster::peer::{FORWARDED_BY, Forward, HOPS, INTERNAL_KEY, PeerError};
use crate::cluster::wire::{self, WireError};
use crate::resources::Role;
use crate::service::auth::Claims;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// The header naming the node that decided or answered.
pub const NODE_HEADER: &str = "x-registrar-node";

/// The header naming the address of the student's home node (see module docs).
pub const HOME_HEADER: &str = "x-registrar-home";

/// The address of `student`'s home node by this node's map, as [`HOME_HEADER`]'s value;
/// `None` while the student's shard has no owner, or when hints are off
/// (`REGISTRAR_HOME_HINTS=false`).
pub fn home_hint(state: &AppState, student: uuid::Uuid) -> Option<HeaderValue> {
    let map = state.cluster.map();
    let owner = map.owner(state.cluster.shard_of(student))?;
    hint(state, map.address(owner)?)
}

/// `address` as [`HOME_HEADER`]'s value, if hints are on.
fn hint(state: &AppState, address: &str) -> Option<HeaderValue> {
    let on = state.settings.cluster.home_hints;
    on.then(|| HeaderValue::from_str(address).ok()).flatten()
}

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

/// A student's request forwarded over the wire, as the home node receives it: the
/// request's verified claims and how many nodes it passed through. Put into a request's
/// extensions only by the wire's handler; a client cannot set it.
#[derive(Clone)]
pub struct FromPeer {
    /// The claims the edge verified.
    pub claims: Claims,
    /// Nodes passed through.
    pub hops: u32,
}

/// A forwarded request over the wire (see module docs).
#[derive(Debug, Serialize, Deserialize)]
pub struct ForwardHead {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The headers passed on, but the token.
    pub headers: Vec<(String, String)>,
    /// The claims the edge verified.
    pub claims: Claims,
    /// Nodes passed through, this one included.
    pub hops: u32,
    /// The sending node.
    pub from: String,
}

/// The home node's answer to a [`ForwardHead`] (its body travels beside it).
#[derive(Debug, Serialize, Deserialize)]
pub struct ForwardedHead {
    /// Status.
    pub status: u16,
    /// The headers the client gets from the home node.
    pub headers: Vec<(String, String)>,
}

/// The answer headers the home node's answer passes on to the client.
const PASSED_BACK: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::RETRY_AFTER,
    header::LOCATION,
    HeaderName::from_static(NODE_HEADER),
    HeaderName::from_static(HOME_HEADER),
];

/// Serve a student's registration request on the student's home node (see module docs).
pub async fn to_home(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // A request a peer forwarded over the wire comes with the claims it verified.
    let (claims, wire_hops) = match request.extensions_mut().remove::<FromPeer>() {
        Some(FromPeer { claims, hops }) => (Some(claims), Some(hops)),
        None => (
            super::extract::bearer_claims(&state, request.headers()).ok(),
            None,
        ),
    };
    let Some(claims) = claims.filter(|c| c.role == Role::Student) else {
        // Not a student's call: the handler answers it here (401/403 as it should).
        return next.run(request).await;
    };
    let student = claims.sub;
    let node = state.cluster.clone();
    let shard = node.shard_of(student);
    let (mut parts, body) = request.into_parts();
    let from_peer = wire_hops.is_some()
        || parts
            .headers
            .get(INTERNAL_KEY)
            .is_some_and(|key| node.peers.accepts(key.as_bytes()));
    if !from_peer {
        for name in [HOPS, FORWARDED_BY, INTERNAL_KEY] {
            parts.headers.remove(name);
        }
    }
    let hops: u32 = wire_hops.unwrap_or_else(|| {
        parts
            .headers
            .get(HOPS)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    });
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
                        let mut answer = next.run(Request::from_parts(parts, body)).await;
                        if let Some(hint) = map.address(owner).and_then(|a| hint(&state, a)) {
                            answer.headers_mut().insert(HOME_HEADER, hint);
                        }
                        return answer;
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
                let timeout = state.settings.request_timeout() + node.lease();
                node.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                let body = buffered.clone().unwrap_or_default();
                let hops = hops.saturating_add(1);
                match send_on(&node, base, &parts, hops, body, timeout).await {
                    Ok(mut answer) => {
                        // The home names itself; an older node's answer gets the address
                        // it was sent to. With hints off here, the client gets none.
                        let named = answer.headers().contains_key(HOME_HEADER);
                        if !named || !state.settings.cluster.home_hints {
                            match hint(&state, base) {
                                Some(hint) => answer.headers_mut().insert(HOME_HEADER, hint),
                                None => answer.headers_mut().remove(HOME_HEADER),
                            };
                        }
                        return answer;
                    }
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

/// Send a student's request on to the node at `base` (its home, by this node's map): over
/// the wire when the peer speaks it and every header passed on is text, else as an HTTP
/// request carrying the token. The home node's answer, as the client gets it.
async fn send_on(
    node: &ClusterNode,
    base: &str,
    parts: &axum::http::request::Parts,
    hops: u32,
    body: axum::body::Bytes,
    timeout: Duration,
) -> Result<Response, PeerError> {
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.to_string());
    let text: Option<Vec<(String, String)>> = PASSED_ON
        .iter()
        .filter(|name| **name != header::AUTHORIZATION)
        .filter_map(|name| Some((name, parts.headers.get(name)?)))
        .map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    // The claims `to_home` verified (and put into the extensions for the handler).
    let claims = parts.extensions.get::<Claims>();
    if let (Some(wire), Some(headers), Some(claims)) = (node.peers.wire(), text, claims) {
        let head = ForwardHead {
            method: parts.method.to_string(),
            path: path.clone(),
            headers,
            claims: claims.clone(),
            hops,
            from: node.id.to_string(),
        };
        match wire
            .forward(base, wire::pack(&head), body.clone(), timeout)
            .await
        {
            Ok((head, body)) => {
                let head: ForwardedHead = wire::unpack(&head)?;
                return Ok(render(head, body));
            }
            Err(WireError::Peer(e)) => return Err(e),
            Err(WireError::Unsupported) => {}
        }
    }
    let mut headers = reqwest::header::HeaderMap::new();
    for name in &PASSED_ON {
        if let Some(value) = parts.headers.get(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    headers.insert(HOPS, HeaderValue::from(hops));
    let forward = Forward {
        method: parts.method.clone(),
        path,
        headers,
        body,
    };
    let answer = node.peers.forward(base, &node.id, forward, timeout).await?;
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = answer.status;
    for name in PASSED_BACK {
        if let Some(value) = answer.headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    Ok(response)
}

/// A wire answer as the client gets it.
fn render(head: ForwardedHead, body: axum::body::Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = axum::http::StatusCode::from_u16(head.status)
        .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    for (name, value) in head.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) && PASSED_BACK.contains(&name)
        {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The answer a forwarded request got here, as its wire answer: head and body.
pub async fn wire_answer(response: Response) -> (axum::body::Bytes, axum::body::Bytes) {
    let (parts, body) = response.into_parts();
    let headers = PASSED_BACK
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            Some((name.to_string(), value.to_string()))
        })
        .collect();
    // The body of a registration answer is a small JSON document, already in memory.
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let head = ForwardedHead {
        status: parts.status.as_u16(),
        headers,
    };
    (wire::pack(&head), body)
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
