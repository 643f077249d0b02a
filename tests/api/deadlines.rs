//! A term's add/drop deadlines through the real API: an admin sets them, anyone reads
//! them; an add after `add_by` is refused (enroll, swap, linked set, cart item); a drop by
//! `drop_by` leaves no record; a drop after it and by `withdraw_by` is a withdrawal (the
//! seat freed and the waitlist head promoted as for any drop, the row dropped with a W,
//! `enrollment.withdrawn` in the outbox, a `withdrawn` entry in the schedule); a seat's
//! drop after `withdraw_by` is refused while a waitlist place may always be left. The
//! deadlines are set relative to now, hours away: the database's clock and the test's
//! agree on this machine far better than that. Each test ends with `registrar verify`'s
//! checks on the database.

use crate::helpers::*;
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// `hours` from now (negative: ago), to the microsecond as PostgreSQL keeps it.
fn hours(hours: i64) -> DateTime<Utc> {
    (Utc::now() + TimeDelta::hours(hours)).trunc_subsecs(6)
}

/// PUT `body` as `term`'s deadlines with `token`; (status, body).
async fn put_deadlines(app: &TestApp, token: &str, term: Uuid, body: Value) -> (StatusCode, Value) {
    let path = format!("/api/v1/terms/{term}/deadlines");
    let r = app.request(Method::PUT, &path, Some(token)).json(&body);
    answer(r.send().await.expect("request")).await
}

