//! Login and role checks: wrong passwords, missing/forged/expired tokens, students on
//! admin routes, staff on student routes.

use crate::helpers::*;
use jsonwebtoken::{EncodingKey, Header, encode};
use registrar::resources::Role;
use registrar::service::auth::{Claims, TokenKeys};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

/// A student token signed with the server's secret that expired an hour ago, far past the
/// 5 s leeway the server allows for clock skew (so no test has to wait out the leeway).
fn expired_token(student: Uuid) -> String {
    let now = chrono::Utc::now().timestamp() as u64;
    let claims = Claims {
        sub: student,
        role: Role::Student,
        exp: now - 3600,
        iat: now - 7200,
        iss: registrar::service::auth::ISSUER.into(),
        aud: registrar::service::auth::AUDIENCE.into(),
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn login_issues_a_working_token_and_refuses_bad_credentials() {
    let app = TestApp::spawn().await;
    let created = app
        .admin_post(
            "/api/v1/students",
            json!({"username": "alice", "password": "correct horse", "standing": "junior"}),
        )
        .await;
    assert_eq!(created["username"], "alice");
    assert!(created.get("password_hash").is_none());

    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "alice", "password": "correct horse"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let token: serde_json::Value = r.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    let t = token["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/students/me/schedule", Some(t))
            .await
            .status(),
        StatusCode::OK
    );

    for (user, pass) in [("alice", "wrong password"), ("nobody", "correct horse")] {
        let body = json!({"username": user, "password": pass});
        app.post_expect_problem(
            "/api/v1/auth/login",
            None,
            body,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn tokens_and_roles_are_enforced() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(5, 5, json!([])).await;
    let (sid, tok) = app.student().await;
    let enroll = format!("/api/v1/sections/{section}/enrollments");

    // Missing, malformed, forged and expired tokens.
    let missing = app.post(&enroll, None, json!({})).await;
    expect_problem(
        "no token",
        missing,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let forged = TokenKeys::new(b"other secret", 60)
        .issue(sid, Role::Admin)
        .0;
    let expired = expired_token(sid);
    for bad in ["garbage", forged.as_str(), expired.as_str()] {
        let r = app.post(&enroll, Some(bad), json!({})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app
        .request(Method::POST, &enroll, None)
        .header("Authorization", format!("Token {tok}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A student cannot reach admin routes, nor create accounts for others.
    app.post_expect_problem(
        "/api/v1/terms",
        Some(&tok),
        json!({"code": "X1", "name": "x"}),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let r = app
        .post(
            &format!("/api/v1/students/{sid}/holds"),
            Some(&tok),
            json!({"reason": "self"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&format!("/api/v1/students/{sid}"), Some(&tok))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Staff cannot enroll (a token acts only for its own subject; admins are not students).
    let (st, b) = app.enroll(&app.admin_token, section).await;
    assert_problem(st, &b, StatusCode::FORBIDDEN, "forbidden");
    let op = app.token(Uuid::new_v4(), Role::Operator);
    assert_eq!(
        app.post(
            "/api/v1/courses",
            Some(&op),
            json!({"code": "CS999", "title": "x", "credits": 3})
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );

    // The student's enrollment is theirs: the route has no student id to forge.
    assert_eq!(app.enroll(&tok, section).await.0, StatusCode::CREATED);
    let other = app.student().await;
    let (st, b) = app.drop_section(&other.1, section).await;
    assert_problem(st, &b, StatusCode::NOT_FOUND, "not_enrolled");
    assert_eq!(app.rows(section).await.len(), 1);
    app.stop().await;
}
