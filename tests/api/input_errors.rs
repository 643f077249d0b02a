//! Bad input of every kind gets a 4xx problem+json with a stable code, never a 500 or a
//! dropped connection (one table of cases, each named, walked by one test); plus the
//! operational endpoints and the OpenAPI document.

use crate::helpers::*;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// Who sends a request.
#[derive(Clone, Copy)]
enum Caller {
    Anonymous,
    Admin,
    Student,
}
use Caller::*;

/// What a request carries besides its method and path.
enum Payload {
    Nothing,
    Json(Value),
    /// Text declared as `application/json`.
    JsonText(&'static str),
    /// Text with no content type at all.
    Untyped(&'static str),
    /// No body, one header.
    Header(&'static str, &'static str),
}
use Payload::*;

impl Payload {
    fn add_to(self, req: RequestBuilder) -> RequestBuilder {
        match self {
            Nothing => req,
            Json(v) => req.json(&v),
            JsonText(t) => req.header("content-type", "application/json").body(t),
            Untyped(t) => req.body(t),
            Header(name, value) => req.header(name, value),
        }
    }
}

/// One bad request: what it is, how it is sent, and the answer it must get. Paths may name
/// `{term}`, `{section}` (a section of that term) and `{unknown}` (an id nothing has).
type Case = (
    &'static str,
    Method,
    &'static str,
    Caller,
    Payload,
    u16,
    &'static str,
);

#[rustfmt::skip]
fn cases(term: Uuid, unknown: Uuid) -> Vec<Case> {
    let huge = "x".repeat(1024 * 1024);
    vec![
        // Bodies.
        ("body is not JSON", Method::POST, "/api/v1/courses", Admin, JsonText("{not json"), 400, "invalid_body"),
        ("a number field holds text", Method::POST, "/api/v1/courses", Admin, JsonText(r#"{"code":"CS101","title":"x","credits":"three"}"#), 400, "invalid_body"),
        ("an unknown field", Method::POST, "/api/v1/courses", Admin, JsonText(r#"{"code":"CS101","title":"x","credits":3,"extra":1}"#), 400, "invalid_body"),
        ("no content type", Method::POST, "/api/v1/courses", Admin, Untyped("{}"), 400, "invalid_body"),
        // A form feed is ASCII whitespace but not JSON's: an optional body of one is a bad body, not none (found by the fuzzer).
        ("an optional body of a form feed", Method::PUT, "/api/v1/students/me/cart/{section}", Student, JsonText("\u{c}"), 400, "invalid_body"),
        ("a course code not in capitals", Method::POST, "/api/v1/courses", Admin, Json(json!({"code": "lowercase1", "title": "x", "credits": 3})), 422, "invalid_field"),
        ("credits out of range", Method::POST, "/api/v1/courses", Admin, Json(json!({"code": "CS101", "title": "x", "credits": 99})), 422, "invalid_field"),
        // A list the document types without null (found by the fuzzer).
        ("grading bases of null", Method::PATCH, "/api/v1/courses/CS101", Admin, Json(json!({"max_credits": 4, "grading_bases": null})), 400, "invalid_body"),
        ("an oversized body", Method::POST, "/api/v1/courses", Admin, Json(json!({"code": "CS101", "title": huge, "credits": 3})), 413, "payload_too_large"),
        // Control characters in text (a NUL used to reach PostgreSQL and fail as a 500).
        ("a NUL in a hold's reason", Method::POST, "/api/v1/students/{unknown}/holds", Admin, Json(json!({"reason": "late\u{0}fees"})), 422, "invalid_field"),
        ("a control character in a term's name", Method::POST, "/api/v1/terms", Admin, Json(json!({"code": "2031FA", "name": "Fall\u{7}2031"})), 422, "invalid_field"),
        ("a NUL in a course title", Method::POST, "/api/v1/courses", Admin, Json(json!({"code": "CS199", "title": "\u{0}", "credits": 3})), 422, "invalid_field"),
        ("a NUL in a login name", Method::POST, "/api/v1/auth/login", Anonymous, Json(json!({"username": "s\u{0}1", "password": "demo"})), 401, "unauthenticated"),
        ("a meeting ending before it starts", Method::POST, "/api/v1/sections", Admin, Json(json!({"term_id": term, "course_code": "CS101", "section_code": "02", "capacity": 5, "meetings": [{"day": "mon", "start": "10:00", "end": "09:00"}]})), 422, "invalid_field"),
        // Bad and unknown ids, and references to them.
        ("a section id that is not a UUID", Method::GET, "/api/v1/sections/not-a-uuid", Anonymous, Nothing, 400, "invalid_id"),
        ("enroll with an id that is not a UUID", Method::POST, "/api/v1/sections/1234/enrollments", Student, Json(json!({})), 400, "invalid_id"),
        ("an unknown section", Method::GET, "/api/v1/sections/{unknown}", Anonymous, Nothing, 404, "section_not_found"),
        ("enroll in an unknown section", Method::POST, "/api/v1/sections/{unknown}/enrollments", Student, Json(json!({})), 404, "section_not_found"),
        ("the sections of an unknown term", Method::GET, "/api/v1/terms/{unknown}/sections", Anonymous, Nothing, 404, "term_not_found"),
        ("swap out of an id that is not a UUID", Method::POST, "/api/v1/enrollments/swap", Student, Json(json!({"drop": "x", "add": unknown})), 400, "invalid_id"),
        ("a section of an unknown term", Method::POST, "/api/v1/sections", Admin, Json(json!({"term_id": unknown, "course_code": "CS101", "section_code": "01", "capacity": 5})), 422, "unknown_reference"),
        ("a section that exists already", Method::POST, "/api/v1/sections", Admin, Json(json!({"term_id": term, "course_code": "CS101", "section_code": "01", "capacity": 5})), 409, "already_exists"),
        // Query strings, routes, methods, headers.
        ("a page of zero", Method::GET, "/api/v1/terms/{term}/sections?limit=0", Anonymous, Nothing, 400, "invalid_query"),
        ("a page size that is not a number", Method::GET, "/api/v1/terms/{term}/sections?limit=abc", Anonymous, Nothing, 400, "invalid_query"),
        ("an unknown route", Method::GET, "/api/v1/nothing-here", Anonymous, Nothing, 404, "not_found"),
        ("a method the route lacks", Method::PUT, "/api/v1/terms", Anonymous, Nothing, 405, "method_not_allowed"),
        ("an empty idempotency key", Method::POST, "/api/v1/sections/{section}/enrollments", Student, Header("Idempotency-Key", ""), 400, "invalid_idempotency_key"),
    ]
}

#[tokio::test]
async fn malformed_input_gets_clear_problems() {
    let app = TestApp::spawn().await;
    let (term, section) = app.open_cs101(5, 0, json!([])).await;
    let (_, student) = app.student().await;
    let unknown = Uuid::new_v4();
    for (name, method, path, caller, payload, status, code) in cases(term, unknown) {
        let path = path
            .replace("{term}", &term.to_string())
            .replace("{section}", &section.to_string())
            .replace("{unknown}", &unknown.to_string());
        let token = match caller {
            Anonymous => None,
            Admin => Some(app.admin_token.as_str()),
            Student => Some(student.as_str()),
        };
        let req = payload.add_to(app.request(method.clone(), &path, token));
        let r = req.send().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let status = StatusCode::from_u16(status).unwrap();
        expect_problem(&format!("{name} ({method} {path})"), r, status, code).await;
    }
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
