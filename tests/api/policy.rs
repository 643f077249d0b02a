//! Registration policy through the real API: reserved seat pools under a flood (pool and
//! general seats both exact), a pool released at its time promoting the waitlist, pools
//! replaced through the section's actor, section restrictions, student attributes and
//! time tickets. Each test ends with `registrar verify`'s checks on the database.

use crate::helpers::*;
use chrono::{TimeDelta, Utc};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

/// Give `students` the major `major`.
async fn major(app: &TestApp, students: &[(Uuid, String)], major: &str) {
    let ids: Vec<Uuid> = students.iter().map(|(id, _)| *id).collect();
    sqlx::query("UPDATE students SET majors = ARRAY[$2] WHERE id = ANY($1)")
        .bind(&ids)
        .bind(major)
        .execute(&app.pool)
        .await
        .unwrap();
}

/// A CS101 section with `pools`; its id.
async fn section_with(
    app: &TestApp,
    term: Uuid,
    code: &str,
    capacity: u32,
    waitlist: u32,
    extra: Value,
) -> Uuid {
    app.course("CS101", 3, &[]).await;
    let mut body = json!({"term_id": term, "course_code": "CS101", "section_code": code,
        "capacity": capacity, "waitlist_capacity": waitlist});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let s = app.admin_post("/api/v1/sections", body).await;
    s["id"].as_str().unwrap().parse().unwrap()
}

/// Flood `students` at `section` at once; their answers.
async fn flood(
    app: &TestApp,
    students: &[(Uuid, String)],
    section: Uuid,
) -> Vec<(Uuid, StatusCode, Value)> {
    join_all(students.iter().map(|(id, token)| async move {
        let (status, body) = app.enroll(token, section).await;
        (*id, status, body)
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_fills_general_and_reserved_seats_exactly() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    let pool = json!({"reserved": [{"attribute": "major", "value": "cs", "seats": 10}]});
    let section = section_with(&app, term, "01", 30, 0, pool).await;
    let view = app.section_view(section).await;
    assert_eq!(view["reserved"][0]["value"], "CS", "{view}");
    assert_eq!(view["general_seats_left"], 20);
    let pool_id: Uuid = view["reserved"][0]["id"].as_str().unwrap().parse().unwrap();

    // 120 MATH majors at once: exactly the 20 general seats; the rest are told the seats
    // left are reserved.
    let math = app.students(120, &[]).await;
    major(&app, &math, "MATH").await;
    let answers = flood(&app, &math, section).await;
    let seated: HashSet<Uuid> = answers
        .iter()
        .filter(|a| a.1 == StatusCode::CREATED)
        .map(|a| a.0)
        .collect();
    assert_eq!(seated.len(), 20);
    for (_, status, body) in answers.iter().filter(|a| a.1 != StatusCode::CREATED) {
        assert_problem(*status, body, StatusCode::CONFLICT, "seats_reserved");
        assert!(
            body["detail"].as_str().unwrap().contains("major CS"),
            "{body}"
        );
    }
    let view = app.section_view(section).await;
    assert_eq!(
        (
            view["seats_left"].as_u64(),
            view["general_seats_left"].as_u64()
        ),
        (Some(10), Some(0))
    );

    // 120 CS majors at once: exactly the 10 reserved seats, all in the pool.
    let cs = app.students(120, &[]).await;
    major(&app, &cs, "CS").await;
    let answers = flood(&app, &cs, section).await;
    let in_pool: HashSet<Uuid> = answers
        .iter()
        .filter(|a| a.1 == StatusCode::CREATED)
        .map(|a| a.0)
        .collect();
    assert_eq!(in_pool.len(), 10);
    for (_, status, body) in answers.iter().filter(|a| a.1 != StatusCode::CREATED) {
        assert_problem(*status, body, StatusCode::CONFLICT, "section_full");
    }
    let rows: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
        "SELECT student_id, reserve_id FROM enrollments WHERE section_id = $1 AND status = 'enrolled'",
    )
    .bind(section)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 30);
    for (student, pool) in rows {
        match pool {
            Some(p) => {
                assert_eq!(p, pool_id);
                assert!(in_pool.contains(&student), "a pool seat went to a CS major");
            }
            None => assert!(
                seated.contains(&student),
                "a general seat went to a MATH major"
            ),
        }
    }
    let view = app.section_view(section).await;
    assert_eq!(view["reserved"][0]["taken"], 10, "{view}");
    assert_eq!(view["seats_left"], 0);
    verified(&app).await;
}

#[tokio::test]
async fn a_pool_released_at_its_time_promotes_the_waitlist_and_is_recorded() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    let release_at = Utc::now() + TimeDelta::seconds(3);
    let pool = json!({"reserved": [{"attribute": "cohort", "value": "HONORS", "seats": 1, "release_at": release_at}]});
    let section = section_with(&app, term, "01", 2, 5, pool).await;
    let students = app.students(3, &[]).await;
    assert_eq!(
        app.enroll(&students[0].1, section).await.0,
        StatusCode::CREATED
    );
    // The last seat is the honors cohort's: the next student waits, with the seat in sight.
    let (status, body) = app.enroll(&students[1].1, section).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let client = reqwest::Client::new();
    let mut stream = app.seat_stream(&client, section).await;
    let first = stream.next_event().await;
    assert_eq!(first["reserved_seats_left"], 1, "{first}");

    wait_until(
        "the pool's release promotes the waiting student",
        async || {
            app.count(
                "SELECT count(*) FROM enrollments WHERE section_id = $1 AND status = 'enrolled'",
                section,
            )
            .await
                == 2
        },
    )
    .await;
    let released: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("SELECT released_at FROM section_reserves WHERE section_id = $1")
            .bind(section)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        released.is_some_and(|at| at >= release_at - TimeDelta::seconds(1)),
        "{released:?}"
    );
    let events = app
        .count(
            "SELECT count(*) FROM outbox WHERE routing_key = 'section.reserves_changed'
                AND payload->>'section_id' = $1::text",
            section,
        )
        .await;
    assert_eq!(events, 1);
    let view = app.section_view(section).await;
    assert_eq!(view["reserved"][0]["released"], true, "{view}");
    verified(&app).await;
}

