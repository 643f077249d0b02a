//! Operations endpoints: `/healthz` (process up), `/readyz` (PostgreSQL reachable, lease
//! held and shard map loaded, committer workers up; shards owned, broker, mirror, outbox
//! backlog and the supervised tasks as details) and `/metrics` (the node's registry, see
//! `crate::metrics`, in the OpenMetrics text format).
//! The figures that come from PostgreSQL are read through `store`; the outbox backlog is
//! a cached count (`events::relay::BacklogGauge`), so probes and scrapes stay cheap.

use super::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::atomic::Ordering;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready to serve: the database answers, this node holds its lease and has loaded the
/// shard map. A node that owns no shard yet is ready (it serves by forwarding, and the
/// coordinator hands it shards). The broker and the cache are reported but do not make a
/// node unready: registration works without them.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, description = "ready", body = serde_json::Value), (status = 503, description = "not ready", body = serde_json::Value)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let postgres = crate::store::ping(&state.pool).await;
    let cluster = &state.cluster;
    let map = cluster.map();
    let details = json!({
        "node": &*cluster.id,
        "shards_owned": map.owned_by(&cluster.id),
        "coordinator": cluster.is_coordinator(),
        "outbox_backlog": state.relay.backlog.get(&state.pool).await,
        "broker": if state.relay.connected.load(Ordering::Relaxed) { "connected" } else { "disconnected" },
        "redis_mirror": state.feed.mirror.as_ref().map(|m| if m.is_healthy() { "ok" } else { "degraded" }),
        "tasks": state.tasks.report(),
    });
    // Without a committer no decision can be recorded; the other tasks only delay events
    // or the mirror, so they are reported but do not make the node unready.
    let committers_down = state.tasks.down("committer");
    let (status, mut body) = if !committers_down.is_empty() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "committers_down": committers_down}),
        )
    } else if !postgres {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "postgres": "unreachable"}),
        )
    } else if !cluster.is_ready() || !map.loaded {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "postgres": "ok", "cluster": "no lease or no shard map yet"}),
        )
    } else {
        (
            StatusCode::OK,
            json!({"status": "ready", "postgres": "ok", "shards_owned": map.owned_by(&cluster.id)}),
        )
    };
    body["details"] = details;
    (status, Json(body))
}

/// Prometheus metrics (OpenMetrics text, from the node's `prometheus-client` registry).
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "OpenMetrics text format")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // The one figure that needs a round trip (at most every max age) is sampled here;
    // every other series is read as the registry encodes.
    let backlog = state.relay.backlog.get(&state.pool).await.unwrap_or(-1);
    state.metrics.outbox_backlog.set(backlog);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
