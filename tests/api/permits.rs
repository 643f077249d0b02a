//! Permits (overrides) through the real API: a capacity permit seats its student beyond a
//! full section (ahead of the waitlist only when it says so) and its seat goes with them; a
//! flood where permit holders and everyone else race for one section; each rule permit
//! (prerequisite, time conflict, restriction, consent, late add, credit overload) lets its
//! section through once and is used by the commit of the place; revocation; a held seat's
//! release gives its permits back; bad grants. Judged by rows, `permit_uses` and
//! `registrar verify`.

use crate::helpers::*;
use chrono::{TimeDelta, Utc};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

/// Grant `body` as the admin; the permit's id.
async fn grant(app: &TestApp, body: Value) -> Uuid {
    let p = app.admin_post("/api/v1/permits", body).await;
    p["id"].as_str().unwrap().parse().unwrap()
}

/// A section permit of `kind` for `student` in `section`.
async fn permit(app: &TestApp, student: Uuid, section: Uuid, kind: &str) -> Uuid {
    grant(
        app,
        json!({"student_id": student, "section_id": section, "kind": kind}),
    )
    .await
}

/// Permit `id`'s state as the admin's list shows it.
async fn state(app: &TestApp, student: Uuid, id: Uuid) -> String {
    let list = app
        .get_json(
            &format!("/api/v1/permits?student_id={student}"),
            Some(&app.admin_token),
        )
        .await;
    let p = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == json!(id))
        .unwrap_or_else(|| panic!("permit {id} not listed: {list}"));
    p["state"].as_str().unwrap().to_string()
}

/// Uses of permit `id` recorded.
async fn uses(app: &TestApp, id: Uuid) -> i64 {
    app.count("SELECT count(*) FROM permit_uses WHERE permit_id = $1", id)
        .await
}