#[tokio::test]
async fn a_due_pool_of_a_section_no_actor_holds_is_released_by_its_owner() {
    let app = TestApp::spawn_with(|s| s.sections.swap_finish_after_ms = 400).await;
    let term = app.open_term().await;
    let pool = json!({"reserved": [{"attribute": "major", "value": "CS", "seats": 1}]});
    let section = section_with(&app, term, "01", 1, 5, pool).await;
    let students = app.students(1, &[]).await;
    assert_eq!(
        app.enroll(&students[0].1, section).await.0,
        StatusCode::ACCEPTED
    );
    // Restart: no actor holds the section when its pool comes due.
    let settings = app.stop().await;
    sqlx::query("UPDATE section_reserves SET release_at = now() - interval '1 second' WHERE section_id = $1")
        .bind(section)
        .execute(&registrar::store::connect(&settings.database.database_url, 1).await.unwrap())
        .await
        .unwrap();
    let app = TestApp::start(settings).await;
    wait_until("the owner's sweep releases the due pool", async || {
        app.count(
            "SELECT count(*) FROM enrollments WHERE section_id = $1 AND status = 'enrolled'",
            section,
        )
        .await
            == 1
    })
    .await;
    verified(&app).await;
}

#[tokio::test]
async fn pools_are_replaced_through_the_section_and_checked() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    let pool = json!({"reserved": [{"attribute": "major", "value": "CS", "seats": 2}]});
    let section = section_with(&app, term, "01", 3, 5, pool).await;
    let cs = app.students(1, &[]).await;
    major(&app, &cs, "CS").await;
    let others = app.students(3, &[]).await;
    assert_eq!(app.enroll(&cs[0].1, section).await.0, StatusCode::CREATED);
    assert_eq!(
        app.enroll(&others[0].1, section).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        app.enroll(&others[1].1, section).await.0,
        StatusCode::ACCEPTED
    );
    let path = format!("/api/v1/sections/{section}/reserved");
    let put = |body: Value| {
        let r = app
            .request(Method::PUT, &path, Some(&app.admin_token))
            .json(&body);
        async move { answer(r.send().await.unwrap()).await }
    };
    // Not below the CS major already seated, not above the capacity.
    let (st, b) =
        put(json!({"reserved": [{"attribute": "major", "value": "CS", "seats": 0}]})).await;
    assert_problem(st, &b, StatusCode::CONFLICT, "reserved_below_taken");
    let (st, b) =
        put(json!({"reserved": [{"attribute": "major", "value": "CS", "seats": 4}]})).await;
    assert_problem(st, &b, StatusCode::CONFLICT, "reserved_above_capacity");
    let (st, b) =
        put(json!({"reserved": [{"attribute": "planet", "value": "CS", "seats": 1}]})).await;
    assert!(
        st == StatusCode::UNPROCESSABLE_ENTITY || st == StatusCode::BAD_REQUEST,
        "{st} {b}"
    );
    let (st, b) =
        put(json!({"reserved": [{"attribute": "major", "value": "C S", "seats": 1}]})).await;
    assert_problem(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    // Shrinking the pool to its one student frees a seat: the waiting student takes it in
    // the same commit, and the CS major stays counted in the pool (same attribute, same id).
    let (st, view) =
        put(json!({"reserved": [{"attribute": "major", "value": "cs", "seats": 1}]})).await;
    assert_eq!(st, StatusCode::OK, "{view}");
    assert_eq!(view["reserved"][0]["taken"], 1, "{view}");
    assert_eq!(view["seats_left"], 0, "{view}");
    let (st, _) = app.enroll(&others[2].1, section).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    verified(&app).await;
}