/// Set `term`'s deadlines (hours from now) as the admin.
async fn deadlines(app: &TestApp, term: Uuid, add: i64, drop: i64, withdraw: i64) {
    let body =
        json!({"add_by": hours(add), "drop_by": hours(drop), "withdraw_by": hours(withdraw)});
    let (status, answer) = put_deadlines(app, &app.admin_token, term, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// `student`'s row in `section`, newest: (status, whether it has a W).
async fn row(app: &TestApp, section: Uuid, student: Uuid) -> (String, bool) {
    sqlx::query_as(
        "SELECT status, withdrawn_at IS NOT NULL FROM enrollments
          WHERE section_id = $1 AND student_id = $2 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(section)
    .bind(student)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// The routing keys of the outbox events about `student` in `section`, oldest first.
async fn events(app: &TestApp, section: Uuid, student: Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT routing_key FROM outbox
          WHERE payload->>'section_id' = $1::text AND payload->>'student_id' = $2::text
          ORDER BY id",
    )
    .bind(section)
    .bind(student)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn deadlines_are_set_by_an_admin_shown_to_anyone_and_checked() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    let path = format!("/api/v1/terms/{term}/deadlines");
    let unset = json!({"add_by": null, "drop_by": null, "withdraw_by": null});
    assert_eq!(app.get_json(&path, None).await, unset);

    let (add, drop, withdraw) = (hours(1), hours(2), hours(3));
    let body = json!({"add_by": add, "drop_by": drop, "withdraw_by": withdraw});
    let (status, set) = put_deadlines(&app, &app.admin_token, term, body).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let read = app.get_json(&path, None).await;
    assert_eq!(read, set);
    let at = |v: &Value| v.as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    assert_eq!(at(&read["add_by"]), add);
    assert_eq!(at(&read["withdraw_by"]), withdraw);
    let terms = app.get_json("/api/v1/terms", None).await;
    let listed = terms
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == json!(term))
        .unwrap();
    assert_eq!(listed["deadlines"], set, "{listed}");
    // A deadline left out is unset: the PUT replaces all three.
    let (status, only) = put_deadlines(
        &app,
        &app.admin_token,
        term,
        json!({"withdraw_by": withdraw}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{only}");
    assert_eq!(only["add_by"], Value::Null);
    assert_eq!(app.get_json(&path, None).await, only);

    // Bad bodies and callers.
    let admin = &app.admin_token;
    let cases = [
        (json!({"add_by": drop, "drop_by": add}), "invalid_field"),
        (
            json!({"drop_by": withdraw, "withdraw_by": drop}),
            "invalid_field",
        ),
        (
            json!({"add_by": withdraw, "withdraw_by": add}),
            "invalid_field",
        ),
        (json!({"add_by": "tomorrow"}), "invalid_body"),
        (json!({"add_by": "2026-13-01T00:00:00Z"}), "invalid_body"),
        (json!({"add_by": 5}), "invalid_body"),
        (json!({"close_by": add}), "invalid_body"),
        (json!([]), "invalid_body"),
    ];
    for (body, code) in cases {
        let r = app.request(Method::PUT, &path, Some(admin)).json(&body);
        let status = if code == "invalid_field" {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        };
        expect_problem(
            &format!("PUT {body}"),
            r.send().await.unwrap(),
            status,
            code,
        )
        .await;
    }
    let r = app
        .request(Method::PUT, &path, Some(admin))
        .header("content-type", "application/json")
        .body("{");
    expect_problem(
        "PUT {",
        r.send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;
    let unknown = format!("/api/v1/terms/{}/deadlines", Uuid::new_v4());
    let r = app.request(Method::PUT, &unknown, Some(admin)).json(&unset);
    expect_problem(
        "PUT unknown",
        r.send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "term_not_found",
    )
    .await;
    let r = app.get(&unknown, None).await;
    expect_problem("GET unknown", r, StatusCode::NOT_FOUND, "term_not_found").await;
    let (_, student) = app.student().await;
    let r = app.request(Method::PUT, &path, Some(&student)).json(&unset);
    expect_problem(
        "PUT as a student",
        r.send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let r = app.request(Method::PUT, &path, None).json(&unset);
    expect_problem(
        "PUT anonymous",
        r.send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    // Nothing above changed them.
    assert_eq!(app.get_json(&path, None).await, only);
    app.stop().await;
}

#[tokio::test]
async fn an_add_after_add_by_is_refused_however_it_is_asked_for() {
    let app = TestApp::spawn().await;
    let (term, cs101) = app.open_cs101(5, 5, meet("mon", "09:00", "10:00")).await;
    app.course("MATH101", 3, &[]).await;
    let math = app
        .section(term, "MATH101", "01", 5, 5, meet("tue", "09:00", "10:00"))
        .await;
    let (student, token) = app.student().await;
    assert_eq!(app.enroll(&token, cs101).await.0, StatusCode::CREATED);
    // Stage MATH101 in the cart while adds are open.
    let cart = format!("/api/v1/students/me/cart/{math}");
    let r = app
        .request(Method::PUT, &cart, Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    deadlines(&app, term, -1, 1, 2).await;
    let (status, body) = app.enroll(&token, math).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "add_deadline_passed");
    let (status, body) = app.swap(&token, cs101, math).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "add_deadline_passed");
    let set = json!({"sections": [math]});
    let (status, body) = answer(
        app.post("/api/v1/enrollments/sets", Some(&token), set)
            .await,
    )
    .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "add_deadline_passed");
    let r = app
        .request(
            Method::POST,
            "/api/v1/students/me/cart/submit",
            Some(&token),
        )
        .header("Idempotency-Key", "late-cart")
        .send()
        .await
        .unwrap();
    let (status, body) = answer(r).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["status"], "refused", "{body}");
    assert_eq!(body["items"][0]["code"], "add_deadline_passed", "{body}");
    // Nothing was taken, and the section already held is still held.
    assert_eq!(row(&app, cs101, student).await, ("enrolled".into(), false));
    let held: i64 = app
        .count(
            "SELECT count(*) FROM enrollments WHERE student_id = $1 AND status <> 'dropped'",
            student,
        )
        .await;
    assert_eq!(held, 1);
    // The refusal is audited under its code.
    let audited = app
        .count(
            "SELECT count(*) FROM registration_attempts
              WHERE student_id = $1 AND code = 'add_deadline_passed'",
            student,
        )
        .await;
    assert!(audited >= 3, "{audited} refusals audited");
    verified(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_drop_by_drop_by_leaves_no_record() {
    let app = TestApp::spawn().await;
    let (term, section) = app.open_cs101(5, 5, meet("mon", "09:00", "10:00")).await;
    let (student, token) = app.student().await;
    assert_eq!(app.enroll(&token, section).await.0, StatusCode::CREATED);
    deadlines(&app, term, -1, 1, 2).await;
    let (status, body) = app.drop_section(&token, section).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"status": "dropped", "promoted": false}));
    assert_eq!(row(&app, section, student).await, ("dropped".into(), false));
    assert_eq!(
        events(&app, section, student).await,
        ["enrollment.created", "enrollment.dropped"]
    );
    let schedule = app
        .get_json("/api/v1/students/me/schedule", Some(&token))
        .await;
    assert_eq!(schedule["withdrawn"], json!([]), "{schedule}");
    verified(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_drop_after_drop_by_is_a_withdrawal_that_frees_the_seat() {
    let app = TestApp::spawn().await;
    let (term, section) = app.open_cs101(1, 5, meet("mon", "09:00", "10:00")).await;
    let students = app.students(3, &[]).await;
    let [(a, ta), (b, _), (c, tc)] = [&students[0], &students[1], &students[2]].map(Clone::clone);
    assert_eq!(
        app.enroll_each(&students, section).await,
        [
            StatusCode::CREATED,
            StatusCode::ACCEPTED,
            StatusCode::ACCEPTED
        ]
    );
    deadlines(&app, term, -2, -1, 1).await;

    // The seat goes with a W, and to the waitlist head as for any drop; the answer is
    // kept under its key, and rebuilt from the record when the stored copy is gone.
    let path = format!("/api/v1/sections/{section}/enrollments/me");
    let withdraw = || {
        app.request(Method::DELETE, &path, Some(&ta))
            .header("Idempotency-Key", "w-1")
    };
    let (status, body) = answer(withdraw().send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let withdrawn = json!({"status": "dropped", "promoted": true, "withdrawn": true});
    assert_eq!(body, withdrawn);
    assert_eq!(row(&app, section, a).await, ("dropped".into(), true));
    assert_eq!(row(&app, section, b).await, ("enrolled".into(), false));
    assert_eq!(
        events(&app, section, a).await,
        ["enrollment.created", "enrollment.withdrawn"]
    );
    assert_eq!(
        events(&app, section, b).await,
        ["waitlist.added", "waitlist.promoted"]
    );
    let payload: Value =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE routing_key = 'enrollment.withdrawn'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(payload["from"], "enrolled", "{payload}");
    assert_eq!(payload["student_id"], json!(a), "{payload}");
    sqlx::query("DELETE FROM idempotency_keys")
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, again) = answer(withdraw().send().await.unwrap()).await;
    assert_eq!(
        (status, again),
        (StatusCode::OK, withdrawn),
        "rebuilt answer"
    );

    // The W shows in the schedule, with no credits.
    let schedule = app
        .get_json("/api/v1/students/me/schedule", Some(&ta))
        .await;
    assert_eq!(schedule["enrolled"], json!([]), "{schedule}");
    assert_eq!(schedule["credits"], 0, "{schedule}");
    let w = &schedule["withdrawn"];
    assert_eq!(w.as_array().map(Vec::len), Some(1), "{schedule}");
    assert_eq!(w[0]["section_id"], json!(section), "{schedule}");
    assert_eq!(w[0]["course_code"], "CS101", "{schedule}");
    assert!(w[0]["withdrawn_at"].is_string(), "{schedule}");
    assert!(w[0]["enrolled_at"].is_string(), "{schedule}");

    // A waitlist place is left plainly, whatever the date.
    let (status, body) = app.drop_section(&tc, section).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"status": "dropped", "promoted": false}));
    assert_eq!(row(&app, section, c).await, ("dropped".into(), false));
    assert_eq!(
        events(&app, section, c).await,
        ["waitlist.added", "enrollment.dropped"]
    );
    verified(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_seat_cannot_be_dropped_after_withdraw_by_but_a_waitlist_place_can() {
    let app = TestApp::spawn().await;
    let (term, section) = app.open_cs101(1, 5, meet("mon", "09:00", "10:00")).await;
    let students = app.students(2, &[]).await;
    let [(a, ta), (b, tb)] = [&students[0], &students[1]].map(Clone::clone);
    assert_eq!(
        app.enroll_each(&students, section).await,
        [StatusCode::CREATED, StatusCode::ACCEPTED]
    );
    deadlines(&app, term, -3, -2, -1).await;
    let (status, body) = app.drop_section(&ta, section).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "drop_deadline_passed");
    assert_eq!(row(&app, section, a).await, ("enrolled".into(), false));
    let (status, body) = app.drop_section(&tb, section).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"status": "dropped", "promoted": false}));
    assert_eq!(row(&app, section, b).await, ("dropped".into(), false));
    assert_eq!(events(&app, section, a).await, ["enrollment.created"]);
    verified(&app).await;
    app.stop().await;
}

