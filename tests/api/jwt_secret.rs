//! The token secret and claims: a node refuses to start with a missing, short or shipped
//! example `REGISTRAR_JWT_SECRET` (unless in development mode), and a token signed with
//! the right secret but meant for another issuer or audience is refused.

use crate::helpers::*;
use jsonwebtoken::{EncodingKey, Header, encode};
use registrar::config::Settings;
use registrar::startup::Application;
use reqwest::StatusCode;
use serde_json::json;

/// Build a node with `secret` and `dev_mode`; the startup error, if any, as text.
async fn build(database: &str, secret: &str, dev_mode: bool) -> Result<(), String> {
    let mut settings: Settings = test_settings(database);
    settings.http.jwt_secret = secret.into();
    settings.http.dev_mode = dev_mode;
    Application::build(settings)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_node_refuses_a_missing_short_or_shipped_secret_unless_in_dev_mode() {
    let database = fresh_database().await;
    let refused = [
        "",
        "x",
        "31-bytes-is-one-short-of-enough",
        // The examples this repository ships (deploy files, scripts, tests).
        "change-me-to-32-or-more-random-bytes-0123456789abcdef",
        "compose-dev-jwt-secret-do-not-use-in-production",
        "registrar-local-dev-jwt-secret-do-not-use-in-production",
        "test-secret",
    ];
    for secret in refused {
        let err = build(&database, secret, false)
            .await
            .expect_err(&format!("secret {secret:?} accepted"));
        assert!(err.contains("REGISTRAR_JWT_SECRET"), "{secret:?}: {err}");
    }
    // 32 bytes of one's own are enough.
    build(&database, &"ab".repeat(16), false)
        .await
        .expect("a 32-byte secret");
    // Development mode accepts a missing secret (one is generated) and a weak one.
    build(&database, "", true)
        .await
        .expect("dev mode, no secret");
    build(&database, "x", true)
        .await
        .expect("dev mode, weak secret");
}

#[tokio::test]
async fn tokens_for_another_issuer_or_audience_are_refused() {
    let app = TestApp::spawn().await;
    let (sid, _) = app.student().await;
    let now = chrono::Utc::now().timestamp();
    let token = |iss: Option<&str>, aud: Option<&str>| {
        let mut claims = json!({"sub": sid, "role": "student", "iat": now, "exp": now + 600});
        if let Some(iss) = iss {
            claims["iss"] = json!(iss);
        }
        if let Some(aud) = aud {
            claims["aud"] = json!(aud);
        }
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    let schedule = "/api/v1/students/me/schedule";
    let good = token(Some("registrar"), Some("registrar-api"));
    assert_eq!(
        app.get(schedule, Some(&good)).await.status(),
        StatusCode::OK
    );
    // The login route's own tokens carry them too.
    assert_eq!(
        app.get(
            schedule,
            Some(&app.token(sid, registrar::resources::Role::Student))
        )
        .await
        .status(),
        StatusCode::OK
    );
    let bad = [
        (
            "wrong audience",
            token(Some("registrar"), Some("billing-api")),
        ),
        (
            "wrong issuer",
            token(Some("someone-else"), Some("registrar-api")),
        ),
        ("no audience", token(Some("registrar"), None)),
        ("no issuer", token(None, Some("registrar-api"))),
        (
            "wrong issuer, no audience",
            token(Some("someone-else"), None),
        ),
        ("neither", token(None, None)),
    ];
    for (what, t) in bad {
        let r = app.get(schedule, Some(&t)).await;
        expect_problem(what, r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    app.stop().await;
}