/// The section's capacity and the seats beyond it by permit, as committed.
async fn capacity(app: &TestApp, section: Uuid) -> (u64, u64) {
    let (capacity, over): (i32, i64) = sqlx::query_as(
        "SELECT s.capacity, (SELECT count(*) FROM enrollments e WHERE e.section_id = s.id
                               AND e.status = 'enrolled' AND e.over_capacity)
           FROM sections s WHERE s.id = $1",
    )
    .bind(section)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    (capacity as u64, over as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_permit_seats_beyond_the_capacity_and_the_seat_goes_with_its_student() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(2, 5, json!([])).await;
    let crowd = app.students(2, &[]).await;
    for (_, token) in &crowd {
        assert_eq!(app.enroll(token, section).await.0, StatusCode::CREATED);
    }
    // Full, nobody waiting: the permit seats its student beyond the capacity.
    let (p, p_token) = app.student().await;
    let p_permit = permit(&app, p, section, "capacity").await;
    assert_eq!(state(&app, p, p_permit).await, "active");
    let (status, body) = app.enroll(&p_token, section).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(capacity(&app, section).await, (3, 1));
    assert_eq!(state(&app, p, p_permit).await, "used");
    let over: bool = sqlx::query_scalar(
        "SELECT over_capacity FROM enrollments WHERE section_id = $1 AND student_id = $2 AND status = 'enrolled'",
    )
    .bind(section)
    .bind(p)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(over);
    let event: Value = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE routing_key = 'enrollment.created'
            AND payload->>'student_id' = $1::text",
    )
    .bind(p)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(event["permit_ids"], json!([p_permit]), "{event}");
    assert_eq!(event["over_capacity"], true);

    // Someone waits now. A permit that does not jump the waitlist waits like anyone, and
    // stays unused; one that jumps seats its student at once.
    let (w, w_token) = app.student().await;
    assert_eq!(app.enroll(&w_token, section).await.0, StatusCode::ACCEPTED);
    let (q, q_token) = app.student().await;
    let q_permit = permit(&app, q, section, "capacity").await;
    let (status, body) = app.enroll(&q_token, section).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("waitlisted"))
    );
    assert_eq!(state(&app, q, q_permit).await, "active");
    let (r, r_token) = app.student().await;
    grant(
        &app,
        json!({"student_id": r, "section_id": section, "kind": "capacity", "jump_waitlist": true}),
    )
    .await;
    let (status, body) = app.enroll(&r_token, section).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::CREATED, Some("enrolled")),
        "{body}"
    );
    assert_eq!(capacity(&app, section).await, (4, 2));

    // A seat beyond the capacity leaves with its student: nobody is promoted.
    let (status, body) = app.drop_section(&p_token, section).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(capacity(&app, section).await, (3, 1));
    let rows = app.rows(section).await;
    let waiting: HashSet<Uuid> = rows
        .iter()
        .filter(|r| r.1 == "waitlisted")
        .map(|r| r.0)
        .collect();
    assert_eq!(waiting, HashSet::from([w, q]));
    // An ordinary seat freed goes to the head of the waitlist, as always.
    assert_eq!(
        app.drop_section(&crowd[0].1, section).await.0,
        StatusCode::OK
    );
    let seated: HashSet<Uuid> = app
        .rows(section)
        .await
        .iter()
        .filter(|r| r.1 == "enrolled")
        .map(|r| r.0)
        .collect();
    assert_eq!(seated, HashSet::from([crowd[1].0, r, w]));
    // The admin's capacity is what the section offers; the permit's seat stays on top.
    let r2 = app
        .request(
            Method::PATCH,
            &format!("/api/v1/sections/{section}"),
            Some(&app.admin_token),
        )
        .json(&json!({"capacity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r2.status(), StatusCode::OK);
    assert_eq!(capacity(&app, section).await, (3, 1));
    verified(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_seats_every_permit_holder_and_no_one_else_beyond_the_capacity() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(10, 0, json!([])).await;
    let holders = app.students(5, &[]).await;
    for (id, _) in &holders {
        grant(
            &app,
            json!({"student_id": id, "section_id": section, "kind": "capacity", "jump_waitlist": true}),
        )
        .await;
    }
    let others = app.students(100, &[]).await;
    let everyone: Vec<&(Uuid, String)> = holders.iter().chain(others.iter()).collect();
    let app = &app;
    let answers = join_all(
        everyone
            .iter()
            .map(|(id, token)| async move { (*id, app.enroll(token, section).await) }),
    )
    .await;
    let seated: HashSet<Uuid> = answers
        .iter()
        .filter(|(_, (s, _))| *s == StatusCode::CREATED)
        .map(|(id, _)| *id)
        .collect();
    for (id, _) in &holders {
        assert!(seated.contains(id), "a permit holder was refused");
    }
    for (_, (status, body)) in answers
        .iter()
        .filter(|(_, (s, _))| *s != StatusCode::CREATED)
    {
        assert_problem(*status, body, StatusCode::CONFLICT, "section_full");
    }
    // Exactly the ten seats went to students without a permit, or to holders who came
    // before the section was full (their permit then unused).
    let used: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM permit_uses u JOIN permits p ON p.id = u.permit_id
          WHERE p.section_id = $1 AND p.kind = 'capacity'",
    )
    .bind(section)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(seated.len() as i64, 10 + used);
    assert_eq!(
        capacity(app, section).await,
        (10 + used as u64, used as u64)
    );
    verified(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_permit_lets_its_section_through_once() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    app.course("CS101", 3, &[]).await;
    app.course("CS201", 3, &["CS101"]).await;
    app.course("MATH101", 3, &[]).await;
    let mon9 = meet("mon", "09:00", "10:00");
    let cs101 = app.section(term, "CS101", "01", 10, 0, mon9.clone()).await;
    let cs201 = app.section(term, "CS201", "01", 10, 0, json!([])).await;
    let math = app.section(term, "MATH101", "01", 10, 0, mon9).await;
    let (s, token) = app.student().await;
    assert_eq!(app.enroll(&token, cs101).await.0, StatusCode::CREATED);

    // Prerequisite: refused, permitted, used; dropped and added again it is refused.
    let (status, body) = app.enroll(&token, cs201).await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "prerequisites_not_met",
    );
    let pre = permit(&app, s, cs201, "prerequisite").await;
    let (status, body) = app.enroll(&token, cs201).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (state(&app, s, pre).await, uses(&app, pre).await),
        ("used".into(), 1)
    );
    assert_eq!(app.drop_section(&token, cs201).await.0, StatusCode::OK);
    let (status, body) = app.enroll(&token, cs201).await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "prerequisites_not_met",
    );
    assert_eq!(uses(&app, pre).await, 1);

    // Time conflict.
    let (status, body) = app.enroll(&token, math).await;
    assert_problem(status, &body, StatusCode::CONFLICT, "time_conflict");
    let clash = permit(&app, s, math, "time_conflict").await;
    assert_eq!(app.enroll(&token, math).await.0, StatusCode::CREATED);
    assert_eq!(uses(&app, clash).await, 1);

    // Credit overload (a term permit, up to its limit): 6 credits held, limit 7.
    sqlx::query("UPDATE students SET max_credits = 7 WHERE id = $1")
        .bind(s)
        .execute(&app.pool)
        .await
        .unwrap();
    app.course("BIO101", 3, &[]).await;
    let bio = app.section(term, "BIO101", "01", 10, 0, json!([])).await;
    let (status, body) = app.enroll(&token, bio).await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "credit_limit_exceeded",
    );
    grant(
        &app,
        json!({"student_id": s, "term_id": term, "kind": "credit_overload", "max_credits": 9}),
    )
    .await;
    assert_eq!(app.enroll(&token, bio).await.0, StatusCode::CREATED);

    // Consent: a section that requires it refuses without the permit.
    app.course("ART101", 1, &[]).await;
    let art = app
        .admin_post(
            "/api/v1/sections",
            json!({"term_id": term, "course_code": "ART101", "section_code": "01",
                   "capacity": 5, "waitlist_capacity": 0, "consent_required": true}),
        )
        .await;
    assert_eq!(art["consent_required"], true);
    let art: Uuid = art["id"].as_str().unwrap().parse().unwrap();
    let (other, other_token) = app.student().await;
    let (status, body) = app.enroll(&other_token, art).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "consent_required");
    // A revoked permit counts for nothing.
    let revoked = permit(&app, other, art, "consent").await;
    let r = app
        .post(
            &format!("/api/v1/permits/{revoked}/revoke"),
            Some(&app.admin_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (status, body) = app.enroll(&other_token, art).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "consent_required");
    assert_eq!(state(&app, other, revoked).await, "revoked");
    permit(&app, other, art, "consent").await;
    assert_eq!(app.enroll(&other_token, art).await.0, StatusCode::CREATED);

    // Restriction.
    app.course("HON101", 3, &[]).await;
    let honors = app
        .admin_post(
            "/api/v1/sections",
            json!({"term_id": term, "course_code": "HON101", "section_code": "01",
                   "capacity": 5, "waitlist_capacity": 0,
                   "restrictions": [{"attribute": "cohort", "mode": "include", "values": ["HONORS"]}]}),
        )
        .await;
    let honors: Uuid = honors["id"].as_str().unwrap().parse().unwrap();
    let (status, body) = app.enroll(&other_token, honors).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "restricted_section");
    permit(&app, other, honors, "restriction").await;
    assert_eq!(
        app.enroll(&other_token, honors).await.0,
        StatusCode::CREATED
    );

    // Late add: past the add deadline only a late-add permit's section gets in.
    let path = format!("/api/v1/terms/{term}/deadlines");
    let r = app
        .request(Method::PUT, &path, Some(&app.admin_token))
        .json(&json!({"add_by": Utc::now() - TimeDelta::hours(1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.course("PHYS101", 3, &[]).await;
    let phys = app.section(term, "PHYS101", "01", 5, 0, json!([])).await;
    let (status, body) = app.enroll(&other_token, phys).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "add_deadline_passed");
    let late = permit(&app, other, phys, "late_add").await;
    assert_eq!(app.enroll(&other_token, phys).await.0, StatusCode::CREATED);
    assert_eq!(uses(&app, late).await, 1);

    // The student reads their own permits.
    let mine = app
        .get_json("/api/v1/students/me/permits", Some(&other_token))
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 4, "{mine}");
    verified(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_set_gives_its_permits_back() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    app.course("CS101", 3, &[]).await;
    app.course("CS201", 3, &["CS101"]).await;
    let cs201 = app.section(term, "CS201", "01", 5, 0, json!([])).await;
    // Holds are taken in section id order: the full section must come after CS201's.
    let mut n = 0;
    let full = loop {
        n += 1;
        let full = app
            .section(term, "CS101", &format!("{n:02}"), 0, 0, json!([]))
            .await;
        if full > cs201 {
            break full;
        }
    };
    let (s, token) = app.student().await;
    let pre = permit(&app, s, cs201, "prerequisite").await;
    // A set of two sections: CS201's seat is held (its permit used with the hold), the
    // full section refuses, the decision is cancelled and the hold released.
    let r = app
        .post(
            "/api/v1/enrollments/sets",
            Some(&token),
            json!({"sections": [cs201, full]}),
        )
        .await;
    let (status, body) = answer(r).await;
    assert!(status.is_client_error(), "{status} {body}");
    wait_until("the hold's release", async || {
        app.count(
            "SELECT count(*) FROM enrollments WHERE section_id = $1 AND status <> 'dropped'",
            cs201,
        )
        .await
            == 0
    })
    .await;
    assert_eq!(uses(&app, pre).await, 0);
    assert_eq!(state(&app, s, pre).await, "active");
    // The permit is whole again: CS201 alone takes it.
    let (status, body) = app.enroll(&token, cs201).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(uses(&app, pre).await, 1);
    verified(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grants_are_refused_with_their_codes() {
    let app = TestApp::spawn().await;
    let (term, section) = app.open_cs101(2, 0, json!([])).await;
    let (s, token) = app.student().await;
    let admin = app.admin_token.clone();
    let cases = [
        (
            json!({"student_id": s, "section_id": section, "kind": "bogus"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"student_id": s, "kind": "prerequisite", "term_id": term}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"student_id": s, "kind": "credit_overload", "term_id": term}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"student_id": s, "section_id": section, "kind": "consent", "jump_waitlist": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"student_id": s, "section_id": section, "kind": "consent", "single_use": false}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"student_id": Uuid::new_v4(), "section_id": section, "kind": "consent"}),
            StatusCode::NOT_FOUND,
            "student_not_found",
        ),
        (
            json!({"student_id": s, "section_id": Uuid::new_v4(), "kind": "consent"}),
            StatusCode::NOT_FOUND,
            "section_not_found",
        ),
        (
            json!({"student_id": s, "term_id": Uuid::new_v4(), "kind": "credit_overload", "max_credits": 20}),
            StatusCode::NOT_FOUND,
            "term_not_found",
        ),
        (
            json!({"student_id": s, "section_id": section, "kind": "consent", "extra": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let r = app
            .post("/api/v1/permits", Some(&admin), body.clone())
            .await;
        expect_problem(&format!("POST {body}"), r, status, code).await;
    }
    let r = app
        .post(
            "/api/v1/permits",
            Some(&token),
            json!({"student_id": s, "section_id": section, "kind": "consent"}),
        )
        .await;
    expect_problem("as a student", r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .post(
            &format!("/api/v1/permits/{}/revoke", Uuid::new_v4()),
            Some(&admin),
            json!({}),
        )
        .await;
    expect_problem(
        "revoke unknown",
        r,
        StatusCode::NOT_FOUND,
        "permit_not_found",
    )
    .await;
}

/// A section of one seat (five waitlist places), its seat taken; the section and the
/// token of the student in it.
async fn one_seat_taken(app: &TestApp) -> (Uuid, String) {
    let (_, section) = app.open_cs101(1, 5, json!([])).await;
    let (_, token) = app.student().await;
    assert_eq!(app.enroll(&token, section).await.0, StatusCode::CREATED);
    (section, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_beyond_the_capacity_is_still_its_students_own_after_a_restart() {
    let app = TestApp::spawn().await;
    let (section, a_token) = one_seat_taken(&app).await;
    let (p, p_token) = app.student().await;
    permit(&app, p, section, "capacity").await;
    assert_eq!(app.enroll(&p_token, section).await.0, StatusCode::CREATED);
    let (w, w_token) = app.student().await;
    assert_eq!(app.enroll(&w_token, section).await.0, StatusCode::ACCEPTED);
    assert_eq!(capacity(&app, section).await, (2, 1));

    // A fresh node on the same database loads the section from its rows.
    let settings = app.stop().await;
    let app = TestApp::start(settings).await;
    // The permit's seat leaves with its student: the capacity shrinks, nobody is promoted.
    assert_eq!(app.drop_section(&p_token, section).await.0, StatusCode::OK);
    assert_eq!(capacity(&app, section).await, (1, 0));
    let waiting: i64 = app
        .count(
            "SELECT count(*) FROM enrollments WHERE section_id = $1 AND status = 'waitlisted'",
            section,
        )
        .await;
    assert_eq!(waiting, 1, "the waiting student stays in line");
    // An ordinary seat freed goes to them.
    assert_eq!(app.drop_section(&a_token, section).await.0, StatusCode::OK);
    let seated: Vec<Uuid> = sqlx::query_scalar(
        "SELECT student_id FROM enrollments WHERE section_id = $1 AND status = 'enrolled'",
    )
    .bind(section)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(seated, vec![w]);
    verified(&app).await;
}

#[tokio::test]
async fn a_permit_with_an_end_counts_until_then() {
    let app = TestApp::spawn().await;
    let (section, _) = one_seat_taken(&app).await;
    // Read with the student's other rule inputs, its end included (to the microsecond).
    let (p, p_token) = app.student().await;
    let until = Utc::now() + TimeDelta::minutes(30) + TimeDelta::microseconds(123_457);
    let body = json!({"student_id": p, "section_id": section, "kind": "capacity",
                      "single_use": false, "expires_at": until});
    grant(&app, body).await;
    let (status, body) = app.enroll(&p_token, section).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        capacity(&app, section).await.1,
        1,
        "seated beyond the capacity"
    );
    app.stop().await;
}
