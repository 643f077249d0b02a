//! Variable credits and grading bases through the real API: a course's credit range and
//! bases on creation and in the section; an enroll choosing credits in and out of the
//! range and a basis the course does or does not allow; audited credits left out of the
//! credit limit and the schedule's total; a change of options checked against the limit,
//! the course and the term's `drop_by`, with its event in the outbox; options kept on the
//! row through a waitlist promotion and a swap between sections of one course. Each test
//! ends with `registrar verify`'s checks on the database.

use crate::helpers::*;
use chrono::{TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// A course with a credit range and bases (ignores "already exists").
async fn course(app: &TestApp, code: &str, credits: u32, range: (u32, u32), bases: &[&str]) {
    let body = json!({"code": code, "title": format!("{code} title"), "credits": credits,
        "min_credits": range.0, "max_credits": range.1, "grading_bases": bases});
    let r = app
        .post("/api/v1/courses", Some(&app.admin_token), body)
        .await;
    assert!(
        r.status() == StatusCode::CREATED || r.status() == StatusCode::CONFLICT,
        "course {code}: {}",
        r.status()
    );
}

/// POST an enroll with `body`; (status, body).
async fn enroll_with(
    app: &TestApp,
    token: &str,
    section: Uuid,
    body: Value,
) -> (StatusCode, Value) {
    let path = format!("/api/v1/sections/{section}/enrollments");
    answer(app.post(&path, Some(token), body).await).await
}

/// PATCH my options in `section`; (status, body).
async fn change(app: &TestApp, token: &str, section: Uuid, body: Value) -> (StatusCode, Value) {
    let path = format!("/api/v1/sections/{section}/enrollments/me");
    let r = app.request(Method::PATCH, &path, Some(token)).json(&body);
    answer(r.send().await.expect("request")).await
}

/// The calling student's schedule.
async fn schedule(app: &TestApp, token: &str) -> Value {
    app.get_json("/api/v1/students/me/schedule", Some(token))
        .await
}

/// The schedule entry of `section` under `list` (`enrolled`, `waitlisted`).
fn entry<'a>(schedule: &'a Value, list: &str, section: Uuid) -> &'a Value {
    schedule[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["section_id"] == section.to_string())
        .unwrap_or_else(|| panic!("{section} not {list}: {schedule}"))
}

/// The stored options of `student` in `section`: (credits, basis).
async fn stored(app: &TestApp, student: Uuid, section: Uuid) -> Option<(i16, String)> {
    sqlx::query_as(
        "SELECT credits, grading_basis FROM enrollment_options
          WHERE student_id = $1 AND section_id = $2",
    )
    .bind(student)
    .bind(section)
    .fetch_optional(&app.pool)
    .await
    .unwrap()
}

