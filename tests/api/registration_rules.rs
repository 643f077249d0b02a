//! Each student rule, with its error code, through the real API; and the per-student
//! serialization that stops two concurrent requests from both passing the credit limit.

use crate::helpers::*;
use chrono::{Duration, Utc};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn every_student_rule_refuses_with_its_code_and_is_audited() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    for (code, credits, pre) in [
        ("CS100", 3, vec![]),
        ("CS101", 3, vec![]),
        ("CS201", 3, vec!["CS101"]),
        ("MATH101", 4, vec![]),
        ("BIO101", 12, vec![]),
    ] {
        app.course(code, credits, &pre).await;
    }
    let mut sections = vec![];
    for (course, code, day, start, end) in [
        ("CS101", "01", "mon", "09:00", "10:00"),
        ("CS101", "02", "tue", "09:00", "10:00"),
        ("CS201", "01", "wed", "09:00", "10:00"),
        ("MATH101", "01", "mon", "09:30", "10:30"),
        ("BIO101", "01", "fri", "13:00", "14:00"),
    ] {
        let meetings = meet(day, start, end);
        sections.push(app.section(term, course, code, 10, 0, meetings).await);
    }
    let [cs101a, cs101b, cs201, math, bio] = sections[..] else {
        unreachable!("five sections")
    };
    let (sid, tok) = app.student().await;
    sqlx::query("UPDATE students SET max_credits = 10 WHERE id = $1")
        .bind(sid)
        .execute(&app.pool)
        .await
        .unwrap();

    assert_eq!(app.enroll(&tok, cs101a).await.0, StatusCode::CREATED);
    for (section, status, code) in [
        (cs101a, StatusCode::CONFLICT, "already_enrolled"),
        (cs101b, StatusCode::CONFLICT, "duplicate_course"),
        (
            cs201,
            StatusCode::UNPROCESSABLE_ENTITY,
            "prerequisites_not_met",
        ),
        (math, StatusCode::CONFLICT, "time_conflict"),
        (
            bio,
            StatusCode::UNPROCESSABLE_ENTITY,
            "credit_limit_exceeded",
        ),
    ] {
        let (st, b) = app.enroll(&tok, section).await;
        assert_problem(st, &b, status, code);
    }

    // A hold blocks, lifting it unblocks.
    let hold = app
        .admin_post(
            &format!("/api/v1/students/{sid}/holds"),
            json!({"reason": "unpaid fees"}),
        )
        .await;
    let other = app.section(term, "CS100", "01", 10, 0, json!([])).await;
    let (st, b) = app.enroll(&tok, other).await;
    assert_problem(st, &b, StatusCode::FORBIDDEN, "student_on_hold");
    let lift = format!(
        "/api/v1/students/{sid}/holds/{}",
        hold["id"].as_str().unwrap()
    );
    let r = app.request(Method::DELETE, &lift, Some(&app.admin_token));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(app.enroll(&tok, other).await.0, StatusCode::CREATED);

    // A closed window for the student's standing.
    app.admin_post(
        &format!("/api/v1/terms/{term}/windows"),
        json!({"standing": "senior", "opens_at": Utc::now() + Duration::hours(1), "closes_at": Utc::now() + Duration::hours(2)}),
    )
    .await;
    // The server caches windows for 2 s; until then `math` is refused for its time conflict.
    wait_until("the closed window to be enforced", async || {
        app.enroll(&tok, math).await.1["code"] == "registration_window_closed"
    })
    .await;
    let (st, b) = app.enroll(&tok, math).await;
    assert_problem(st, &b, StatusCode::FORBIDDEN, "registration_window_closed");

    // Every refusal left an audit row with its reason code.
    let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM registration_attempts WHERE student_id = $1 AND outcome = 'refused' ORDER BY id")
        .bind(sid)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    for code in [
        "already_enrolled",
        "duplicate_course",
        "prerequisites_not_met",
        "time_conflict",
        "credit_limit_exceeded",
        "student_on_hold",
        "registration_window_closed",
    ] {
        assert!(
            codes.iter().any(|c| c == code),
            "{code} not audited: {codes:?}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_of_one_student_cannot_both_pass_the_credit_limit() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    let days = ["mon", "tue", "wed", "thu", "fri", "sat"];
    let mut sections = vec![];
    for (i, day) in days.iter().enumerate() {
        let code = format!("HIST10{i}");
        app.course(&code, 4, &[]).await;
        sections.push(
            app.section(term, &code, "01", 10, 0, meet(day, "09:00", "10:00"))
                .await,
        );
    }
    let (sid, tok) = app.student().await; // 18 credits: at most four 4-credit courses
    let answers = join_all(sections.iter().map(|s| app.enroll(&tok, *s))).await;
    let ok = answers
        .iter()
        .filter(|a| a.0 == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|a| a.1["code"] == "credit_limit_exceeded")
        .count();
    assert_eq!((ok, refused), (4, 2), "{answers:?}");
    let sql = "SELECT count(*) FROM enrollments WHERE student_id = $1 AND status = 'enrolled'";
    let taken = app.count(sql, sid).await;
    assert_eq!(taken, 4);
    app.stop().await;
}

#[tokio::test]
async fn idempotency_key_returns_the_first_answer_and_swap_is_all_or_nothing() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    app.course("CS101", 3, &[]).await;
    app.course("ENGL101", 3, &[]).await;
    app.course("ART101", 3, &[]).await;
    let a = app
        .section(term, "CS101", "01", 1, 5, meet("mon", "09:00", "10:00"))
        .await;
    let b = app
        .section(term, "ENGL101", "01", 5, 5, meet("tue", "09:00", "10:00"))
        .await;
    let full = app
        .section(term, "ART101", "01", 0, 5, meet("wed", "09:00", "10:00"))
        .await;
    let (sid, tok) = app.student().await;

    let keyed = |section: uuid::Uuid, key: &'static str| {
        let path = format!("/api/v1/sections/{section}/enrollments");
        let req = app.request(Method::POST, &path, Some(&tok));
        req.header("Idempotency-Key", key).send()
    };
    let first = keyed(a, "k-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = keyed(a, "k-1").await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::CREATED,
        "a retry gets the first answer, not already_enrolled"
    );
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), first);
    let sql = "SELECT count(*) FROM enrollments WHERE student_id = $1";
    let seats = app.count(sql, sid).await;
    assert_eq!(seats, 1, "never a second seat");

    // Swap into a full section: refused, and the original seat is kept.
    let (st, body) = app.swap(&tok, a, full).await;
    assert_problem(st, &body, StatusCode::CONFLICT, "section_full");
    assert_eq!(app.rows(a).await.len(), 1);
    assert!(app.rows(full).await.is_empty(), "a swap never waitlists");

    // Swap into a free section: both halves happen.
    let (st, body) = app.swap(&tok, a, b).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["added"]["status"], "enrolled");
    assert!(app.rows(a).await.is_empty());
    assert_eq!(app.rows(b).await.len(), 1);

    // Swapping out of a section one is not in: not_enrolled, nothing added.
    let (st, body) = app.swap(&tok, a, full).await;
    assert_problem(st, &body, StatusCode::NOT_FOUND, "not_enrolled");
    app.stop().await;
}

