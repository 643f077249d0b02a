//! Limits on what a client can make the server hold: open seat streams per node. Each
//! limit answers with a clear problem instead of growing without bound.

use crate::helpers::*;
use reqwest::{Client, StatusCode};
use serde_json::json;

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
