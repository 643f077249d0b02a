//! Limits on what a client can make the server hold: open seat streams per node, the time
//! one request may take, and the length of a student's completed courses. Each limit
//! answers with a clear problem instead of growing without bound.

use crate::helpers::*;
use reqwest::{Client, Method, StatusCode};
use serde_json::json;
use std::time::Duration;

/// Assert `r` is a 503 with `code` and a `Retry-After`.
async fn expect_503(what: &str, r: reqwest::Response, code: &str) {
    assert!(
        r.headers().get("retry-after").is_some(),
        "{what}: no Retry-After in {:?}",
        r.headers()
    );
    expect_problem(what, r, StatusCode::SERVICE_UNAVAILABLE, code).await;
}

#[tokio::test]
async fn seat_streams_beyond_the_cap_are_refused_until_one_closes() {
    let app = TestApp::spawn_with(|s| s.http.sse_max_subscribers = 2).await;
    let (_, section) = app.open_cs101(5, 0, json!([])).await;
    let path = format!("/api/v1/sections/{section}/seats/stream");
    // One client (so one connection) per stream: dropping a stream closes its connection.
    let first = app.seat_stream(&Client::new(), section).await;
    let mut second = app.seat_stream(&Client::new(), section).await;
    let third = Client::new().get(app.url(&path)).send().await.unwrap();
    expect_503("a third stream", third, "overloaded").await;
    assert_eq!(
        second.next_event().await["seats_taken"],
        0,
        "open streams still work"
    );

    drop(first);
    let mut replacement = None;
    wait_until("the closed stream's slot to be given again", async || {
        let r = Client::new().get(app.url(&path)).send().await.unwrap();
        if r.status() == StatusCode::OK {
            replacement = Some(EventStream::new(r));
            return true;
        }
        expect_503("a stream while the slot is still held", r, "overloaded").await;
        false
    })
    .await;
    let mut replacement = replacement.unwrap();
    assert_eq!(replacement.next_event().await["seats_taken"], 0);
    let r = Client::new().get(app.url(&path)).send().await.unwrap();
    expect_503("a stream beyond the cap again", r, "overloaded").await;
    app.stop().await;
}

#[tokio::test]
async fn a_request_past_the_time_limit_gets_unavailable_and_streams_stay_open() {
    // A 1 ms limit is raised to the call timeout plus a margin (2 s here).
    let app = TestApp::spawn_with(|s| {
        s.http.request_timeout_ms = 1;
        s.sections.call_timeout_ms = 1_000;
    })
    .await;
    let (_, section) = app.open_cs101(5, 0, json!([])).await;
    let mut stream = app.seat_stream(&app.client, section).await;
    assert_eq!(stream.next_event().await["seats_taken"], 0);

    // Hold a lock that `GET /terms` waits on.
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE terms IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let r = app
        .request(Method::GET, "/api/v1/terms", None)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("an answer while the database is stuck");
    expect_503("GET /terms while terms are locked", r, "unavailable").await;
    lock.rollback().await.unwrap();
    assert_eq!(
        app.get("/api/v1/terms", None).await.status(),
        StatusCode::OK
    );

    // The stream has been open longer than the limit and still carries changes.
    let (_, token) = app.student().await;
    assert_eq!(app.enroll(&token, section).await.0, StatusCode::CREATED);
    assert_eq!(stream.next_event().await["seats_taken"], 1);
    app.stop().await;
}

#[tokio::test]
async fn an_enroll_stuck_past_its_call_timeout_is_recovered_with_its_key() {
    // The request limit asked for is shorter than the call timeout; the server raises it,
    // so the stuck enroll answers `decision_pending` (a retry gets the decision), never
    // `unavailable` while the decision is still queued.
    let app = TestApp::spawn_with(|s| {
        s.http.request_timeout_ms = 1;
        s.sections.call_timeout_ms = 1_000;
    })
    .await;
    let (_, section) = app.open_cs101(5, 0, json!([])).await;
    let (student, token) = app.student().await;
    let path = format!("/api/v1/sections/{section}/enrollments");
    let enroll = || {
        app.request(Method::POST, &path, Some(&token))
            .header("Idempotency-Key", "stuck-1")
            .json(&json!({}))
            .timeout(Duration::from_secs(60))
    };

    // Writes to enrollments wait for this lock; reads do not.
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE enrollments IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let r = enroll().send().await.expect("an answer while commits wait");
    expect_503("an enroll whose commit waits", r, "decision_pending").await;
    lock.rollback().await.unwrap();

    let (status, body) = answer(enroll().send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let seats = app
        .count(
            "SELECT count(*) FROM enrollments WHERE student_id = $1 AND status = 'enrolled'",
            student,
        )
        .await;
    assert_eq!(seats, 1);
    app.stop().await;
}

#[tokio::test]
async fn completed_courses_are_capped() {
    let app = TestApp::spawn().await;
    let student = |name: &str, n: usize| {
        let completed: Vec<String> = (0..n).map(|i| format!("CS{}", 100 + i)).collect();
        json!({"username": name, "password": "password1", "standing": "senior", "completed_courses": completed})
    };
    let r = app
        .post(
            "/api/v1/students",
            Some(&app.admin_token),
            student("at-cap", 200),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body = app
        .post_expect_problem(
            "/api/v1/students",
            Some(&app.admin_token),
            student("over-cap", 201),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("completed_courses"),
        "{body}"
    );
    app.stop().await;
}
