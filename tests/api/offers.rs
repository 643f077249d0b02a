//! Offer-mode waitlists through the real API: a freed seat is offered to the next waiting
//! student, who accepts or declines it; an offer ends at its time and passes the seat on,
//! even across a restart; and an offer survives `kill -9` of the section's owner intact
//! (same student, same end), to be accepted through the node that took the section over.
//! Each test judges by the rows and `registrar verify`'s checks.

use crate::cluster::{node_settings, owner_of, wait_balanced};
use crate::cluster_procs::{Proc, SHARDS};
use crate::helpers::*;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// An offer-mode CS101 section with `capacity` seats; its id.
async fn offer_section(app: &TestApp, term: Uuid, code: &str, capacity: u32) -> Uuid {
    app.course("CS101", 3, &[]).await;
    let s = app
        .admin_post(
            "/api/v1/sections",
            json!({"term_id": term, "course_code": "CS101", "section_code": code,
                   "capacity": capacity, "waitlist_capacity": 5, "waitlist_mode": "offer",
                   "offer_window_minutes": 60}),
        )
        .await;
    assert_eq!(s["waitlist_mode"], "offer", "{s}");
    s["id"].as_str().unwrap().parse().unwrap()
}

/// POST `path` to the node at `base` as `token`.
async fn post_on(base: &str, token: &str, path: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    answer(r).await
}

async fn accept(app: &TestApp, token: &str, section: Uuid) -> (StatusCode, Value) {
    let path = format!("/api/v1/sections/{section}/enrollments/me/accept");
    answer(app.post(&path, Some(token), json!({})).await).await
}

async fn decline(app: &TestApp, token: &str, section: Uuid) -> (StatusCode, Value) {
    let path = format!("/api/v1/sections/{section}/enrollments/me/decline");
    answer(app.post(&path, Some(token), json!({})).await).await
}

/// (student, status, offer end) of the section's active rows.
async fn offers(app: &TestApp, section: Uuid) -> Vec<(Uuid, String, Option<DateTime<Utc>>)> {
    sqlx::query_as(
        "SELECT student_id, status, offer_expires_at FROM enrollments
          WHERE section_id = $1 AND status <> 'dropped' ORDER BY student_id",
    )
    .bind(section)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_freed_seat_is_offered_in_order_declined_passed_on_and_accepted() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    let section = offer_section(&app, term, "01", 1).await;
    let s = app.students(3, &[]).await;
    assert_eq!(app.enroll(&s[0].1, section).await.0, StatusCode::CREATED);
    assert_eq!(app.enroll(&s[1].1, section).await.0, StatusCode::ACCEPTED);
    assert_eq!(app.enroll(&s[2].1, section).await.0, StatusCode::ACCEPTED);
    let (st, b) = accept(&app, &s[1].1, section).await;
    assert_problem(st, &b, StatusCode::CONFLICT, "no_offer");

    // The seat freed is offered to the head, held for them, not given.
    let (st, dropped) = app.drop_section(&s[0].1, section).await;
    assert_eq!(st, StatusCode::OK, "{dropped}");
    let schedule = app
        .get_json("/api/v1/students/me/schedule", Some(&s[1].1))
        .await;
    assert_eq!(
        schedule["offered"][0]["section_id"],
        section.to_string(),
        "{schedule}"
    );
    assert!(schedule["offered"][0]["offer_expires_at"].is_string());
    assert_eq!(app.section_view(section).await["seats_left"], 0);
    let (st, b) = app.enroll(&s[1].1, section).await;
    assert_problem(st, &b, StatusCode::CONFLICT, "already_offered");
    let (st, b) = accept(&app, &s[2].1, section).await;
    assert_problem(st, &b, StatusCode::CONFLICT, "no_offer");

    // Declined: the next student gets the offer at once.
    let (st, b) = decline(&app, &s[1].1, section).await;
    assert_eq!(
        (st, b["status"].clone(), b["promoted"].clone()),
        (StatusCode::OK, json!("declined"), json!(true)),
        "{b}"
    );
    let (st, b) = accept(&app, &s[2].1, section).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["status"], "enrolled");
    let rows = offers(&app, section).await;
    assert_eq!(rows, vec![(s[2].0, "enrolled".to_string(), rows[0].2)]);
    let kinds: Vec<(String, i64)> = sqlx::query_as(
        "SELECT routing_key, count(*) FROM outbox WHERE payload->>'section_id' = $1::text
          AND routing_key LIKE 'waitlist.%' GROUP BY 1 ORDER BY 1",
    )
    .bind(section.to_string())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        vec![
            ("waitlist.added".into(), 2),
            ("waitlist.offer_declined".into(), 1),
            ("waitlist.offered".into(), 2),
            ("waitlist.promoted".into(), 1),
        ]
    );
    verified(&app).await;
}

