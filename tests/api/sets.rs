//! Decisions over several sections (`POST /api/v1/enrollments/sets`): all of a set or
//! none, with one decision id in every event of it, under refusals, retries and a home
//! that stops halfway (failpoints keyed by this test's own student). Judged by what
//! PostgreSQL holds: the seats, the decision rows and `registrar verify`'s checks.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// POST a set (with an `Idempotency-Key` if given); (status, body).
async fn post_set(
    app: &TestApp,
    token: &str,
    key: Option<&str>,
    sections: &[Uuid],
    replacing: &[Uuid],
) -> (StatusCode, Value) {
    let mut r = app
        .request(Method::POST, "/api/v1/enrollments/sets", Some(token))
        .json(&json!({"sections": sections, "replacing": replacing}));
    if let Some(key) = key {
        r = r.header("Idempotency-Key", key);
    }
    answer(r.send().await.expect("set request")).await
}

/// (section, status) of `student`'s places that are not dropped, sorted.
async fn places(app: &TestApp, student: Uuid) -> Vec<(Uuid, String)> {
    let mut rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT section_id, status FROM enrollments WHERE student_id = $1 AND status <> 'dropped'",
    )
    .bind(student)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.sort();
    rows
}

/// Three sections of three courses at different times, with `seats` seats each.
async fn three_sections(app: &TestApp, seats: [u32; 3]) -> [Uuid; 3] {
    let term = app.open_term().await;
    app.course("CS101", 3, &[]).await;
    app.course("MATH101", 3, &[]).await;
    app.course("ENGL101", 3, &[]).await;
    [
        app.section(
            term,
            "CS101",
            "01",
            seats[0],
            5,
            meet("mon", "09:00", "10:00"),
        )
        .await,
        app.section(
            term,
            "MATH101",
            "01",
            seats[1],
            5,
            meet("tue", "09:00", "10:00"),
        )
        .await,
        app.section(
            term,
            "ENGL101",
            "01",
            seats[2],
            5,
            meet("wed", "09:00", "10:00"),
        )
        .await,
    ]
}

async fn assert_verified(app: &TestApp) {
    let found = registrar::verify::violations(&app.pool).await.unwrap();
    assert!(found.is_empty(), "verify found {found:?}");
}

