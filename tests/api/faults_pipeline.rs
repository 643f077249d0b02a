//! A section's commits in flight one behind the other, under faults: the actor decides a
//! batch while the previous one of its section is still committing, so a batch must never
//! outlive the failure of one it was decided on. The fault is a failpoint keyed by this
//! test's own student (`commit-fails-late`: that student's batch hangs, then fails as if
//! PostgreSQL were gone). The test judges by what PostgreSQL holds, and checks that its
//! fault struck: the first student's seat was never recorded.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// Rows `registration_attempts` holds for `section` and `student`.
async fn attempts(app: &TestApp, section: Uuid, student: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM registration_attempts WHERE section_id = $1 AND student_id = $2",
    )
    .bind(section)
    .bind(student)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_refusal_decided_on_a_seat_whose_commit_fails_is_neither_recorded_nor_answered() {
    // Two batches of a section may commit at once (the default is one).
    let app = TestApp::spawn_with(|s| s.sections.section_pipeline = 2).await;
    // One seat, no waitlist: once a holds the seat, b is refused `section_full`.
    let (_, section) = app.open_cs101(1, 0, json!([])).await;
    let s = app.students(2, &[]).await;
    let ((a, a_token), (b, b_token)) = (s[0].clone(), s[1].clone());
    let late = Failpoint::set("commit-fails-late", format!("{a}:1500"));
    let first = tokio::spawn({
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/api/v1/sections/{section}/enrollments")),
        );
        async move {
            let r = client
                .post(url)
                .bearer_auth(a_token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            answer(r).await
        }
    });
    // b asks while a's seat is committing: b's batch is decided on top of a's seat.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (b_status, b_body) = app.enroll(&b_token, section).await;
    let (a_status, a_body) = first.await.unwrap();
    drop(late);
    assert_problem(
        a_status,
        &a_body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
    assert_eq!(attempts(&app, section, a).await, 0, "a's seat was recorded");
    // The refusal rested on a seat that was never recorded: it must not be either.
    assert_problem(
        b_status,
        &b_body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
    assert_eq!(
        attempts(&app, section, b).await,
        0,
        "b's refusal, decided on a's seat, was recorded"
    );
    assert!(app.rows(section).await.is_empty(), "a row was left");
    // The section was reloaded: b asks again and gets the seat nobody holds.
    let (st, body) = app.enroll(&b_token, section).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(attempts(&app, section, b).await, 1);
    verified(&app).await;
    app.stop().await;
}