#[tokio::test]
async fn restrictions_and_attributes_decide_who_may_enroll() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    let only_cs = json!({"restrictions": [{"attribute": "major", "mode": "include", "values": ["cs", "MATH"]}]});
    let section = section_with(&app, term, "01", 5, 0, only_cs).await;
    let (id, token) = app.student().await;
    let (st, b) = app.enroll(&token, section).await;
    assert_problem(st, &b, StatusCode::FORBIDDEN, "restricted_section");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("open only to major CS, MATH"),
        "{b}"
    );

    // An admin declares the major: the next request sees it.
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/students/{id}"),
            Some(&app.admin_token),
        )
        .json(&json!({"majors": ["cs"], "cohort": "honors"}));
    let (st, student) = answer(r.send().await.unwrap()).await;
    assert_eq!(st, StatusCode::OK, "{student}");
    assert_eq!(student["majors"], json!(["CS"]));
    assert_eq!(student["cohort"], "HONORS");
    assert_eq!(app.enroll(&token, section).await.0, StatusCode::CREATED);
    // `null` clears, a field left out stays.
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/students/{id}"),
            Some(&app.admin_token),
        )
        .json(&json!({"cohort": null}));
    let (_, student) = answer(r.send().await.unwrap()).await;
    assert_eq!(
        (student["majors"].clone(), student["cohort"].clone()),
        (json!(["CS"]), Value::Null)
    );
    for bad in [
        json!({"majors": ["a b"]}),
        json!({"max_credits": 41}),
        json!({"planet": "x"}),
    ] {
        let r = app
            .request(
                Method::PATCH,
                &format!("/api/v1/students/{id}"),
                Some(&app.admin_token),
            )
            .json(&bad);
        let (st, b) = answer(r.send().await.unwrap()).await;
        assert!(st.is_client_error(), "{bad}: {st} {b}");
    }
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/students/{}", Uuid::new_v4()),
            Some(&app.admin_token),
        )
        .json(&json!({"majors": []}));
    let (st, b) = answer(r.send().await.unwrap()).await;
    assert_problem(st, &b, StatusCode::NOT_FOUND, "student_not_found");

    // Seniors kept out.
    let no_seniors = json!({"restrictions": [{"attribute": "standing", "mode": "exclude", "values": ["senior"]}]});
    let closed = section_with(&app, term, "02", 5, 0, no_seniors).await;
    let (_, other) = app.student().await;
    let (st, b) = app.enroll(&other, closed).await;
    assert_problem(st, &b, StatusCode::FORBIDDEN, "restricted_section");
    verified(&app).await;
}

