//! Operations endpoints: `/healthz` (process up), `/readyz` (PostgreSQL reachable and shards
//! owned) and `/metrics` (Prometheus text format).

use super::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::fmt::Write;
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

/// Ready to serve: the database answers and this node owns shards.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let owned: Result<i64, _> =
        sqlx::query_scalar("SELECT count(*) FROM shard_owners WHERE node_id = $1")
            .bind(&state.settings.node_id)
            .fetch_one(&state.pool)
            .await;
    match owned {
        Ok(n) if n > 0 => (
            StatusCode::OK,
            Json(json!({"status": "ready", "postgres": "ok", "shards_owned": n})),
        ),
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "postgres": "ok", "shards_owned": 0})),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "postgres": "unreachable"})),
        ),
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let s = &state.feed.stats;
    let registry = state.registration.registry();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    gauge(
        "registrar_batches_committed_total",
        "Section batches committed.",
        "counter",
        s.batches.load(Ordering::Relaxed),
    );
    gauge(
        "registrar_changes_committed_total",
        "Changes committed (outbox rows written).",
        "counter",
        s.changes.load(Ordering::Relaxed),
    );
    gauge(
        "registrar_enrolled_total",
        "Seats taken.",
        "counter",
        s.enrolled.load(Ordering::Relaxed),
    );
    gauge(
        "registrar_waitlisted_total",
        "Waitlist entries added.",
        "counter",
        s.waitlisted.load(Ordering::Relaxed),
    );
    gauge(
        "registrar_dropped_total",
        "Drops.",
        "counter",
        s.dropped.load(Ordering::Relaxed),
    );
    gauge(
        "registrar_promoted_total",
        "Waitlist promotions.",
        "counter",
        s.promoted.load(Ordering::Relaxed),
    );
    gauge(
        "registrar_commands_in_flight",
        "Commands queued or being decided on this node.",
        "gauge",
        registry.in_flight() as u64,
    );
    gauge(
        "registrar_active_sections",
        "Section actors alive on this node.",
        "gauge",
        registry.active_sections() as u64,
    );
    gauge(
        "registrar_db_pool_connections",
        "PostgreSQL connections open.",
        "gauge",
        u64::from(state.pool.size()),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
