//! Operations endpoints: `/healthz` (process up), `/readyz` (PostgreSQL reachable and shards
//! owned; broker, mirror and outbox backlog as details) and `/metrics` (Prometheus text).
//! The figures that come from PostgreSQL are read through `store`; the outbox backlog is
//! a cached count (`events::relay::BacklogGauge`), so probes and scrapes stay cheap.

use super::AppState;
use crate::store::ownership::shards_owned;
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

/// Ready to serve: the database answers and this node owns shards. The broker and the
/// cache are reported but do not make a node unready: registration works without them.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let owned = shards_owned(&state.pool, &state.settings.cluster.node_id).await;
    let details = json!({
        "outbox_backlog": state.relay.backlog.get(&state.pool).await,
        "broker": if state.relay.connected.load(Ordering::Relaxed) { "connected" } else { "disconnected" },
        "redis_mirror": state.feed.mirror.as_ref().map(|m| if m.is_healthy() { "ok" } else { "degraded" }),
    });
    let (status, body) = match owned {
        Ok(n) if n > 0 => (
            StatusCode::OK,
            json!({"status": "ready", "postgres": "ok", "shards_owned": n}),
        ),
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "postgres": "ok", "shards_owned": 0}),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "postgres": "unreachable"}),
        ),
    };
    let mut body = body;
    body["details"] = details;
    (status, Json(body))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let s = &state.feed.stats;
    let registry = state.registration.registry();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as i64;
    let mut series: Vec<(&str, &str, &str, i64)> = vec![
        (
            "registrar_batches_committed_total",
            "Section batches committed.",
            "counter",
            load(&s.batches),
        ),
        (
            "registrar_changes_committed_total",
            "Changes committed (outbox rows written).",
            "counter",
            load(&s.changes),
        ),
        (
            "registrar_commit_transactions_total",
            "Transactions of the node-wide committer (each holds one or more section batches).",
            "counter",
            load(&state.committer.transactions),
        ),
        (
            "registrar_commit_batches_total",
            "Section batches written by the node-wide committer.",
            "counter",
            load(&state.committer.batches),
        ),
        (
            "registrar_commit_busy_microseconds_total",
            "Time from BEGIN to COMMIT of the committer's transactions, summed.",
            "counter",
            load(&state.committer.busy_micros),
        ),
        (
            "registrar_enrolled_total",
            "Seats taken.",
            "counter",
            load(&s.enrolled),
        ),
        (
            "registrar_waitlisted_total",
            "Waitlist entries added.",
            "counter",
            load(&s.waitlisted),
        ),
        (
            "registrar_dropped_total",
            "Drops.",
            "counter",
            load(&s.dropped),
        ),
        (
            "registrar_promoted_total",
            "Waitlist promotions.",
            "counter",
            load(&s.promoted),
        ),
        (
            "registrar_commands_in_flight",
            "Commands queued or being decided on this node.",
            "gauge",
            registry.in_flight() as i64,
        ),
        (
            "registrar_active_sections",
            "Section actors alive on this node.",
            "gauge",
            registry.active_sections() as i64,
        ),
        (
            "registrar_db_pool_connections",
            "PostgreSQL connections open.",
            "gauge",
            i64::from(state.pool.size()),
        ),
        (
            "registrar_events_published_total",
            "Outbox events confirmed by the broker.",
            "counter",
            load(&state.relay.published),
        ),
        (
            "registrar_events_unroutable_total",
            "Publishes returned by the broker as unroutable (no queue bound); each stays in the outbox and is retried.",
            "counter",
            load(&state.relay.unroutable),
        ),
        (
            "registrar_outbox_backlog",
            "Outbox rows not yet confirmed by the broker, counted at most every REGISTRAR_BACKLOG_MAX_AGE_MS (-1: unknown).",
            "gauge",
            state.relay.backlog.get(&state.pool).await.unwrap_or(-1),
        ),
    ];
    if let Some(m) = &state.feed.mirror {
        series.push((
            "registrar_mirror_writes_total",
            "Section hashes written to Redis.",
            "counter",
            load(&m.writes),
        ));
        series.push((
            "registrar_mirror_failures_total",
            "Failed Redis write rounds.",
            "counter",
            load(&m.failures),
        ));
    }
    let mut out = String::new();
    for (name, help, kind, value) in series {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
