//! The operator console's figures: `GET /api/v1/cluster` carries each node's requests per
//! second, registration p99, overloaded answers per second, broker and Redis state from
//! its last heartbeat, plus the outbox backlog and the time of the view; and they move
//! when the node serves registration requests, including shed ones.

use crate::helpers::*;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The figures of the (only) node in `view`.
fn load(view: &Value) -> &Value {
    &view["nodes"][0]["load"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_sees_requests_latency_and_shed_load_per_node() {
    let app = TestApp::spawn_with(|s| {
        s.cluster.heartbeat_ms = 300;
        s.cluster.lease_ms = 3_000;
        // A section takes one command at a time: a burst is partly shed as `overloaded`.
        s.sections.section_max_in_flight = 1;
    })
    .await;
    let admin = app.admin_token.clone();
    let (_, section) = app.open_cs101(1000, 0, json!([])).await;
    let students = app.students(60, &[]).await;

    // Before any registration request: no p99, nothing shed; the view names its time.
    // (Wait for a heartbeat that saw the mirror connected: the first may predate it.)
    let mut view = Value::Null;
    wait_until("a heartbeat with the mirror connected", async || {
        view = app.get_json("/api/v1/cluster", Some(&admin)).await;
        load(&view)["redis"] == "ok"
    })
    .await;
    assert!(
        view["at"].as_str().is_some_and(|at| at.contains('T')),
        "{view}"
    );
    assert!(view["outbox_backlog"].is_i64(), "{view}");
    let quiet = load(&view);
    assert!(quiet["p99_ms"].is_null(), "{view}");
    assert_eq!(quiet["overloaded_per_s"], 0.0, "{view}");
    assert!(quiet["broker_connected"].is_boolean(), "{view}");

    let enroll = format!("/api/v1/sections/{section}/enrollments");
    let statuses = join_all(students.iter().map(|(_, t)| {
        let req = app.request(Method::POST, &enroll, Some(t));
        async move { req.send().await.unwrap().status() }
    }))
    .await;
    let shed = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    let enrolled = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(shed + enrolled, students.len(), "{statuses:?}");
    let (_, token) = &students[0];
    if statuses[0] == StatusCode::CREATED {
        assert_eq!(app.drop_section(token, section).await.0, StatusCode::OK);
    }

    // The burst shows in a heartbeat (or two, if it straddled one): requests per second,
    // a p99, and the shed answers if any were shed.
    let (mut saw_requests, mut saw_p99, mut saw_shed) = (false, false, shed == 0);
    wait_until("a heartbeat reported the burst", async || {
        let view = app.get_json("/api/v1/cluster", Some(&admin)).await;
        let l = load(&view);
        saw_requests |= l["requests_per_s"].as_f64().unwrap() > 0.0;
        saw_p99 |= l["p99_ms"].as_f64().is_some_and(|ms| ms > 0.0);
        saw_shed |= l["overloaded_per_s"].as_f64().unwrap() > 0.0;
        saw_requests && saw_p99 && saw_shed
    })
    .await;

    // The same answers on /metrics: every 503 `overloaded` counted, by status and outcome.
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(
        value("registrar_http_overloaded_total"),
        shed as f64,
        "{metrics}"
    );
    assert_eq!(
        value("registrar_decisions_total{outcome=\"overloaded\"}"),
        shed as f64,
        "{metrics}"
    );
    assert_eq!(
        value("registrar_decisions_total{outcome=\"enrolled\"}"),
        enrolled as f64,
        "{metrics}"
    );
    let route = "route=\"/api/v1/sections/{section_id}/enrollments\"";
    assert_eq!(
        value(&format!(
            "registrar_http_request_duration_seconds_count{{method=\"POST\",{route},status=\"201\"}}"
        )),
        enrolled as f64,
        "{metrics}"
    );

    // Quiet again: the next heartbeats report no registration latency and nothing shed.
    wait_until("a quiet heartbeat", async || {
        let view = app.get_json("/api/v1/cluster", Some(&admin)).await;
        let l = load(&view);
        l["p99_ms"].is_null() && l["overloaded_per_s"] == 0.0
    })
    .await;
    app.stop().await;
}
