//! Swaps under faults: a drop whose reply is lost after its COMMIT, a drop whose owner has
//! lost PostgreSQL, a home node that stops between the two halves. Faults come from
//! failpoints (`registrar::faults`) keyed by this test's own section or student, so tests
//! running beside it are not touched. Every test judges by what PostgreSQL holds: a swap
//! ends in exactly one of its two sections, whatever path the request took.

use crate::helpers::*;
use registrar::faults;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// The sections `student` holds a place in, by PostgreSQL.
async fn places(app: &TestApp, student: Uuid) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT section_id FROM enrollments WHERE student_id = $1 AND status <> 'dropped'",
    )
    .bind(student)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    ids.sort();
    ids
}

/// Sections to swap between (different courses, no time conflict, room in both), a
/// student enrolled in the first; (drop, add, student, token).
async fn enrolled_student(app: &TestApp) -> (Uuid, Uuid, Uuid, String) {
    let term = app.open_term().await;
    app.course("CS101", 3, &[]).await;
    app.course("ENGL101", 3, &[]).await;
    let drop = app
        .section(term, "CS101", "01", 5, 5, meet("mon", "09:00", "10:00"))
        .await;
    let add = app
        .section(term, "ENGL101", "01", 5, 5, meet("tue", "09:00", "10:00"))
        .await;
    let (student, token) = app.student().await;
    let (st, body) = app.enroll(&token, drop).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    (drop, add, student, token)
}

/// POST a swap with an `Idempotency-Key`; (status, body).
async fn keyed_swap(
    app: &TestApp,
    token: &str,
    key: &str,
    drop: Uuid,
    add: Uuid,
) -> (StatusCode, Value) {
    let r = app
        .request(Method::POST, "/api/v1/enrollments/swap", Some(token))
        .header("Idempotency-Key", key)
        .json(&json!({"drop": drop, "add": add}))
        .send()
        .await
        .expect("swap request");
    answer(r).await
}

/// The drop's COMMIT succeeds but its answer is lost: the actor reloads, and the drop
/// re-sent under its request id must be recognised as done, not read as `not_enrolled`
/// (which once made the swap undo its add and leave the student in neither section).
#[tokio::test]
async fn a_swap_whose_drop_answer_was_lost_after_commit_ends_in_the_add() {
    let app = TestApp::spawn().await;
    let (drop, add, student, token) = enrolled_student(&app).await;
    let _lost = Failpoint::set("commit-reply-lost", drop);
    let (st, body) = keyed_swap(&app, &token, "swap-lost-reply", drop, add).await;
    assert_eq!(
        places(&app, student).await,
        vec![add],
        "the swap must end in the add section alone ({st} {body})"
    );
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "swapped", "{body}");
    app.stop().await;
}

/// The drop's owner cannot commit (it lost PostgreSQL): the swap is left under way, never
/// undone, and the client's retry with the same key finishes it once the owner commits
/// again: the student ends in the add section, never in neither.
#[tokio::test]
async fn a_swap_whose_drop_owner_lost_the_database_is_finished_by_the_retry() {
    let app = TestApp::spawn_with(|s| s.sections.swap_finish_after_ms = 600_000).await;
    let (drop, add, student, token) = enrolled_student(&app).await;
    let down = Failpoint::set("commit-unavailable", drop);
    let (st, body) = keyed_swap(&app, &token, "swap-db-lost", drop, add).await;
    assert_problem(
        st,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "decision_pending",
    );
    let held = places(&app, student).await;
    assert!(
        held.contains(&add),
        "the add is kept while the drop is owed: {held:?}"
    );
    // Still down: the retry cannot finish it, and says so again.
    let (st, body) = keyed_swap(&app, &token, "swap-db-lost", drop, add).await;
    assert_problem(
        st,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "decision_pending",
    );
    drop_failpoint(down);
    let (st, body) = keyed_swap(&app, &token, "swap-db-lost", drop, add).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "swapped", "{body}");
    assert_eq!(places(&app, student).await, vec![add]);
    // And the answer stays: a further retry replays it.
    let (st, again) = keyed_swap(&app, &token, "swap-db-lost", drop, add).await;
    assert_eq!((st, &again), (StatusCode::OK, &body));
    let pending = app
        .count(
            "SELECT count(*) FROM swap_intents WHERE student_id = $1",
            student,
        )
        .await;
    assert_eq!(pending, 0, "the finished swap is no longer under way");
    app.stop().await;
}

