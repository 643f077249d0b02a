//! `Idempotency-Key`: a key is bound to the request it first answered, and the first
//! answer survives losing its stored copy and a restart (it is rebuilt from the decision's
//! audit row, written in the decision's own commit).

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

async fn keyed(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    key: &str,
) -> (StatusCode, Value) {
    let r = app
        .request(method, path, Some(token))
        .header("Idempotency-Key", key)
        .send()
        .await
        .unwrap();
    answer(r).await
}

fn enrollments(section: Uuid) -> String {
    format!("/api/v1/sections/{section}/enrollments")
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    app.course("CS101", 3, &[]).await;
    app.course("ART101", 3, &[]).await;
    let a = app.section(term, "CS101", "01", 5, 0, json!([])).await;
    let b = app.section(term, "ART101", "01", 5, 0, json!([])).await;
    let (sid, tok) = app.student().await;

    let (st, first) = keyed(&app, Method::POST, &enrollments(a), &tok, "k-1").await;
    assert_eq!(st, StatusCode::CREATED, "{first}");
    // The same key on another section would have replayed the first answer.
    let (st, body) = keyed(&app, Method::POST, &enrollments(b), &tok, "k-1").await;
    assert_problem(
        st,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    let (st, body) = keyed(
        &app,
        Method::DELETE,
        &format!("{}/me", enrollments(a)),
        &tok,
        "k-1",
    )
    .await;
    assert_problem(
        st,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    // The same request with the same key still gets its first answer.
    assert_eq!(
        keyed(&app, Method::POST, &enrollments(a), &tok, "k-1").await,
        (StatusCode::CREATED, first)
    );
    let sql = "SELECT count(*) FROM enrollments WHERE student_id = $1 AND status <> 'dropped'";
    assert_eq!(
        app.count(sql, sid).await,
        1,
        "only the first request was decided"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_retried_drop_after_a_lost_answer_and_a_restart_gets_the_first_answer() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(1, 5, json!([])).await;
    let students = app.students(2, &[]).await;
    app.enroll_each(&students, section).await; // a seat, then a waitlist place
    let (sid, tok) = &students[0];
    let drop = format!("{}/me", enrollments(section));
    let (st, first) = keyed(&app, Method::DELETE, &drop, tok, "drop-1").await;
    assert_eq!(st, StatusCode::OK, "{first}");
    assert_eq!(first["promoted"], true);

    // The node dies after the commit, before the answer is stored.
    sqlx::query("DELETE FROM idempotency_keys WHERE student_id = $1")
        .bind(sid)
        .execute(&app.pool)
        .await
        .unwrap();
    let settings = app.stop().await;
    let app = TestApp::start(settings).await;
    let again = keyed(&app, Method::DELETE, &drop, tok, "drop-1").await;
    assert_eq!(
        again,
        (StatusCode::OK, first),
        "the first answer, not not_enrolled"
    );
    app.stop().await;
}