#[tokio::test]
async fn a_set_is_taken_whole_with_one_decision_id_in_its_events() {
    let app = TestApp::spawn().await;
    let s = three_sections(&app, [2, 2, 2]).await;
    let (student, token) = app.student().await;
    let (st, body) = post_set(&app, &token, Some("set-1"), &s, &[]).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "enrolled", "{body}");
    let decision: Uuid = body["decision_id"].as_str().unwrap().parse().unwrap();
    let mut expected: Vec<(Uuid, String)> = s.iter().map(|id| (*id, "enrolled".into())).collect();
    expected.sort();
    assert_eq!(places(&app, student).await, expected);
    // Every change of the decision carries its id: three holds, three enrollments.
    let events: Vec<(String, i64)> = sqlx::query_as(
        "SELECT routing_key, count(*) FROM outbox WHERE payload->>'decision_id' = $1
          GROUP BY 1 ORDER BY 1",
    )
    .bind(decision.to_string())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![("enrollment.created".into(), 3), ("seat.held".into(), 3)]
    );
    // A retry with the key replays the answer; a retry without one is refused per section.
    let (st2, again) = post_set(&app, &token, Some("set-1"), &s, &[]).await;
    assert_eq!((st2, &again), (StatusCode::CREATED, &body));
    let (st3, body3) = post_set(&app, &token, None, &s, &[]).await;
    assert_problem(st3, &body3, StatusCode::CONFLICT, "already_enrolled");
    assert_eq!(
        places(&app, student).await.len(),
        3,
        "nothing decided twice"
    );
    assert_verified(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_full_section_refuses_the_whole_set_and_its_held_seats_go_back() {
    let app = TestApp::spawn().await;
    let s = three_sections(&app, [1, 1, 0]).await;
    let (student, token) = app.student().await;
    // Someone waits for the first section: the seat the set held and gave back is theirs.
    let (st, body) = post_set(&app, &token, Some("set-full"), &s, &[]).await;
    assert_problem(st, &body, StatusCode::CONFLICT, "section_full");
    assert!(
        body["detail"].as_str().unwrap().contains(&s[2].to_string()),
        "the answer names the full section: {body}"
    );
    assert_eq!(places(&app, student).await, vec![], "nothing taken");
    for section in &s[..2] {
        let v = app.section_view(*section).await;
        assert_eq!(v["seats_taken"], 0, "the held seat went back: {v}");
    }
    let state: (String, Option<String>) =
        sqlx::query_as("SELECT state, reason FROM decisions WHERE student_id = $1")
            .bind(student)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(state, ("cancelled".into(), Some("section_full".into())));
    // The key's answer is final: the same refusal again.
    let (st2, again) = post_set(&app, &token, Some("set-full"), &s, &[]).await;
    assert_eq!((st2, &again), (st, &body));
    assert_verified(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_released_seat_promotes_the_waitlist_head() {
    let app = TestApp::spawn().await;
    let s = three_sections(&app, [1, 1, 0]).await;
    let (holder, holder_token) = app.student().await;
    let (waiter, waiter_token) = app.student().await;
    // The holder takes the one seat of the first section... through a set that fails.
    // The waiter can only wait once the seat is taken, so hold it with a failpoint.
    let paused = Failpoint::set("bundle-after-holds", holder);
    let (st, body) = post_set(&app, &holder_token, Some("h"), &s[..1], &[]).await;
    assert_problem(
        st,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "decision_pending",
    );
    assert_eq!(places(&app, holder).await, vec![(s[0], "held".into())]);
    let (st, body) = app.enroll(&waiter_token, s[0]).await;
    assert_eq!(st, StatusCode::ACCEPTED, "a held seat is taken: {body}");
    drop(paused);
    // The holder's retry finds the decision pending and ends it: cancelled (its own
    // request ended without deciding it), the seat released, the waiter promoted.
    let (st, body) = post_set(&app, &holder_token, Some("h"), &s[..1], &[]).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(places(&app, holder).await, vec![]);
    assert_eq!(places(&app, waiter).await, vec![(s[0], "enrolled".into())]);
    // And the retry after that is decided afresh (the first ended for want of an answer):
    // the seat is the waiter's now, so the section is full.
    let (st, body) = post_set(&app, &holder_token, Some("h"), &s[..1], &[]).await;
    assert_problem(st, &body, StatusCode::CONFLICT, "section_full");
    assert_verified(&app).await;
    app.stop().await;
}

/// The home stops after the holds (it "died"): the decision stays pending until its
/// deadline, then the finisher cancels it and releases every hold: nothing is taken.
#[tokio::test]
async fn a_home_that_stops_after_the_holds_leaves_nothing_taken() {
    let app = TestApp::spawn_with(|s| {
        s.sections.swap_finish_after_ms = 300;
        s.sections.decision_deadline_ms = 500;
    })
    .await;
    let s = three_sections(&app, [2, 2, 2]).await;
    let (student, token) = app.student().await;
    let _stop = Failpoint::set("bundle-after-holds", student);
    let (st, body) = post_set(&app, &token, None, &s, &[]).await;
    assert_problem(
        st,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "decision_pending",
    );
    let held = places(&app, student).await;
    assert_eq!(held.len(), 3, "the fault struck after every hold: {held:?}");
    assert!(held.iter().all(|(_, status)| status == "held"), "{held:?}");
    wait_until("the finisher ends the decision", async || {
        places(&app, student).await.is_empty()
    })
    .await;
    let state: String = sqlx::query_scalar("SELECT state FROM decisions WHERE student_id = $1")
        .bind(student)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "cancelled");
    assert_verified(&app).await;
    app.stop().await;
}

/// The home stops once the decision is confirmed, before any confirm is sent: the
/// finisher carries it out, and every seat becomes an enrollment.
#[tokio::test]
async fn a_home_that_stops_after_confirming_gets_every_seat_enrolled_by_the_finisher() {
    let app = TestApp::spawn_with(|s| s.sections.swap_finish_after_ms = 300).await;
    let s = three_sections(&app, [2, 2, 2]).await;
    let (student, token) = app.student().await;
    let stop = Failpoint::set("bundle-after-decision", student);
    let (st, body) = post_set(&app, &token, Some("k"), &s, &[]).await;
    // Confirmed then stopped: carried out by the request itself only if the fault did
    // not strike; it struck, so the answer is pending and the seats still held.
    assert_problem(
        st,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "decision_pending",
    );
    assert!(places(&app, student).await.iter().all(|(_, s)| s == "held"));
    drop(stop);
    wait_until("the finisher confirms every hold", async || {
        places(&app, student)
            .await
            .iter()
            .filter(|(_, status)| status == "enrolled")
            .count()
            == 3
    })
    .await;
    // The client's retry gets the decision's end.
    let (st, body) = post_set(&app, &token, Some("k"), &s, &[]).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_verified(&app).await;
    app.stop().await;
}

/// A seat held for a decision that has already ended elsewhere (a hold that arrived after
/// its release, or whose home never came back) is released by the section owner's sweep.
#[tokio::test]
async fn the_owner_sweeps_a_hold_whose_decision_ended() {
    let app = TestApp::spawn_with(|s| s.sections.swap_finish_after_ms = 600_000).await;
    let s = three_sections(&app, [2, 2, 2]).await;
    let (student, token) = app.student().await;
    let _stop = Failpoint::set("bundle-after-holds", student);
    let (st, body) = post_set(&app, &token, None, &s[..2], &[]).await;
    assert_problem(
        st,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "decision_pending",
    );
    // Its home ended it without knowing of the holds (as if they came late).
    sqlx::query(
        "UPDATE decisions SET state = 'cancelled', reason = 'unavailable',
                decided_at = now() - interval '1 hour', finished_at = now()
          WHERE student_id = $1",
    )
    .bind(student)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(places(&app, student).await.len(), 2);
    let settled = app.registration.sweep_holds(0).await.unwrap();
    assert_eq!(settled, 2);
    assert_eq!(places(&app, student).await, vec![]);
    assert_verified(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn bad_sets_are_refused_with_clear_codes() {
    let app = TestApp::spawn().await;
    let s = three_sections(&app, [2, 2, 2]).await;
    let (_, token) = app.student().await;
    let (st, body) = post_set(&app, &token, None, &[], &[]).await;
    assert_problem(st, &body, StatusCode::BAD_REQUEST, "invalid_body");
    let (st, body) = post_set(&app, &token, None, &[s[0], s[0]], &[]).await;
    assert_problem(st, &body, StatusCode::BAD_REQUEST, "invalid_body");
    let (st, body) = post_set(&app, &token, None, &[s[0]], &[s[0]]).await;
    assert_problem(st, &body, StatusCode::BAD_REQUEST, "invalid_body");
    let (st, body) = post_set(&app, &token, None, &[Uuid::new_v4()], &[]).await;
    assert_problem(st, &body, StatusCode::NOT_FOUND, "section_not_found");
    // Leaving a section the student is not in: nothing taken.
    let (st, body) = post_set(&app, &token, None, &[s[0]], &[s[1]]).await;
    assert_problem(st, &body, StatusCode::NOT_FOUND, "not_enrolled");
    app.stop().await;
}

/// A swap that may wait (PeopleSoft's "drop if enrolled"): the add is full, so the student
/// waits there, keeping the drop section; the seat freed later is held for the decision
/// that also leaves the drop section, carried out after the promotion's commit. The
/// student ends in the add section alone, never in both or neither.
#[tokio::test]
async fn a_waitlisted_swap_drops_the_old_section_with_the_promotion() {
    let app = TestApp::spawn().await;
    let s = three_sections(&app, [2, 1, 2]).await;
    let (student, token) = app.student().await;
    let (holder, holder_token) = app.student().await;
    let (st, _) = app.enroll(&token, s[0]).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = app.enroll(&holder_token, s[1]).await;
    assert_eq!(st, StatusCode::CREATED);
    let swap = |key: &'static str| {
        app.request(Method::POST, "/api/v1/enrollments/swap", Some(&token))
            .header("Idempotency-Key", key)
            .json(&json!({"drop": s[0], "add": s[1], "waitlist": true}))
            .send()
    };
    let (st, body) = answer(swap("wait-1").await.unwrap()).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "waitlisted");
    assert_eq!(body["drop_if_enrolled"], json!(s[0]));
    assert_eq!(places(&app, student).await, {
        let mut v = vec![
            (s[0], "enrolled".to_string()),
            (s[1], "waitlisted".to_string()),
        ];
        v.sort();
        v
    });
    // The seat frees: the promotion holds it and the decision leaves s[0].
    let (st, body) = app.drop_section(&holder_token, s[1]).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    wait_until("the promotion is carried out", async || {
        places(&app, student).await == vec![(s[1], "enrolled".to_string())]
    })
    .await;
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE payload->>'student_id' = $1 AND payload ? 'decision_id'",
    )
    .bind(student.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        events, 2,
        "the held seat and its enrollment carry the decision"
    );
    let _ = holder;
    assert_verified(&app).await;
    // A seat free at once: swapped in one decision.
    let (st, body) = answer(
        app.request(Method::POST, "/api/v1/enrollments/swap", Some(&token))
            .header("Idempotency-Key", "wait-2")
            .json(&json!({"drop": s[1], "add": s[2], "waitlist": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "swapped");
    assert_eq!(
        places(&app, student).await,
        vec![(s[2], "enrolled".to_string())]
    );
    assert_verified(&app).await;
    app.stop().await;
}
