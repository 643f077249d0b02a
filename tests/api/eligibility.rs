//! Waiting students whose rules stop passing are skipped at promotion and keep their
//! place, through the real API: a hold put on a waiting student lets the next one take a
//! freed seat, with `waitlist.blocked` (and a notification saying why) and the reason in
//! the student's schedule; lifting it puts them back in line and a seat free for them is
//! theirs; a lower credit limit skips them too; a change left unjudged (as if its node
//! died before judging) is judged by the finisher's sweep. Judged by rows and
//! `registrar verify`.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// `student`'s status in `section`, and why they are skipped.
async fn place(app: &TestApp, section: Uuid, student: Uuid) -> (String, Option<String>) {
    sqlx::query_as(
        "SELECT status, blocked_reason FROM enrollments
          WHERE section_id = $1 AND student_id = $2 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(section)
    .bind(student)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Put a hold on `student`; the hold's path.
async fn hold(app: &TestApp, student: Uuid) -> String {
    let h = app
        .admin_post(
            &format!("/api/v1/students/{student}/holds"),
            json!({"reason": "unpaid fees"}),
        )
        .await;
    format!(
        "/api/v1/students/{student}/holds/{}",
        h["id"].as_str().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_student_on_hold_is_skipped_and_keeps_their_place() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(1, 5, json!([])).await;
    let s = app.students(4, &[]).await;
    let (a, b, c, d) = (&s[0], &s[1], &s[2], &s[3]);
    assert_eq!(app.enroll(&a.1, section).await.0, StatusCode::CREATED);
    for w in [b, c, d] {
        assert_eq!(app.enroll(&w.1, section).await.0, StatusCode::ACCEPTED);
    }
    // B, the head, gets a hold: skipped, in place.
    let b_hold = hold(&app, b.0).await;
    assert_eq!(
        place(&app, section, b.0).await,
        ("waitlisted".into(), Some("student_on_hold".into()))
    );
    let schedule = app
        .get_json("/api/v1/students/me/schedule", Some(&b.1))
        .await;
    assert_eq!(
        schedule["waitlisted"][0]["skipped_for"], "student_on_hold",
        "{schedule}"
    );
    let event: Value = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE routing_key = 'waitlist.blocked'
            AND payload->>'student_id' = $1::text",
    )
    .bind(b.0)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(event["reason"], "student_on_hold");

    // A's seat frees: C, next in line, gets it; B still waits first.
    assert_eq!(app.drop_section(&a.1, section).await.0, StatusCode::OK);
    assert_eq!(place(&app, section, c.0).await.0, "enrolled");
    assert_eq!(place(&app, section, b.0).await.0, "waitlisted");
    let positions: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT student_id, waitlist_seq FROM enrollments
          WHERE section_id = $1 AND status = 'waitlisted' ORDER BY waitlist_seq",
    )
    .bind(section)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        positions.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![b.0, d.0]
    );
    verified(&app).await;

    // The hold lifted: B is back in line, first; the next seat is theirs.
    let r = app.request(Method::DELETE, &b_hold, Some(&app.admin_token));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(place(&app, section, b.0).await, ("waitlisted".into(), None));
    assert_eq!(app.drop_section(&c.1, section).await.0, StatusCode::OK);
    assert_eq!(place(&app, section, b.0).await.0, "enrolled");
    assert_eq!(place(&app, section, d.0).await.0, "waitlisted");
    verified(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_free_when_the_skip_ends_is_taken_at_once_and_a_lower_limit_skips_too() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(1, 5, json!([])).await;
    let s = app.students(2, &[]).await;
    let (a, b) = (&s[0], &s[1]);
    assert_eq!(app.enroll(&a.1, section).await.0, StatusCode::CREATED);
    assert_eq!(app.enroll(&b.1, section).await.0, StatusCode::ACCEPTED);
    // A credit limit below the waited-for course's 3 credits skips B.
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/students/{}", b.0),
            Some(&app.admin_token),
        )
        .json(&json!({"max_credits": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        place(&app, section, b.0).await,
        ("waitlisted".into(), Some("credit_limit_exceeded".into()))
    );
    // The seat frees with nobody in line: it stays free (B is skipped)...
    assert_eq!(app.drop_section(&a.1, section).await.0, StatusCode::OK);
    assert_eq!(place(&app, section, b.0).await.0, "waitlisted");
    verified(&app).await;
    // ...until the limit is back: B takes it in the same decision.
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/students/{}", b.0),
            Some(&app.admin_token),
        )
        .json(&json!({"max_credits": 18}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(place(&app, section, b.0).await.0, "enrolled");
    let note: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE routing_key = 'waitlist.unblocked'
            AND payload->>'student_id' = $1::text",
    )
    .bind(b.0)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(note, 1);
    verified(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_left_unjudged_is_judged_by_the_sweep() {
    let app = TestApp::spawn_with(|s| s.sections.swap_finish_after_ms = 200).await;
    let (_, section) = app.open_cs101(1, 5, json!([])).await;
    let s = app.students(2, &[]).await;
    let (a, b) = (&s[0], &s[1]);
    assert_eq!(app.enroll(&a.1, section).await.0, StatusCode::CREATED);
    assert_eq!(app.enroll(&b.1, section).await.0, StatusCode::ACCEPTED);
    // A hold committed with its mark by a node that died before judging: straight into
    // the database, as that node's transaction left it.
    sqlx::query("INSERT INTO holds (id, student_id, reason) VALUES ($1, $2, 'fees')")
        .bind(Uuid::new_v4())
        .bind(b.0)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE students SET waitlists_stale_at = now() WHERE id = $1")
        .bind(b.0)
        .execute(&app.pool)
        .await
        .unwrap();
    wait_until("the sweep judges B", async || {
        place(&app, section, b.0).await.1.as_deref() == Some("student_on_hold")
    })
    .await;
    // The mark is cleared after the judgement commits (a step of its own).
    wait_until("the mark is cleared once judged", async || {
        let stale: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("SELECT waitlists_stale_at FROM students WHERE id = $1")
                .bind(b.0)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        stale.is_none()
    })
    .await;
    assert_eq!(app.drop_section(&a.1, section).await.0, StatusCode::OK);
    assert_eq!(place(&app, section, b.0).await.0, "waitlisted");
    verified(&app).await;
}