/// A BIOL1406 lecture and its lab in `term`: (lecture, lab).
async fn lecture_and_lab(app: &TestApp, term: Uuid) -> (Uuid, Uuid) {
    app.admin_post(
        "/api/v1/courses",
        json!({"code": "BIOL1406", "title": "Biology", "credits": 4, "components": ["lecture", "lab"]}),
    )
    .await;
    let section = |code: &str, extra: Value| {
        let mut body = json!({"term_id": term, "course_code": "BIOL1406", "section_code": code,
            "capacity": 5, "waitlist_capacity": 5});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let lec = app
        .admin_post(
            "/api/v1/sections",
            section("001", json!({"meetings": meet("mon", "09:00", "10:00")})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let lab = app
        .admin_post(
            "/api/v1/sections",
            section("L01", json!({"component": "lab", "links": [lec], "meetings": meet("tue", "14:00", "16:00")})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (lec, lab)
}

#[tokio::test]
async fn a_linked_set_dropped_after_drop_by_is_withdrawn_from_whole() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    let (lec, lab) = lecture_and_lab(&app, term).await;
    let (student, token) = app.student().await;
    let set = json!({"sections": [lec, lab]});
    let (status, body) = answer(
        app.post("/api/v1/enrollments/sets", Some(&token), set)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // After the last day to withdraw: refused before anything is decided.
    deadlines(&app, term, -3, -2, -1).await;
    let (status, body) = app.drop_section(&token, lab).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "drop_deadline_passed");
    assert_eq!(row(&app, lec, student).await, ("enrolled".into(), false));

    // Between the deadlines: the whole set goes, each member with a W.
    deadlines(&app, term, -2, -1, 1).await;
    let (status, body) = app.drop_section(&token, lab).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "dropped", "{body}");
    assert_eq!(body["withdrawn"], true, "{body}");
    for section in [lec, lab] {
        assert_eq!(row(&app, section, student).await, ("dropped".into(), true));
        let kinds = events(&app, section, student).await;
        assert_eq!(
            kinds.last().map(String::as_str),
            Some("enrollment.withdrawn"),
            "{kinds:?}"
        );
    }
    let schedule = app
        .get_json("/api/v1/students/me/schedule", Some(&token))
        .await;
    assert_eq!(
        schedule["withdrawn"].as_array().map(Vec::len),
        Some(2),
        "{schedule}"
    );
    verified(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_withdrawal_reaches_the_consumers_as_its_own_kind() {
    let app = TestApp::spawn_with(|s| s.events.consumers_in_process = true).await;
    let (term, section) = app.open_cs101(5, 5, meet("mon", "09:00", "10:00")).await;
    let (student, token) = app.student().await;
    assert_eq!(app.enroll(&token, section).await.0, StatusCode::CREATED);
    deadlines(&app, term, -2, -1, 1).await;
    let (status, body) = app.drop_section(&token, section).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["withdrawn"], true, "{body}");
    wait_until("both consumers applied both events", async || {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM consumed_events")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        n == 4
    })
    .await;
    let notes = app
        .get_json("/api/v1/students/me/notifications", Some(&token))
        .await;
    assert_eq!(notes[0]["kind"], "withdrawn", "{notes}");
    assert_eq!(notes[0]["section_id"], json!(section), "{notes}");
    let figures = app
        .get_json(
            &format!("/api/v1/analytics/terms/{term}"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(
        figures["totals"],
        json!({"enrolled": 1, "waitlisted": 0, "dropped": 0, "promoted": 0, "withdrawn": 1}),
        "{figures}"
    );
    assert_eq!(metric(&app, "registrar_withdrawn_total").await, 1);
    assert_eq!(row(&app, section, student).await, ("dropped".into(), true));
    verified(&app).await;
    app.stop().await;
}