#[tokio::test]
async fn a_time_ticket_replaces_the_windows_opening() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    let section = section_with(&app, term, "01", 5, 0, json!({})).await;
    let (id, token) = app.student().await;
    let path = format!("/api/v1/terms/{term}/time-tickets/{id}");
    let put = |body: Value| {
        let r = app
            .request(Method::PUT, &path, Some(&app.admin_token))
            .json(&body);
        async move { answer(r.send().await.unwrap()).await }
    };
    let later = Utc::now() + TimeDelta::hours(1);
    let (st, ticket) = put(json!({"opens_at": later})).await;
    assert_eq!(st, StatusCode::OK, "{ticket}");
    let (st, b) = app.enroll(&token, section).await;
    assert_problem(st, &b, StatusCode::FORBIDDEN, "registration_not_open_yet");
    let mine = app
        .get_json("/api/v1/students/me/time-tickets", Some(&token))
        .await;
    assert_eq!(mine[0]["term_id"], term.to_string());
    let (st, b) = put(json!({"opens_at": later, "closes_at": later - TimeDelta::minutes(1)})).await;
    assert_problem(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    // Moved to a minute ago: the student may register now.
    let (st, _) = put(json!({"opens_at": Utc::now() - TimeDelta::minutes(1)})).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(app.enroll(&token, section).await.0, StatusCode::CREATED);
    let delete = app.request(Method::DELETE, &path, Some(&app.admin_token));
    assert_eq!(
        delete.send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let again = app.request(Method::DELETE, &path, Some(&app.admin_token));
    let (st, b) = answer(again.send().await.unwrap()).await;
    assert_problem(st, &b, StatusCode::NOT_FOUND, "ticket_not_found");
    verified(&app).await;
}

#[tokio::test]
async fn time_tickets_are_assigned_by_credits_earned() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    app.course("CS100", 4, &[]).await;
    app.course("MATH100", 3, &[]).await;
    let none = app.students(1, &[]).await;
    let one = app.students(1, &["CS100"]).await;
    let two = app.students(1, &["CS100", "MATH100"]).await;
    let first = Utc::now() + TimeDelta::hours(1);
    let path = format!("/api/v1/terms/{term}/time-tickets/assign");
    let body = json!({"by": "credits_earned", "first_opens_at": first, "group_size": 1, "step_minutes": 10});
    let assigned = app.admin_post(&path, body).await;
    assert_eq!(assigned["assigned"], 3, "{assigned}");
    let opens = |id: Uuid| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, chrono::DateTime<Utc>>(
                "SELECT opens_at FROM time_tickets WHERE student_id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let (a, b, c) = (
        opens(two[0].0).await,
        opens(one[0].0).await,
        opens(none[0].0).await,
    );
    // Most credits first, ten minutes apart.
    assert!((a - first).num_seconds().abs() <= 1, "{a} vs {first}");
    assert_eq!((b - a).num_minutes(), 10);
    assert_eq!((c - b).num_minutes(), 10);
    // The cache forgot them: the student with the latest ticket is not open yet.
    let (st, b) = app
        .enroll(
            &none[0].1,
            section_with(&app, term, "01", 5, 0, json!({})).await,
        )
        .await;
    assert_problem(st, &b, StatusCode::FORBIDDEN, "registration_not_open_yet");
    let bad = json!({"by": "gpa", "first_opens_at": first, "group_size": 1, "step_minutes": 10});
    let r = app.post(&path, Some(&app.admin_token), bad).await;
    let (st, b) = answer(r).await;
    assert_problem(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
}
