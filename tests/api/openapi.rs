//! The OpenAPI document (`GET /api/v1/openapi.json`) against the server it describes: it
//! lists every route the routers mount and nothing they do not, declares the problem
//! answers every operation can give as `application/problem+json`, and the server accepts
//! what the document calls valid (deploy/local/fuzz.sh checks the rest with schemathesis).

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use uuid::Uuid;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every `(path, method)` mounted by a `.route(PATH, get(..).post(..))` call in
/// `src/http/*.rs`, read from the source so a new route cannot be forgotten here.
fn mounted_routes() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("src/http") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("source file");
        for (at, _) in source.match_indices(".route(") {
            let rest = &source[at + ".route(".len()..];
            let open = rest.find('"').expect("route path literal");
            let close = open + 1 + rest[open + 1..].find('"').expect("end of literal");
            let route = rest[open + 1..close].to_string();
            // The nodes' internal hop is not part of the public API, and the browser
            // pages (web.rs) are HTML, not API operations.
            if route.starts_with("/internal/") || path.ends_with("web.rs") {
                continue;
            }
            // The method routers: from the literal to the `)` closing `.route(`.
            let mut depth = 1;
            let mut end = close;
            for (i, c) in rest[close..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = close + i;
                    break;
                }
            }
            let args = &rest[close..end];
            for method in METHODS {
                let call = format!("{method}(");
                let named = args.match_indices(&call).any(|(i, _)| {
                    i == 0 || !args[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if named {
                    routes.insert((route.clone(), method.to_string()));
                }
            }
        }
    }
    assert!(routes.len() > 10, "found only {routes:?} in {dir}");
    routes
}

/// Every `(path, method)` of the document.
fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                routes.insert((path.clone(), method.to_string()));
            }
        }
    }
    routes
}

#[tokio::test]
async fn the_document_lists_every_route_and_only_routes() {
    let app = TestApp::spawn().await;
    let r = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.expect("the document is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented = documented_routes(&doc);
    let mounted = mounted_routes();
    let undocumented: Vec<_> = mounted.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    // And each documented operation reaches a handler: never the router's own 404/405.
    for (path, method) in &documented {
        let concrete = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    Uuid::new_v4().to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = app
            .request(method.clone(), &concrete, None)
            .send()
            .await
            .expect("request");
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED && body["code"] != "not_found",
            "{method} {path} is documented but not routed: {status} {body}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn every_problem_answer_is_declared_as_problem_json() {
    let app = TestApp::spawn().await;
    let doc = app.get_json("/api/v1/openapi.json", None).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let what = format!("{method} {path}");
            let responses = op["responses"].as_object().expect("responses");
            let declares = |status: &str| responses.contains_key(status);
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    // problem+json, and the `Problem` schema in no other type.
                    let content = response["content"].as_object().expect("content");
                    let problem = json!({"$ref": "#/components/schemas/Problem"});
                    assert_eq!(
                        content
                            .get("application/problem+json")
                            .map(|c| &c["schema"]),
                        Some(&problem),
                        "{what} {status}: {response}"
                    );
                    for (media_type, c) in content {
                        assert!(
                            media_type == "application/problem+json" || c["schema"] != problem,
                            "{what} {status}: a problem as {media_type}"
                        );
                    }
                }
            }
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            if secured {
                assert!(declares("401") && declares("403"), "{what}: 401/403");
            }
            if op.get("requestBody").is_some() {
                assert!(declares("400") && declares("413"), "{what}: 400/413");
            }
            if path.contains('{') {
                assert!(declares("400") && declares("404"), "{what}: 400/404");
            }
            assert!(declares("503"), "{what}: 503 (request time limit)");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn whole_numbers_written_with_a_fraction_are_accepted() {
    // JSON Schema's `integer` admits `60.0`; the server must too, and refuse `60.5`.
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(5, 0, json!([])).await;
    let path = format!("/api/v1/sections/{section}");
    let patch = |capacity: Value| {
        app.request(Method::PATCH, &path, Some(&app.admin_token))
            .json(&json!({ "capacity": capacity }))
            .send()
    };
    let (status, body) = answer(patch(json!(60.0)).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["capacity"], 60);
    let r = patch(json!(60.5)).await.unwrap();
    expect_problem("capacity 60.5", r, StatusCode::BAD_REQUEST, "invalid_body").await;
    let r = patch(json!(-1.0)).await.unwrap();
    expect_problem("capacity -1.0", r, StatusCode::BAD_REQUEST, "invalid_body").await;
    let course = json!({"code": "CS250", "title": "Systems", "credits": 4.0});
    let r = app
        .post("/api/v1/courses", Some(&app.admin_token), course)
        .await;
    let (status, body) = answer(r).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["credits"], 4);
    app.stop().await;
}
