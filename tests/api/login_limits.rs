//! Login under attack: failed logins are limited per username and per client address
//! (429 `rate_limited` with `Retry-After`) while successful ones never count, and a flood
//! of logins beyond the hashing bound is shed as 503 `overloaded` instead of queueing
//! argon2 work without end.

use crate::helpers::*;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Create an account through the API, so its password gets the real (account) hash.
async fn account(app: &TestApp, username: &str, password: &str) {
    app.admin_post(
        "/api/v1/students",
        json!({"username": username, "password": password, "standing": "junior"}),
    )
    .await;
}

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"username": username, "password": password}),
    )
    .await
}

/// Assert a 429 `rate_limited` answer with a positive `Retry-After`.
async fn expect_rate_limited(what: &str, r: reqwest::Response) {
    let retry_after: Option<u32> = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    expect_problem(what, r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(retry_after.is_some_and(|s| s >= 1), "{what}: Retry-After");
}

#[tokio::test]
async fn failed_logins_are_limited_per_username_while_others_still_log_in() {
    let app = TestApp::spawn_with(|s| {
        s.http.login_max_failures_per_user = 3;
        s.http.login_max_failures_per_address = 1000;
    })
    .await;
    account(&app, "victim", "victim password").await;
    account(&app, "bob", "bob password 1").await;

    for i in 0..3 {
        let r = login(&app, "victim", "guess").await;
        expect_problem(
            &format!("wrong password #{i}"),
            r,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    // The fourth guess is refused before any password check, and so is the right password:
    // otherwise a guesser would learn it from the one answer that is not a 429.
    expect_rate_limited("4th guess", login(&app, "victim", "guess").await).await;
    expect_rate_limited(
        "right password",
        login(&app, "victim", "victim password").await,
    )
    .await;

    // Unknown usernames are limited the same way (nothing tells them apart).
    for _ in 0..3 {
        let r = login(&app, "ghost", "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    expect_rate_limited("unknown user", login(&app, "ghost", "guess").await).await;

    // Another user from the same address logs in as often as they like.
    for i in 0..6 {
        let r = login(&app, "bob", "bob password 1").await;
        assert_eq!(r.status(), StatusCode::OK, "bob's login #{i}");
    }
    app.stop().await;
}

#[tokio::test]
async fn failed_logins_are_limited_per_client_address_and_successes_never_count() {
    let app = TestApp::spawn_with(|s| {
        s.http.login_max_failures_per_user = 1000;
        s.http.login_max_failures_per_address = 4;
    })
    .await;
    account(&app, "bob", "bob password 1").await;

    // Many more successful logins than the address allows failures: none is limited.
    for i in 0..12 {
        let r = login(&app, "bob", "bob password 1").await;
        assert_eq!(r.status(), StatusCode::OK, "login #{i}");
    }
    // Guesses spread over usernames still run into the address's allowance.
    for i in 0..4 {
        let r = login(&app, &format!("user{i}"), "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "guess #{i}");
    }
    expect_rate_limited("5th guess", login(&app, "user9", "guess").await).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_beyond_the_hashing_bound_is_shed_as_overloaded() {
    let app = TestApp::spawn_with(|s| {
        s.http.login_max_concurrent_hashes = 1;
        s.http.login_max_queued_hashes = 0;
        s.http.login_max_failures_per_user = 0;
        s.http.login_max_failures_per_address = 0;
    })
    .await;
    account(&app, "bob", "bob password 1").await;

    // Right passwords and unknown users alike: every one costs a full account hash.
    let answers = join_all((0..48).map(|i| {
        let (user, password) = if i % 2 == 0 {
            ("bob".to_string(), "bob password 1")
        } else {
            (format!("nobody{i}"), "guess")
        };
        let app = &app;
        async move {
            let r = login(app, &user, password).await;
            let retry_after = r.headers().get("retry-after").cloned();
            let (status, body) = answer(r).await;
            (status, body, retry_after)
        }
    }))
    .await;

    let mut overloaded = 0;
    for (status, body, retry_after) in &answers {
        match *status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => assert_eq!(body["code"], "unauthenticated"),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_problem(*status, body, StatusCode::SERVICE_UNAVAILABLE, "overloaded");
                assert!(retry_after.is_some(), "503 without Retry-After: {body}");
                overloaded += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        overloaded > 0,
        "48 concurrent logins through 1 hashing slot: none shed"
    );
    // Which login wins the one slot is up to the scheduler: a right password (200) or an
    // unknown user (401); either way at least one was checked rather than shed.
    assert!(
        overloaded < answers.len(),
        "no login was checked: {answers:?}"
    );

    // The node has recovered: a login on its own passes.
    let r = login(&app, "bob", "bob password 1").await;
    assert_eq!(r.status(), StatusCode::OK);
    let _: Value = r.json().await.unwrap();
    app.stop().await;
}