/// While a swap is under way the student's next request finishes it first, so the rules
/// see the schedule the swap leaves: an enroll in another section of the add's course
/// waits for the swap, then is refused as a duplicate course, never committed beside it.
#[tokio::test]
async fn a_swap_under_way_is_finished_before_the_students_next_request() {
    let app = TestApp::spawn_with(|s| s.sections.swap_finish_after_ms = 600_000).await;
    let (drop, add, student, token) = enrolled_student(&app).await;
    let term: Uuid = sqlx::query_scalar("SELECT term_id FROM sections WHERE id = $1")
        .bind(add)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let other = app
        .section(term, "ENGL101", "02", 5, 5, meet("thu", "09:00", "10:00"))
        .await;
    let down = Failpoint::set("commit-unavailable", drop);
    let (st, body) = keyed_swap(&app, &token, "swap-then-enroll", drop, add).await;
    assert_problem(
        st,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "decision_pending",
    );
    let (st, body) = app.enroll(&token, other).await;
    assert_problem(
        st,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "decision_pending",
    );
    assert!(!places(&app, student).await.contains(&other));
    drop_failpoint(down);
    let (st, body) = app.enroll(&token, other).await;
    assert_problem(st, &body, StatusCode::CONFLICT, "duplicate_course");
    assert_eq!(places(&app, student).await, vec![add]);
    app.stop().await;
}

/// The home node stops between the two halves (the add committed, the drop never sent):
/// the node that serves the student next finishes the swap on its own, forwards, so the
/// student does not keep both sections (two courses' credits, a seat someone waits for).
#[tokio::test]
async fn a_swap_cut_between_its_halves_is_finished_after_a_restart() {
    let app = TestApp::spawn_with(|s| s.sections.swap_finish_after_ms = 300).await;
    let (drop, add, student, token) = enrolled_student(&app).await;
    let cut = Failpoint::set("swap-between-halves", student);
    let (st, body) = keyed_swap(&app, &token, "swap-cut", drop, add).await;
    assert_problem(
        st,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "decision_pending",
    );
    assert_eq!(
        places(&app, student).await.len(),
        2,
        "the fault struck between the halves"
    );
    // The home goes away with the swap under way; the next process on the database is
    // the student's home and finishes it without being asked.
    let settings = app.stop().await;
    drop_failpoint(cut);
    let app = TestApp::start(settings).await;
    wait_until("the swap to be finished", async || {
        places(&app, student).await == vec![add]
    })
    .await;
    let (st, body) = keyed_swap(&app, &token, "swap-cut", drop, add).await;
    assert_eq!(st, StatusCode::OK, "the retry learns the outcome: {body}");
    assert_eq!(body["status"], "swapped", "{body}");
    app.stop().await;
}

fn drop_failpoint(f: Failpoint) {
    drop(f);
}

/// The first try of a swap outlives its caller (its drop's commit is slow): the client's
/// retry with the same key waits for the student's lock while the first try finishes the
/// swap, and must answer `swapped`, not `not_enrolled` (which once made a careful client
/// believe the student still held the section it had left).
#[tokio::test]
async fn a_retry_that_waited_for_its_first_try_answers_what_it_did() {
    // The first try gives up on its caller at 1 s; its drop commits at 1.6 s, while the
    // retry (sent at once) still waits for the lock within its own second.
    let app = TestApp::spawn_with(|s| s.sections.call_timeout_ms = 1_000).await;
    let (drop, add, student, token) = enrolled_student(&app).await;
    faults::set("commit-stall", &format!("return({drop}:1600)")).unwrap();
    let (st, body) = keyed_swap(&app, &token, "swap-slow", drop, add).await;
    assert_problem(
        st,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "decision_pending",
    );
    faults::clear("commit-stall");
    let (st, body) = keyed_swap(&app, &token, "swap-slow", drop, add).await;
    assert_eq!(places(&app, student).await, vec![add]);
    assert_eq!(
        st,
        StatusCode::OK,
        "the retry must learn the swap was done: {body}"
    );
    assert_eq!(body["status"], "swapped", "{body}");
    app.stop().await;
}
