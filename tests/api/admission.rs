//! Load shedding at the HTTP edge: a full section mailbox answers 503 `overloaded` with
//! `Retry-After` (never a 500, never a lost acknowledgement), and a student hammering the
//! API gets 429 `rate_limited` with `Retry-After`.

use crate::helpers::*;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_mailbox_sheds_load_with_overloaded_and_keeps_every_ack() {
    let app = TestApp::spawn_with(|s| s.sections.section_max_in_flight = 4).await;
    let (_, section) = app.open_cs101(1000, 0, json!([])).await;
    let students = app.students(400, &[]).await;
    let enroll = format!("/api/v1/sections/{section}/enrollments");
    let answers = join_all(students.iter().map(|(id, t)| {
        let req = app.request(Method::POST, &enroll, Some(t));
        async move {
            let r = req.send().await.unwrap();
            let retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (
                *id,
                r.status(),
                retry_after,
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    }))
    .await;
    let mut accepted = std::collections::HashSet::new();
    let mut shed = 0;
    for (id, status, retry_after, body) in &answers {
        match *status {
            StatusCode::CREATED => {
                accepted.insert(*id);
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["code"], "overloaded", "{body}");
                assert_eq!(retry_after.as_deref(), Some("1"));
                shed += 1;
            }
            other => panic!("unexpected {other} {body}"),
        }
    }
    assert!(
        shed > 0,
        "a bound of 4 in flight must shed some of 400 concurrent requests"
    );
    let stored: std::collections::HashSet<uuid::Uuid> =
        app.rows(section).await.into_iter().map(|r| r.0).collect();
    assert_eq!(
        stored, accepted,
        "exactly the acknowledged enrollments are stored"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_student_hammering_the_api_is_rate_limited() {
    let app = TestApp::spawn_with(|s| {
        s.http.rate_limit_per_sec = 1;
        s.http.rate_limit_burst = 3;
    })
    .await;
    let (_, token) = app.student().await;
    let missing = uuid::Uuid::new_v4();
    let mut statuses = vec![];
    for _ in 0..5 {
        let r = app
            .post(
                &format!("/api/v1/sections/{missing}/enrollments"),
                Some(&token),
                json!({}),
            )
            .await;
        let retry = r.headers().get("retry-after").cloned();
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_problem(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
            assert!(retry.is_some());
        }
        statuses.push(status);
    }
    assert_eq!(
        &statuses[..3],
        [StatusCode::NOT_FOUND; 3],
        "the burst is served"
    );
    assert_eq!(&statuses[3..], [StatusCode::TOO_MANY_REQUESTS; 2]);
    app.stop().await;
}