/// Set `student`'s credit limit.
async fn limit(app: &TestApp, student: Uuid, max_credits: i16) {
    sqlx::query("UPDATE students SET max_credits = $2 WHERE id = $1")
        .bind(student)
        .bind(max_credits)
        .execute(&app.pool)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_are_chosen_within_the_course_range_and_bases() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    course(&app, "IS400", 3, (1, 4), &["audit", "letter"]).await;
    app.course("CS101", 3, &[]).await;
    let study = app.section(term, "IS400", "01", 10, 0, json!([])).await;
    let fixed = app.section(term, "CS101", "01", 10, 0, json!([])).await;

    // The section shows the course's range and bases (in their canonical order); a course
    // created without them is fixed and graded by letter.
    let view = app.section_view(study).await;
    assert_eq!(
        (&view["credits"], &view["min_credits"], &view["max_credits"]),
        (&json!(3), &json!(1), &json!(4)),
        "{view}"
    );
    assert_eq!(view["grading_bases"], json!(["letter", "audit"]));
    let view = app.section_view(fixed).await;
    assert_eq!(
        (
            &view["min_credits"],
            &view["max_credits"],
            &view["grading_bases"]
        ),
        (&json!(3), &json!(3), &json!(["letter"])),
        "{view}"
    );

    let (student, token) = app.student().await;
    for (body, status, code) in [
        (
            json!({"credits": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "credits_out_of_range",
        ),
        (
            json!({"credits": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "credits_out_of_range",
        ),
        (
            json!({"grading_basis": "pass_fail"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "grading_basis_not_allowed",
        ),
        (
            json!({"grading_basis": "pf"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"credits": "4"}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (json!({"units": 4}), StatusCode::BAD_REQUEST, "invalid_body"),
    ] {
        let (st, answer) = enroll_with(&app, &token, study, body.clone()).await;
        assert_problem(st, &answer, status, code);
    }
    assert_eq!(
        stored(&app, student, study).await,
        None,
        "a refusal records nothing"
    );
    // `null`, as a body or as a field, asks for nothing (the document allows both).
    let path = format!("/api/v1/sections/{fixed}/enrollments");
    let r = app
        .request(Method::POST, &path, Some(&token))
        .header("Content-Type", "application/json")
        .body("null");
    let (st, answer) = answer(r.send().await.unwrap()).await;
    assert_eq!(st, StatusCode::CREATED, "{answer}");
    // The course's defaults, with nothing on record before: no row to write (a place
    // without one is the course's defaults), so a flood of plain enrolls writes nothing
    // more than the seat.
    assert_eq!(stored(&app, student, fixed).await, None);
    assert_eq!(app.drop_section(&token, fixed).await.0, StatusCode::OK);
    let (st, answer) = enroll_with(&app, &token, fixed, json!({"grading_basis": null})).await;
    assert_eq!(st, StatusCode::CREATED, "{answer}");
    assert_eq!(app.drop_section(&token, fixed).await.0, StatusCode::OK);
    let (st, answer) = enroll_with(&app, &token, study, json!({"credits": 4})).await;
    assert_eq!(st, StatusCode::CREATED, "{answer}");
    // A fixed course takes its credits; asking for others is out of its range.
    let (st, answer) = enroll_with(&app, &token, fixed, json!({"credits": 4})).await;
    assert_problem(
        st,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "credits_out_of_range",
    );
    let (st, answer) = app.enroll(&token, fixed).await;
    assert_eq!(st, StatusCode::CREATED, "{answer}");

    assert_eq!(
        stored(&app, student, study).await,
        Some((4, "letter".into()))
    );
    assert_eq!(stored(&app, student, fixed).await, None);
    let s = schedule(&app, &token).await;
    assert_eq!(entry(&s, "enrolled", study)["credits"], 4, "{s}");
    assert_eq!(entry(&s, "enrolled", study)["grading_basis"], "letter");
    assert_eq!(entry(&s, "enrolled", fixed)["credits"], 3);
    assert_eq!((&s["credits"], &s["audit_credits"]), (&json!(7), &json!(0)));

    // A range outside the credits, or an unknown basis, is no course.
    for (body, field) in [
        (json!({"min_credits": 4}), "min_credits"),
        (json!({"max_credits": 2}), "max_credits"),
        (json!({"max_credits": 13}), "max_credits"),
        (json!({"grading_bases": []}), "grading_bases"),
        (
            json!({"grading_bases": ["letter", "letter"]}),
            "grading_bases",
        ),
        (json!({"grading_bases": ["honors"]}), "grading_bases"),
    ] {
        let mut course = json!({"code": "IS401", "title": "Study", "credits": 3});
        for (k, v) in body.as_object().unwrap() {
            course[k] = v.clone();
        }
        let r = app
            .post("/api/v1/courses", Some(&app.admin_token), course)
            .await;
        let problem = expect_problem(
            "POST /courses",
            r,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{problem}"
        );
    }
    verified(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audited_credits_count_toward_no_limit_and_changes_are_checked_again() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    course(&app, "MATH300", 4, (2, 4), &["letter", "pass_fail"]).await;
    course(&app, "ART200", 4, (4, 4), &["letter", "audit"]).await;
    let math = app.section(term, "MATH300", "01", 10, 0, json!([])).await;
    let art = app.section(term, "ART200", "01", 10, 0, json!([])).await;
    let (student, token) = app.student().await;
    limit(&app, student, 6).await;

    assert_eq!(app.enroll(&token, math).await.0, StatusCode::CREATED);
    // Graded, ART200 would make 8 credits of 6; audited it counts none.
    let (st, answer) = app.enroll(&token, art).await;
    assert_problem(
        st,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "credit_limit_exceeded",
    );
    let (st, answer) = enroll_with(&app, &token, art, json!({"grading_basis": "audit"})).await;
    assert_eq!(st, StatusCode::CREATED, "{answer}");
    let s = schedule(&app, &token).await;
    assert_eq!(
        (&s["credits"], &s["audit_credits"]),
        (&json!(4), &json!(4)),
        "{s}"
    );
    assert_eq!(entry(&s, "enrolled", art)["grading_basis"], "audit");

    // Back to a letter grade: over the limit again, refused, and nothing changes.
    let (st, answer) = change(&app, &token, art, json!({"grading_basis": "letter"})).await;
    assert_problem(
        st,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "credit_limit_exceeded",
    );
    assert_eq!(stored(&app, student, art).await, Some((4, "audit".into())));
    // Out of the course's range or bases.
    let (st, answer) = change(&app, &token, math, json!({"credits": 1})).await;
    assert_problem(
        st,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "credits_out_of_range",
    );
    let (st, answer) = change(&app, &token, math, json!({"grading_basis": "audit"})).await;
    assert_problem(
        st,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "grading_basis_not_allowed",
    );
    // MATH300 for 2 credits pass/fail frees room for ART200 by letter: 2 + 4 = 6.
    let (st, answer) = change(
        &app,
        &token,
        math,
        json!({"credits": 2, "grading_basis": "pass_fail"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{answer}");
    assert_eq!(
        (
            &answer["credits"],
            &answer["grading_basis"],
            &answer["changed"]
        ),
        (&json!(2), &json!("pass_fail"), &json!(true))
    );
    let (st, answer) = change(&app, &token, art, json!({"grading_basis": "letter"})).await;
    assert_eq!(st, StatusCode::OK, "{answer}");
    // The same options again change nothing and record no event.
    let (st, answer) = change(&app, &token, art, json!({"grading_basis": "letter"})).await;
    assert_eq!((st, &answer["changed"]), (StatusCode::OK, &json!(false)));
    let s = schedule(&app, &token).await;
    assert_eq!(
        (&s["credits"], &s["audit_credits"]),
        (&json!(6), &json!(0)),
        "{s}"
    );
    assert_eq!(entry(&s, "enrolled", math)["grading_basis"], "pass_fail");

    // One event per change, in the outbox with the options.
    let events: Vec<Value> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE routing_key = 'enrollment.options_changed' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["section_id"], math.to_string());
    assert_eq!(events[0]["student_id"], student.to_string());
    assert_eq!(
        (&events[0]["credits"], &events[0]["grading_basis"]),
        (&json!(2), &json!("pass_fail"))
    );
    assert_eq!(events[1]["type"], "enrollment.options_changed");
    assert_eq!(events[1]["grading_basis"], "letter");

    // No place, no change; past the term's drop_by, none either.
    let other = app.section(term, "MATH300", "02", 10, 0, json!([])).await;
    let (st, answer) = change(&app, &token, other, json!({"credits": 3})).await;
    assert_problem(st, &answer, StatusCode::NOT_FOUND, "not_enrolled");
    let hours = |h: i64| Utc::now() + TimeDelta::hours(h);
    let body = json!({"add_by": hours(-2), "drop_by": hours(-1), "withdraw_by": hours(1)});
    let path = format!("/api/v1/terms/{term}/deadlines");
    let r = app
        .request(Method::PUT, &path, Some(&app.admin_token))
        .json(&body);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::OK);
    let (st, answer) = change(&app, &token, math, json!({"credits": 3})).await;
    assert_problem(
        st,
        &answer,
        StatusCode::FORBIDDEN,
        "options_deadline_passed",
    );
    assert_eq!(
        stored(&app, student, math).await,
        Some((2, "pass_fail".into()))
    );
    verified(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_stay_with_the_place_through_a_promotion_and_a_swap() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    course(&app, "IS400", 3, (1, 6), &["letter", "pass_fail"]).await;
    let first = app.section(term, "IS400", "01", 1, 5, json!([])).await;
    let second = app.section(term, "IS400", "02", 5, 0, json!([])).await;
    let (_, holder) = app.student().await;
    let (student, token) = app.student().await;
    assert_eq!(app.enroll(&holder, first).await.0, StatusCode::CREATED);

    // Waitlisted with 5 credits pass/fail: the options are on the row before the place.
    let body = json!({"credits": 5, "grading_basis": "pass_fail"});
    let (st, answer) = enroll_with(&app, &token, first, body).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(
        stored(&app, student, first).await,
        Some((5, "pass_fail".into()))
    );
    let s = schedule(&app, &token).await;
    assert_eq!(entry(&s, "waitlisted", first)["credits"], 5, "{s}");
    // A waitlist place's options may change too.
    let (st, answer) = change(&app, &token, first, json!({"credits": 6})).await;
    assert_eq!(st, StatusCode::OK, "{answer}");

    // The holder drops: the promoted seat keeps the options.
    assert_eq!(app.drop_section(&holder, first).await.0, StatusCode::OK);
    let s = schedule(&app, &token).await;
    let seat = entry(&s, "enrolled", first);
    assert_eq!(
        (&seat["credits"], &seat["grading_basis"]),
        (&json!(6), &json!("pass_fail")),
        "{s}"
    );
    assert_eq!(s["credits"], 6);

    // A swap to another section of the course keeps them as well.
    let (st, answer) = app.swap(&token, first, second).await;
    assert_eq!(st, StatusCode::OK, "{answer}");
    assert_eq!(
        stored(&app, student, second).await,
        Some((6, "pass_fail".into()))
    );
    let s = schedule(&app, &token).await;
    let seat = entry(&s, "enrolled", second);
    assert_eq!(
        (&seat["credits"], &seat["grading_basis"]),
        (&json!(6), &json!("pass_fail")),
        "{s}"
    );
    assert_eq!(s["credits"], 6);
    verified(&app).await;
}

/// POST `body` to the import endpoint; status and report.
async fn import(app: &TestApp, body: Value) -> (StatusCode, Value) {
    answer(
        app.post("/api/v1/imports", Some(&app.admin_token), body)
            .await,
    )
    .await
}

/// The stored range and bases of course `code`.
async fn grading_of(app: &TestApp, code: &str) -> (i16, i16, i16, Vec<String>) {
    sqlx::query_as(
        "SELECT credits, min_credits, max_credits, grading_bases FROM courses WHERE code = $1",
    )
    .bind(code)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_takes_credit_ranges_and_grading_bases() {
    let app = TestApp::spawn().await;
    let courses = json!({"courses": [
        {"code": "IS400", "title": "Study", "credits": 3, "min_credits": 1, "max_credits": 6,
         "grading_bases": "pass_fail;letter"},
        {"code": "CS101", "title": "Intro", "credits": 3}
    ]});
    let (st, report) = import(&app, courses.clone()).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!(
        grading_of(&app, "IS400").await,
        (3, 1, 6, vec!["letter".into(), "pass_fail".into()])
    );
    assert_eq!(
        grading_of(&app, "CS101").await,
        (3, 3, 3, vec!["letter".into()])
    );
    // The same file again changes nothing.
    let (_, report) = import(&app, courses).await;
    assert_eq!(report["changed"], 0, "{report}");

    // A fixed course's range follows its credits; a range moves with what is given.
    let (st, report) = import(
        &app,
        json!({"courses": [
            {"code": "CS101", "credits": 4, "grading_bases": ["letter", "audit"]},
            {"code": "IS400", "max_credits": 4}
        ]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!(
        grading_of(&app, "CS101").await,
        (4, 4, 4, vec!["letter".into(), "audit".into()])
    );
    assert_eq!(grading_of(&app, "IS400").await.2, 4);
    let fields: Vec<&Value> = report["files"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["fields"].as_array().unwrap())
        .collect();
    assert!(
        fields.iter().any(|f| f.to_string().contains("max_credits")),
        "{report}"
    );

    // A range that leaves out the credits, or an unknown basis, fails its row (and with
    // it the file).
    for (course, field) in [
        (json!({"code": "IS400", "min_credits": 5}), "min_credits"),
        (
            json!({"code": "MATH300", "title": "M", "credits": 3, "max_credits": 2}),
            "max_credits",
        ),
        (
            json!({"code": "IS400", "grading_bases": ["honors"]}),
            "grading_bases",
        ),
    ] {
        let (st, report) = import(&app, json!({"courses": [course]})).await;
        assert_eq!(st, StatusCode::OK, "{report}");
        let errors = &report["files"][0]["errors"];
        assert_eq!(errors[0]["field"], field, "{report}");
        assert_eq!(report["failed"], 1, "{report}");
    }
    assert_eq!(
        grading_of(&app, "IS400").await,
        (3, 1, 4, vec!["letter".into(), "pass_fail".into()])
    );
}

/// A cart call with `body` (none: no body); (status, body).
async fn cart(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = app
        .request(
            method,
            &format!("/api/v1/students/me/cart{path}"),
            Some(token),
        )
        .header("Idempotency-Key", format!("cart-{}", Uuid::new_v4()));
    if let Some(b) = body {
        r = r.json(&b);
    }
    answer(r.send().await.expect("cart")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cart_items_and_linked_sets_carry_their_options() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    course(&app, "IS400", 3, (1, 6), &["letter", "pass_fail"]).await;
    app.admin_post(
        "/api/v1/courses",
        json!({"code": "BIOL1406", "title": "Biology", "credits": 4, "components": ["lecture", "lab"],
               "grading_bases": ["letter", "audit"]}),
    )
    .await;
    let study = app.section(term, "IS400", "01", 5, 0, json!([])).await;
    let lec = app.section(term, "BIOL1406", "001", 5, 0, json!([])).await;
    let lab = app
        .admin_post(
            "/api/v1/sections",
            json!({"term_id": term, "course_code": "BIOL1406", "section_code": "L01",
                   "capacity": 5, "waitlist_capacity": 0, "component": "lab", "links": [lec]}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .parse::<Uuid>()
        .unwrap();
    let (student, token) = app.student().await;
    limit(&app, student, 4).await;

    // Staging checks the options against the course at once; a good choice is shown.
    let (st, refused) = cart(
        &app,
        &token,
        Method::PUT,
        &format!("/{study}"),
        Some(json!({"credits": 9})),
    )
    .await;
    assert_problem(
        st,
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "credits_out_of_range",
    );
    let body = json!({"credits": 2, "grading_basis": "pass_fail"});
    let (st, staged) = cart(&app, &token, Method::PUT, &format!("/{study}"), Some(body)).await;
    assert_eq!(st, StatusCode::OK, "{staged}");
    assert_eq!(
        staged["items"][0]["options"],
        json!({"credits": 2, "grading_basis": "pass_fail"})
    );
    // The lecture staged audited: its lab, staged plainly, is taken alike.
    let (st, _) = cart(
        &app,
        &token,
        Method::PUT,
        &format!("/{lec}"),
        Some(json!({"grading_basis": "audit"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, staged) = cart(&app, &token, Method::PUT, &format!("/{lab}"), None).await;
    assert_eq!(st, StatusCode::OK, "{staged}");

    // 2 credits of IS400 and an audited 4-credit BIOL1406 fit a limit of 4.
    let (st, preview) = cart(&app, &token, Method::POST, "/preview", None).await;
    assert_eq!(st, StatusCode::OK, "{preview}");
    for item in preview["items"].as_array().unwrap() {
        assert_eq!(item["verdict"], "would_enroll", "{preview}");
    }
    let (st, submitted) = cart(&app, &token, Method::POST, "/submit", None).await;
    assert_eq!(st, StatusCode::OK, "{submitted}");
    assert_eq!(
        stored(&app, student, study).await,
        Some((2, "pass_fail".into()))
    );
    assert_eq!(stored(&app, student, lec).await, Some((4, "audit".into())));
    assert_eq!(stored(&app, student, lab).await, Some((4, "audit".into())));
    let s = schedule(&app, &token).await;
    assert_eq!(
        (&s["credits"], &s["audit_credits"]),
        (&json!(2), &json!(4)),
        "{s}"
    );

    // A linked set asked for by letter would be 6 credits of 4: refused, nothing taken.
    let (other, other_token) = app.student().await;
    limit(&app, other, 3).await;
    let set = |basis: &str| json!({"sections": [lec, lab], "grading_basis": basis});
    let r = app.request(Method::POST, "/api/v1/enrollments/sets", Some(&other_token));
    let (st, got) = answer(r.json(&set("letter")).send().await.unwrap()).await;
    assert_problem(
        st,
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "credit_limit_exceeded",
    );
    let r = app.request(Method::POST, "/api/v1/enrollments/sets", Some(&other_token));
    let (st, got) = answer(r.json(&set("pass_fail")).send().await.unwrap()).await;
    assert_problem(
        st,
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "grading_basis_not_allowed",
    );
    let r = app.request(Method::POST, "/api/v1/enrollments/sets", Some(&other_token));
    let (st, got) = answer(r.json(&set("audit")).send().await.unwrap()).await;
    assert_eq!(st, StatusCode::CREATED, "{got}");
    assert_eq!(stored(&app, other, lab).await, Some((4, "audit".into())));
    verified(&app).await;
}

/// PATCH course `code`'s credit range or bases as the admin; (status, body).
async fn patch_course(app: &TestApp, code: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/api/v1/courses/{code}");
    let r = app
        .request(Method::PATCH, &path, Some(&app.admin_token))
        .json(&body);
    answer(r.send().await.expect("request")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_changes_a_course_range_but_not_under_students_choices() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    course(&app, "IS400", 3, (1, 4), &["letter", "pass_fail"]).await;
    let first = app.section(term, "IS400", "01", 10, 0, json!([])).await;
    let (_, token) = app.student().await;
    let body = json!({"credits": 4, "grading_basis": "pass_fail"});
    assert_eq!(
        enroll_with(&app, &token, first, body).await.0,
        StatusCode::CREATED
    );

    // A narrower range, or no pass/fail, would strand the student's choice.
    for body in [
        json!({"max_credits": 3}),
        json!({"grading_bases": ["letter"]}),
    ] {
        let (st, refused) = patch_course(&app, "IS400", body).await;
        assert_problem(st, &refused, StatusCode::CONFLICT, "options_in_use");
    }
    // Wider: the rule facts see it at once (an enroll for 6 credits passes).
    let (st, changed) = patch_course(
        &app,
        "is-400",
        json!({"max_credits": 6, "grading_bases": ["audit", "letter", "pass_fail"]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{changed}");
    assert_eq!(
        (
            &changed["min_credits"],
            &changed["max_credits"],
            &changed["grading_bases"]
        ),
        (
            &json!(1),
            &json!(6),
            &json!(["letter", "pass_fail", "audit"])
        )
    );
    let second = app.section(term, "IS400", "02", 10, 0, json!([])).await;
    let view = app.section_view(first).await;
    assert_eq!(view["max_credits"], 6, "{view}");
    let (_, other) = app.student().await;
    let (st, got) = enroll_with(&app, &other, second, json!({"credits": 6})).await;
    assert_eq!(st, StatusCode::CREATED, "{got}");
    let (st, got) = change(&app, &token, first, json!({"credits": 5})).await;
    assert_eq!(st, StatusCode::OK, "{got}");

    let (st, refused) = patch_course(&app, "NONE100", json!({"max_credits": 6})).await;
    assert_problem(st, &refused, StatusCode::NOT_FOUND, "course_not_found");
    let (st, refused) = patch_course(&app, "IS400", json!({"min_credits": 4})).await;
    assert_problem(
        st,
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    let (st, refused) = patch_course(&app, "IS400", json!({"credits": 4})).await;
    assert_problem(st, &refused, StatusCode::BAD_REQUEST, "invalid_body");
    verified(&app).await;
}