/// A decision that outlives its caller (503 `decision_pending`, or a client that hangs up)
/// still holds the student's lock until the section actor answers, so the student's next
/// enroll sees it: two 3-credit sections under a 3-credit limit never both commit.
#[tokio::test]
async fn a_pending_decision_keeps_the_student_serialized() {
    let app = TestApp::spawn_with(|s| s.sections.call_timeout_ms = 300).await;
    let term = app.open_term().await;
    app.course("CS101", 3, &[]).await;
    app.course("MATH101", 3, &[]).await;
    let slow = app.section(term, "CS101", "01", 10, 0, json!([])).await;
    let other = app.section(term, "MATH101", "01", 10, 0, json!([])).await;
    let (sid, tok) = app.student().await;
    sqlx::query("UPDATE students SET max_credits = 3 WHERE id = $1")
        .bind(sid)
        .execute(&app.pool)
        .await
        .unwrap();

    // Hold the section row: the batch that enrolls into `slow` cannot commit yet.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM sections WHERE id = $1 FOR UPDATE")
        .bind(slow)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let (st, b) = app.enroll(&tok, slow).await;
    assert_problem(st, &b, StatusCode::SERVICE_UNAVAILABLE, "decision_pending");
    // The first enroll is still undecided: the second one waits for it instead of running
    // the rules against a schedule without it.
    let (st, b) = app.enroll(&tok, other).await;
    assert_problem(st, &b, StatusCode::SERVICE_UNAVAILABLE, "decision_pending");
    blocker.rollback().await.unwrap();

    wait_until("both enrolls decided", async || {
        let refused = app
            .count(
                "SELECT count(*) FROM registration_attempts WHERE student_id = $1 AND code = 'credit_limit_exceeded'",
                sid,
            )
            .await;
        refused == 1
    })
    .await;
    let schedule = app
        .get_json("/api/v1/students/me/schedule", Some(&tok))
        .await;
    assert_eq!(schedule["credits"], 3, "{schedule}");
    assert_eq!(schedule["enrolled"][0]["section_id"], slow.to_string());
}

/// A window opening: every request is a student's first. Students missed while a read of
/// rule inputs is in flight are read together in the next one, and each still gets exactly
/// their own inputs (here: the students with a hold, and only they, are refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_requests_read_rule_inputs_in_batches_each_with_its_own() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(1000, 0, json!([])).await;
    let students = app.students(80, &[]).await;
    for (sid, _) in students.iter().step_by(4) {
        app.admin_post(
            &format!("/api/v1/students/{sid}/holds"),
            json!({"reason": "library fine"}),
        )
        .await;
    }
    let before = metric(&app, "registrar_rule_input_reads_total").await;
    let batches_before = metric(&app, "registrar_rule_input_batches_total").await;
    let answers = join_all(students.iter().map(|(_, t)| app.enroll(t, section))).await;
    for (i, (status, body)) in answers.iter().enumerate() {
        if i % 4 == 0 {
            assert_problem(*status, body, StatusCode::FORBIDDEN, "student_on_hold");
        } else {
            assert_eq!(*status, StatusCode::CREATED, "student {i}: {body}");
        }
    }
    let read = metric(&app, "registrar_rule_input_reads_total").await - before;
    let batches = metric(&app, "registrar_rule_input_batches_total").await - batches_before;
    assert_eq!(read, 80, "each student read once");
    assert!(
        batches < read,
        "{read} students in {batches} queries: concurrent misses share a read"
    );
}