#[tokio::test]
async fn an_offer_ends_at_its_time_even_across_a_restart_and_passes_the_seat_on() {
    let app = TestApp::spawn_with(|s| s.sections.swap_finish_after_ms = 400).await;
    let term = app.open_term().await;
    let section = offer_section(&app, term, "01", 1).await;
    let s = app.students(3, &[]).await;
    assert_eq!(app.enroll(&s[0].1, section).await.0, StatusCode::CREATED);
    assert_eq!(app.enroll(&s[1].1, section).await.0, StatusCode::ACCEPTED);
    assert_eq!(app.enroll(&s[2].1, section).await.0, StatusCode::ACCEPTED);
    assert_eq!(app.drop_section(&s[0].1, section).await.0, StatusCode::OK);
    let before = offers(&app, section).await;
    assert!(
        before
            .iter()
            .any(|(id, st, at)| *id == s[1].0 && st == "offered" && at.is_some()),
        "{before:?}"
    );

    // The server stops; meanwhile the offer's time runs out.
    let settings = app.stop().await;
    let db = registrar::store::connect(&settings.database.database_url, 1)
        .await
        .unwrap();
    sqlx::query("UPDATE enrollments SET offer_expires_at = now() - interval '1 second' WHERE status = 'offered'")
        .execute(&db)
        .await
        .unwrap();
    let app = TestApp::start(settings).await;
    wait_until("the expired offer passes to the next student", async || {
        offers(&app, section)
            .await
            .iter()
            .any(|(id, st, _)| *id == s[2].0 && st == "offered")
    })
    .await;
    let (st, b) = accept(&app, &s[1].1, section).await;
    assert_problem(st, &b, StatusCode::CONFLICT, "no_offer");
    assert_eq!(accept(&app, &s[2].1, section).await.0, StatusCode::CREATED);
    let expired: i64 = app
        .count(
            "SELECT count(*) FROM enrollments WHERE section_id = $1 AND offer_ended = 'expired'",
            section,
        )
        .await;
    assert_eq!(expired, 1);
    verified(&app).await;
}

#[tokio::test]
async fn accepting_checks_the_rules_again() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    let section = offer_section(&app, term, "01", 1).await;
    let s = app.students(2, &[]).await;
    assert_eq!(app.enroll(&s[0].1, section).await.0, StatusCode::CREATED);
    assert_eq!(app.enroll(&s[1].1, section).await.0, StatusCode::ACCEPTED);
    assert_eq!(app.drop_section(&s[0].1, section).await.0, StatusCode::OK);
    // A hold since joining the waitlist: the accept is refused, the offer stands.
    let hold = app
        .admin_post(
            &format!("/api/v1/students/{}/holds", s[1].0),
            json!({"reason": "library fine"}),
        )
        .await;
    let (st, b) = accept(&app, &s[1].1, section).await;
    assert_problem(st, &b, StatusCode::FORBIDDEN, "student_on_hold");
    let lift = format!(
        "/api/v1/students/{}/holds/{}",
        s[1].0,
        hold["id"].as_str().unwrap()
    );
    let r = app.request(Method::DELETE, &lift, Some(&app.admin_token));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(accept(&app, &s[1].1, section).await.0, StatusCode::CREATED);
    verified(&app).await;
}

#[tokio::test]
async fn an_offer_survives_kill_9_of_its_sections_owner_intact() {
    let database = fresh_database().await;
    let a = TestApp::start(node_settings(&database, "node-a", SHARDS)).await;
    let mut b = Some(Proc::start(&database, "node-b").await);
    wait_balanced(&a, 2, SHARDS as i64).await;
    let term = a.open_term().await;
    // A section node-b owns.
    let mut section = None;
    for i in 0..64 {
        let id = offer_section(&a, term, &format!("S{i}"), 1).await;
        if owner_of(&a, id).await == "node-b" {
            section = Some(id);
            break;
        }
    }
    let section = section.expect("a section on node-b");
    let s = a.students(3, &[]).await;
    let base = b.as_ref().unwrap().url.clone();
    let enroll = format!("/api/v1/sections/{section}/enrollments");
    assert_eq!(
        post_on(&base, &s[0].1, &enroll).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        post_on(&base, &s[1].1, &enroll).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post_on(&base, &s[2].1, &enroll).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(a.drop_section(&s[0].1, section).await.0, StatusCode::OK);
    let before = offers(&a, section).await;
    let offer = before
        .iter()
        .find(|(_, st, _)| st == "offered")
        .cloned()
        .expect("an offer");
    assert_eq!(offer.0, s[1].0);

    // kill -9 of the owner; node-a takes the section over.
    let dead = b.take().unwrap();
    dead.signal("-KILL");
    wait_until("the section has a new owner", async || {
        owner_of(&a, section).await != "node-b"
    })
    .await;
    // The offer is as it was: same student, same end; accepted through the new owner.
    assert_eq!(offers(&a, section).await, before);
    let (st, body) = accept(&a, &s[1].1, section).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let after = offers(&a, section).await;
    assert!(
        after
            .iter()
            .any(|(id, st, _)| *id == s[1].0 && st == "enrolled"),
        "{after:?}"
    );
    assert!(
        after
            .iter()
            .any(|(id, st, _)| *id == s[2].0 && st == "waitlisted"),
        "{after:?}"
    );
    verified(&a).await;
    a.stop().await;
}
