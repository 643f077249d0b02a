//! Operations endpoints: `/healthz` (process up), `/readyz` (PostgreSQL reachable, lease
//! held and shard map loaded, committer workers up; shards owned, broker, mirror, outbox
//! backlog and the supervised tasks as details) and `/metrics` (Prometheus text).
//! The figures that come from PostgreSQL are read through `store`; the outbox backlog is
//! a cached count (`events::relay::BacklogGauge`), so probes and scrapes stay cheap.

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

/// Ready to serve: the database answers, this node holds its lease and has loaded the
/// shard map. A node that owns no shard yet is ready (it serves by forwarding, and the
/// coordinator hands it shards). The broker and the cache are reported but do not make a
/// node unready: registration works without them.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, description = "ready", body = serde_json::Value), (status = 503, description = "not ready", body = serde_json::Value)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let postgres = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&state.pool)
        .await
        .is_ok();
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

/// Append Prometheus series to a `String`, one line each: `kind name, "help" = value;`.
macro_rules! series {
    ($out:ident; $($kind:ident $name:ident, $help:literal = $value:expr;)*) => {
        $(
            let _ = writeln!(
                $out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}",
                name = stringify!($name),
                help = $help,
                kind = stringify!($kind),
                value = $value,
            );
        )*
    };
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let s = &state.feed.stats;
    let registry = state.registration.registry();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as i64;
    let c = &state.cluster.stats;
    let mut out = String::new();
    series! { out;
        counter registrar_batches_committed_total, "Section batches committed." = load(&s.batches);
        counter registrar_changes_committed_total, "Changes committed (outbox rows written)." = load(&s.changes);
        counter registrar_commit_transactions_total, "Transactions of the node-wide committer (each holds one or more section batches)." = load(&state.committer.transactions);
        counter registrar_commit_batches_total, "Section batches written by the node-wide committer." = load(&state.committer.batches);
        counter registrar_commit_busy_microseconds_total, "Time from BEGIN to COMMIT of the committer's transactions, summed." = load(&state.committer.busy_micros);
        counter registrar_enrolled_total, "Seats taken." = load(&s.enrolled);
        counter registrar_waitlisted_total, "Waitlist entries added." = load(&s.waitlisted);
        counter registrar_dropped_total, "Drops." = load(&s.dropped);
        counter registrar_promoted_total, "Waitlist promotions." = load(&s.promoted);
        gauge registrar_commands_in_flight, "Commands queued or being decided on this node." = registry.in_flight() as i64;
        gauge registrar_active_sections, "Section actors alive on this node." = registry.active_sections() as i64;
        counter registrar_section_actor_failures_total, "Section actors that failed (panicked) and were cleaned up." = registry.actor_failures();
        counter registrar_task_restarts_total, "Restarts of panicked background tasks." = state.tasks.restarts();
        gauge registrar_seat_streams, "Seat streams (SSE) open on this node." = state.feed.subscribers() as i64;
        gauge registrar_db_pool_connections, "PostgreSQL connections open." = i64::from(state.pool.size());
        counter registrar_events_published_total, "Outbox events confirmed by the broker." = load(&state.relay.published);
        counter registrar_events_unroutable_total, "Publishes returned by the broker as unroutable (no queue bound); each stays in the outbox and is retried." = load(&state.relay.unroutable);
        gauge registrar_cluster_shards_owned, "Shards this node owns." = state.cluster.map().owned_by(&state.cluster.id) as i64;
        gauge registrar_cluster_coordinator, "1 while this node holds the coordinator's lease." = i64::from(state.cluster.is_coordinator());
        counter registrar_cluster_forwarded_total, "Client requests sent on to the student's home node." = load(&c.forwarded);
        counter registrar_cluster_section_calls_total, "Section commands routed by this node (local or remote)." = load(&c.section_calls);
        counter registrar_cluster_section_hops_total, "Section commands that took the internal hop to another node." = load(&c.section_hops);
        counter registrar_cluster_section_retries_total, "Section commands resent after a stale map, a lost connection or a move." = load(&c.section_retries);
        counter registrar_cluster_rejoins_total, "Times this node found itself declared dead and rejoined." = load(&c.rejoins);
        counter registrar_cluster_shards_handed_over_total, "Shards this node handed to another node." = load(&c.shards_handed_over);
        counter registrar_cluster_moves_started_total, "Shard moves this node recorded (as coordinator or for an operator)." = load(&c.moves_started);
        counter registrar_cluster_moves_finished_total, "Shard moves this node carried out as the old owner." = load(&c.moves_finished);
        counter registrar_cluster_moves_failed_total, "Shard moves that failed on this node (not quiet in time, target gone, owner unreachable)." = load(&c.moves_failed);
        counter registrar_cluster_held_requests_total, "Requests held at a moving shard's gates on this node." = load(&c.held_requests);
        gauge registrar_cluster_decisions_per_second, "Section commands admitted per second on this node, over the last heartbeat." = state.cluster.last_rate();
        gauge registrar_outbox_backlog, "Outbox rows not yet confirmed by the broker, counted at most every REGISTRAR_BACKLOG_MAX_AGE_MS (-1: unknown)." = state.relay.backlog.get(&state.pool).await.unwrap_or(-1);
    }
    if let Some(m) = &state.feed.mirror {
        series! { out;
            counter registrar_mirror_writes_total, "Section hashes written to Redis." = load(&m.writes);
            counter registrar_mirror_failures_total, "Failed Redis write rounds." = load(&m.failures);
            counter registrar_mirror_hits_total, "Section reads answered from Redis." = load(&m.hits);
            counter registrar_mirror_bypassed_total, "Section reads that skipped Redis while its breaker was open." = load(&m.bypassed);
            counter registrar_mirror_stale_total, "Mirror writes refused because Redis held the same or newer counts." = load(&m.stale);
            counter registrar_seat_messages_received_total, "Seat counts received on the Redis seat channel (every node's commits)." = load(&state.feed.remote.received);
            counter registrar_seat_messages_applied_total, "Received seat counts that moved a watched section on." = load(&state.feed.remote.applied);
        }
    }
    out.push_str(&c.move_seconds.render(
        "registrar_cluster_move_duration_seconds",
        "How long the shard moves this node carried out took (quiet, stop, hand over).",
    ));
    let hot = state.cluster.shard_loads();
    if !hot.is_empty() {
        out.push_str("# HELP registrar_cluster_shard_decisions_per_second Decisions per second of this node's busiest shards (top 10), over the last heartbeat.\n# TYPE registrar_cluster_shard_decisions_per_second gauge\n");
        for (shard, rate) in hot.iter().take(10) {
            let _ = writeln!(
                out,
                "registrar_cluster_shard_decisions_per_second{{shard=\"{shard}\"}} {rate}"
            );
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
