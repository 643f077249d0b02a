//! Course codes as real catalogs write them (`MATH-2413`, `math 2413`, `cs101`) name one
//! course, stored and shown in the canonical form (`MATH2413`), wherever they enter.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn common_forms_of_a_course_code_name_one_course() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    let cs = app
        .admin_post(
            "/api/v1/courses",
            json!({"code": "cs 101", "title": "Intro", "credits": 3}),
        )
        .await;
    assert_eq!(cs["code"], "CS101");
    let math = app
        .admin_post(
            "/api/v1/courses",
            json!({"code": "MATH-2413", "title": "Calculus", "credits": 4, "prerequisites": ["Cs-101"]}),
        )
        .await;
    assert_eq!(math["code"], "MATH2413");
    assert_eq!(math["prerequisites"], json!(["CS101"]));
    app.post_expect_problem(
        "/api/v1/courses",
        Some(&app.admin_token),
        json!({"code": "math2413", "title": "Again", "credits": 4}),
        StatusCode::CONFLICT,
        "already_exists",
    )
    .await;

    let section = app
        .admin_post(
            "/api/v1/sections",
            json!({"term_id": term, "course_code": "math 2413", "section_code": "01", "capacity": 5}),
        )
        .await;
    assert_eq!(section["course_code"], "MATH2413");
    let section_id = section["id"].as_str().unwrap().to_string();
    for query in ["MATH2413", "math-2413", "Math%202413"] {
        let page = app
            .get_json(
                &format!("/api/v1/terms/{term}/sections?course={query}"),
                None,
            )
            .await;
        assert_eq!(
            page["items"][0]["id"],
            section_id.as_str(),
            "?course={query}"
        );
    }

    // A student whose completed course is written another way still meets the prerequisite.
    let created = app
        .admin_post(
            "/api/v1/students",
            json!({"username": "ana", "password": "password1", "standing": "senior", "completed_courses": ["cs-101"]}),
        )
        .await;
    assert_eq!(created["completed_courses"], json!(["CS101"]));
    let id = created["id"].as_str().unwrap().parse().unwrap();
    let token = app.token(id, registrar::resources::Role::Student);
    let section_id = section_id.parse().unwrap();
    let (status, body) = app.enroll(&token, section_id).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, other) = app.student().await;
    let (status, body) = app.enroll(&other, section_id).await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "prerequisites_not_met",
    );
    app.stop().await;
}

#[tokio::test]
async fn garbage_course_codes_are_refused() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    for code in [
        "C101", "CS 1O1", "CS--101", "CS 101 H", "101CS", "CS101HH", "",
    ] {
        app.post_expect_problem(
            "/api/v1/courses",
            Some(&app.admin_token),
            json!({"code": code, "title": "x", "credits": 3}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
        app.post_expect_problem(
            "/api/v1/sections",
            Some(&app.admin_token),
            json!({"term_id": term, "course_code": code, "section_code": "01", "capacity": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        )
        .await;
    }
    let r = app
        .get(
            &format!("/api/v1/terms/{term}/sections?course=CS--101"),
            None,
        )
        .await;
    expect_problem(
        "?course=CS--101",
        r,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    app.stop().await;
}
