//! Bad input of every kind gets a 4xx problem+json with a stable code, never a 500 or a
//! dropped connection; plus the operational endpoints and the OpenAPI document.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn problem(r: reqwest::Response) -> (StatusCode, Value) {
    let st = r.status();
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "status {st}"
    );
    (st, r.json().await.unwrap())
}

#[tokio::test]
async fn malformed_input_gets_clear_problems() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token.clone();
    let (_, tok) = app.student().await;
    let post_raw = |path: &str, body: &'static str| {
        app.client
            .post(app.url(path))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let (st, b) = problem(post_raw("/api/v1/courses", "{not json").await.unwrap()).await;
    assert_problem(st, &b, StatusCode::BAD_REQUEST, "invalid_body");
    let (st, b) = problem(
        post_raw(
            "/api/v1/courses",
            r#"{"code":"CS101","title":"x","credits":"three"}"#,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_problem(st, &b, StatusCode::BAD_REQUEST, "invalid_body");
    let (st, b) = problem(
        post_raw(
            "/api/v1/courses",
            r#"{"code":"CS101","title":"x","credits":3,"extra":1}"#,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_problem(st, &b, StatusCode::BAD_REQUEST, "invalid_body");
    let (st, b) = problem(
        app.client
            .post(app.url("/api/v1/courses"))
            .bearer_auth(&admin)
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(st, &b, StatusCode::BAD_REQUEST, "invalid_body");
    let (st, b) = problem(
        app.post(
            "/api/v1/courses",
            Some(&admin),
            json!({"code": "lowercase1", "title": "x", "credits": 3}),
        )
        .await,
    )
    .await;
    assert_problem(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let (st, b) = problem(
        app.post(
            "/api/v1/courses",
            Some(&admin),
            json!({"code": "CS101", "title": "x", "credits": 99}),
        )
        .await,
    )
    .await;
    assert_problem(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");

    // Oversized body.
    let huge = "x".repeat(1024 * 1024);
    let (st, b) = problem(
        app.post(
            "/api/v1/courses",
            Some(&admin),
            json!({"code": "CS101", "title": huge, "credits": 3}),
        )
        .await,
    )
    .await;
    assert_problem(st, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // Bad and unknown ids.
    let (st, b) = problem(app.get("/api/v1/sections/not-a-uuid", None).await).await;
    assert_problem(st, &b, StatusCode::BAD_REQUEST, "invalid_id");
    let (st, b) = problem(
        app.post("/api/v1/sections/1234/enrollments", Some(&tok), json!({}))
            .await,
    )
    .await;
    assert_problem(st, &b, StatusCode::BAD_REQUEST, "invalid_id");
    let unknown = uuid::Uuid::new_v4();
    let (st, b) = problem(app.get(&format!("/api/v1/sections/{unknown}"), None).await).await;
    assert_problem(st, &b, StatusCode::NOT_FOUND, "section_not_found");
    let (st, b) = problem(
        app.post(
            &format!("/api/v1/sections/{unknown}/enrollments"),
            Some(&tok),
            json!({}),
        )
        .await,
    )
    .await;
    assert_problem(st, &b, StatusCode::NOT_FOUND, "section_not_found");
    let (st, b) = problem(
        app.get(&format!("/api/v1/terms/{unknown}/sections"), None)
            .await,
    )
    .await;
    assert_problem(st, &b, StatusCode::NOT_FOUND, "term_not_found");
    let (st, b) = problem(
        app.post(
            "/api/v1/enrollments/swap",
            Some(&tok),
            json!({"drop": "x", "add": unknown}),
        )
        .await,
    )
    .await;
    assert_problem(st, &b, StatusCode::BAD_REQUEST, "invalid_id");
    let (st, b) = problem(app.post("/api/v1/sections", Some(&admin), json!({"term_id": unknown, "course_code": "CS101", "section_code": "01", "capacity": 5})).await).await;
    assert_problem(
        st,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_reference",
    );

    // Query strings, routes, methods, headers.
    let term = app.open_term().await;
    let (st, b) = problem(
        app.get(&format!("/api/v1/terms/{term}/sections?limit=0"), None)
            .await,
    )
    .await;
    assert_problem(st, &b, StatusCode::BAD_REQUEST, "invalid_query");
    let (st, b) = problem(
        app.get(&format!("/api/v1/terms/{term}/sections?limit=abc"), None)
            .await,
    )
    .await;
    assert_problem(st, &b, StatusCode::BAD_REQUEST, "invalid_query");
    let (st, b) = problem(app.get("/api/v1/nothing-here", None).await).await;
    assert_problem(st, &b, StatusCode::NOT_FOUND, "not_found");
    let (st, b) = problem(
        app.client
            .put(app.url("/api/v1/terms"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(st, &b, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    app.course("CS101", 3, &[]).await;
    let section = app.section(term, "CS101", "01", 5, 0, json!([])).await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/sections/{section}/enrollments")))
        .bearer_auth(&tok)
        .header("Idempotency-Key", "")
        .send()
        .await
        .unwrap();
    let (st, b) = problem(r).await;
    assert_problem(st, &b, StatusCode::BAD_REQUEST, "invalid_idempotency_key");
    let (st, b) = problem(app.post("/api/v1/sections", Some(&admin), json!({"term_id": term, "course_code": "CS101", "section_code": "02", "capacity": 5, "meetings": [{"day": "mon", "start": "10:00", "end": "09:00"}]})).await).await;
    assert_problem(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let (st, b) = problem(
        app.post(
            "/api/v1/sections",
            Some(&admin),
            json!({"term_id": term, "course_code": "CS101", "section_code": "01", "capacity": 5}),
        )
        .await,
    )
    .await;
    assert_problem(st, &b, StatusCode::CONFLICT, "already_exists");
    app.stop().await;
}

#[tokio::test]
async fn ops_endpoints_and_openapi() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz", None).await.text().await.unwrap(), "ok");
    let ready: Value = app.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["shards_owned"], 16);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("registrar_batches_committed_total 0"),
        "{metrics}"
    );
    let doc: Value = app
        .get("/api/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/auth/login",
        "/api/v1/sections/{section_id}/enrollments",
        "/api/v1/enrollments/swap",
        "/api/v1/sections/{section_id}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    app.stop().await;
}
