//! `registrar admin create`: the real binary bootstraps a staff account on a fresh
//! database without the demo data, with the password from stdin or the environment (never
//! the command line), and refuses short passwords and taken usernames.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

/// Run `registrar admin create ARGS` on `database_url`, writing `stdin`; (exit code, stderr).
fn admin_create(
    database_url: &str,
    args: &[&str],
    stdin: &str,
    env_password: Option<&str>,
) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_registrar"));
    command
        .args(["admin", "create"])
        .args(args)
        .env("REGISTRAR_DATABASE_URL", database_url)
        .env("REGISTRAR_LOG", "warn")
        .env_remove("REGISTRAR_ADMIN_CREATE_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = env_password {
        command.env("REGISTRAR_ADMIN_CREATE_PASSWORD", p);
    }
    let mut child = command.spawn().expect("run registrar admin create");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .expect("write the password");
    let out = child.wait_with_output().expect("wait for registrar");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn login(app: &TestApp, username: &str, password: &str) -> (StatusCode, Value) {
    let body = json!({"username": username, "password": password});
    answer(app.post("/api/v1/auth/login", None, body).await).await
}

#[tokio::test]
async fn admin_create_bootstraps_staff_accounts_without_the_demo() {
    let database = fresh_database().await;
    let url = test_settings(&database).database.database_url;

    let (code, err) = admin_create(
        &url,
        &["--username", "root"],
        "a long enough password\n",
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (code, err) = admin_create(
        &url,
        &["--username", "ops", "--role", "operator"],
        "",
        Some("operator password 1"),
    );
    assert_eq!(code, 0, "{err}");

    let app = TestApp::start(test_settings(&database)).await;
    // No demo data came with it.
    let terms = app.get_json("/api/v1/terms", None).await;
    assert_eq!(terms, json!([]));

    // Log in as `user` and try an admin route (create a term).
    let create_term = async |user: &str, password: &str, code: &str| -> StatusCode {
        let (status, token) = login(&app, user, password).await;
        assert_eq!(status, StatusCode::OK, "{token}");
        let token = token["access_token"].as_str().unwrap().to_string();
        let term = json!({"code": code, "name": "a term"});
        app.post("/api/v1/terms", Some(&token), term).await.status()
    };
    assert_eq!(
        create_term("root", "a long enough password", "2030FA").await,
        StatusCode::CREATED,
        "an admin route"
    );
    // The operator is no admin.
    assert_eq!(
        create_term("ops", "operator password 1", "2031FA").await,
        StatusCode::FORBIDDEN
    );

    // A taken username and a short password are refused, saying why.
    let (code, err) = admin_create(
        &url,
        &["--username", "root"],
        "another long password\n",
        None,
    );
    assert_ne!(code, 0, "a second `root` was created");
    assert!(err.contains("already exists"), "{err}");
    let (code, err) = admin_create(&url, &["--username", "shorty"], "short pass\n", None);
    assert_ne!(code, 0, "a short password was accepted");
    assert!(err.contains("12"), "{err}");
    // The first password still works: nothing was overwritten.
    assert_eq!(
        login(&app, "root", "a long enough password").await.0,
        StatusCode::OK
    );
    app.stop().await;
}
