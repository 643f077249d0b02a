//! What the browser pages rely on: the section search and filters, one seat stream for
//! many sections, and the pages themselves served from `REGISTRAR_WEB_DIR` (with the
//! caching, the single-page fallback and the "not built" answers).

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn codes(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}-{}",
                s["course_code"].as_str().unwrap(),
                s["section_code"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn sections_are_searched_and_filtered_by_day_time_and_free_seats() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    app.course("CS101", 3, &[]).await;
    app.course("MATH240", 4, &[]).await;
    let morning = json!([{"day": "mon", "start": "08:00", "end": "09:15"}, {"day": "wed", "start": "08:00", "end": "09:15"}]);
    let cs_morning = app.section(term, "CS101", "01", 1, 0, morning).await;
    app.section(term, "CS101", "02", 5, 0, meet("tue", "13:00", "14:15"))
        .await;
    app.section(term, "MATH240", "01", 5, 0, meet("thu", "17:00", "18:15"))
        .await;
    let list = |query: &str| {
        let path = format!("/api/v1/terms/{term}/sections?{query}");
        let app = &app;
        async move { codes(&app.get_json(&path, None).await) }
    };
    assert_eq!(
        list("q=cs").await,
        ["CS101-01", "CS101-02"],
        "a code prefix"
    );
    assert_eq!(
        list("q=math-2").await,
        ["MATH240-01"],
        "a code prefix in another form"
    );
    assert_eq!(
        list("q=TITLE").await,
        ["CS101-01", "CS101-02", "MATH240-01"],
        "a title substring (the helper titles courses `<code> title`), in any case"
    );
    assert_eq!(
        list("q=%25").await,
        Vec::<String>::new(),
        "a wildcard is a plain character"
    );
    assert_eq!(list("day=tue").await, ["CS101-02"]);
    assert_eq!(list("starts_after=12:00").await, ["CS101-02", "MATH240-01"]);
    assert_eq!(list("ends_before=14:15").await, ["CS101-01", "CS101-02"]);
    assert_eq!(
        list("starts_after=12:00&ends_before=17:30").await,
        ["CS101-02"]
    );
    let s = app.students(1, &[]).await;
    assert_eq!(app.enroll(&s[0].1, cs_morning).await.0, StatusCode::CREATED);
    assert_eq!(
        list("open=true&q=cs").await,
        ["CS101-02"],
        "the full section is left out"
    );
    assert_eq!(list("open=false&q=cs").await, ["CS101-01", "CS101-02"]);
    for bad in [
        "day=monday",
        "starts_after=8:00",
        "ends_before=24:00",
        "open=maybe",
        "q=",
        "sort=title",
    ] {
        let path = format!("/api/v1/terms/{term}/sections?{bad}");
        expect_problem(
            &path,
            app.get(&path, None).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        )
        .await;
    }
}

#[tokio::test]
async fn one_stream_follows_many_sections() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    app.course("CS101", 3, &[]).await;
    let a = app.section(term, "CS101", "01", 3, 0, json!([])).await;
    let b = app
        .section(term, "CS101", "02", 3, 0, meet("fri", "10:00", "11:00"))
        .await;
    let path = format!("/api/v1/seats/stream?sections={a},{b},{a}");
    let r = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut stream = EventStream::new(r);
    let mut first = vec![
        stream.next_event().await["section_id"]
            .as_str()
            .unwrap()
            .to_string(),
        stream.next_event().await["section_id"]
            .as_str()
            .unwrap()
            .to_string(),
    ];
    first.sort();
    let mut want = vec![a.to_string(), b.to_string()];
    want.sort();
    assert_eq!(
        first, want,
        "one event per section at once, a repeat counted once"
    );
    assert_eq!(app.feed.subscribers(), 1, "one place under the stream cap");
    let s = app.students(1, &[]).await;
    app.enroll(&s[0].1, b).await;
    let e = stream.next_event().await;
    assert_eq!(
        (
            e["section_id"].as_str(),
            e["seats_taken"].as_i64(),
            e["seats_left"].as_i64()
        ),
        (Some(b.to_string().as_str()), Some(1), Some(2))
    );

    let many: Vec<String> = (0..101).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for (query, status, code) in [
        (
            "sections=nope".to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (String::new(), StatusCode::BAD_REQUEST, "invalid_query"),
        (
            format!("sections={}", many.join(",")),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("sections={a},{}", uuid::Uuid::new_v4()),
            StatusCode::NOT_FOUND,
            "section_not_found",
        ),
    ] {
        let path = format!("/api/v1/seats/stream?{query}");
        expect_problem(&path, app.get(&path, None).await, status, code).await;
    }
}

/// A fake build: the two pages and one hashed asset.
fn fake_build() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("registrar-web-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>app</title>").unwrap();
    std::fs::write(dir.join("docs.html"), "<!doctype html><title>docs</title>").unwrap();
    std::fs::write(dir.join("assets/main-abc123.js"), "console.log(1)").unwrap();
    dir
}

#[tokio::test]
async fn the_pages_are_served_with_the_right_caching_and_fallbacks() {
    let dir = fake_build();
    let web_dir = dir.to_str().unwrap().to_string();
    let app = TestApp::spawn_with(|s| s.http.web_dir = web_dir).await;
    let html = |app: &TestApp, path: &str| {
        app.client
            .get(app.url(path))
            .header("Accept", "text/html,*/*")
            .send()
    };
    for (path, title) in [
        ("/", "app"),
        ("/console", "app"),
        ("/console/cluster", "app"),
        ("/docs", "docs"),
        ("/some/old/link", "app"),
    ] {
        let r = html(&app, path).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(
            r.text()
                .await
                .unwrap()
                .contains(&format!("<title>{title}</title>")),
            "{path}"
        );
    }
    let r = app.get("/assets/main-abc123.js", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let r = app.get("/assets/missing.js", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.headers().get("cache-control").is_none(),
        "a miss is not cached for a year"
    );
    // An API client (no HTML in Accept) and API paths keep their problem answers.
    expect_problem(
        "/some/old/link",
        app.get("/some/old/link", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let r = html(&app, "/api/v1/nope").await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();

    // No build: a browser is told how to make one, an API client gets a code.
    let app = TestApp::spawn_with(|s| s.http.web_dir = "/nonexistent/registrar-web".into()).await;
    let r = html(&app, "/").await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("npm run build"));
    expect_problem(
        "/console",
        app.get("/console", None).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "web_not_built",
    )
    .await;
}

/// The headers that keep a stolen script out of the pages (they hold a bearer token in
/// sessionStorage): on the pages, the assets, the "not built" page and the API answers.
#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let dir = fake_build();
    let web_dir = dir.to_str().unwrap().to_string();
    let app = TestApp::spawn_with(|s| s.http.web_dir = web_dir).await;
    let mut answers = Vec::new();
    for path in ["/", "/docs", "/console/cluster", "/some/old/link"] {
        let r = app
            .client
            .get(app.url(path))
            .header("Accept", "text/html")
            .send();
        answers.push((path, r.await.unwrap()));
    }
    for path in [
        "/assets/main-abc123.js",
        "/assets/missing.js",
        "/api/v1/openapi.json",
        "/api/v1/nope",
        "/readyz",
    ] {
        answers.push((path, app.get(path, None).await));
    }
    for (path, r) in answers {
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .unwrap_or_else(|| panic!("{path}: no {name} header"))
        };
        let policy = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(
                policy.split(';').any(|d| d.trim() == directive),
                "{path}: {directive} missing from {policy}"
            );
        }
        assert!(
            !policy.contains("unsafe-"),
            "{path}: a weakened policy {policy}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
    }
    app.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The reads behind the console's admin tab: a term's windows, an account by username,
/// and a student's holds (so one can be lifted). Admins only.
#[tokio::test]
async fn admins_read_windows_accounts_by_username_and_holds() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token.clone();
    let term = app.open_term().await;
    let windows = app
        .get_json(&format!("/api/v1/terms/{term}/windows"), Some(&admin))
        .await;
    let standings: Vec<&str> = windows
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["standing"].as_str().unwrap())
        .collect();
    assert_eq!(
        standings,
        ["freshman", "sophomore", "junior", "senior", "graduate"]
    );

    let (sid, student_token) = app.student().await;
    let account = app
        .get_json(&format!("/api/v1/students/{sid}"), Some(&admin))
        .await;
    let username = account["username"].as_str().unwrap().to_string();
    let found = app
        .get_json(
            &format!("/api/v1/students?username={username}"),
            Some(&admin),
        )
        .await;
    assert_eq!(found["id"], sid.to_string());
    let path = "/api/v1/students?username=nobody-here";
    expect_problem(
        path,
        app.get(path, Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "student_not_found",
    )
    .await;
    for bad in ["Upper", "nul%00", "%C2%81x", ""] {
        let path = format!("/api/v1/students?username={bad}");
        expect_problem(
            &path,
            app.get(&path, Some(&admin)).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        )
        .await;
    }
    // A body must be a JSON object: serde would read a struct from an array of its fields.
    let (_, section) = app.open_cs101(5, 0, json!([])).await;
    let path = format!("/api/v1/sections/{section}");
    let r = app
        .request(reqwest::Method::PATCH, &path, Some(&admin))
        .header("content-type", "application/json")
        .body("[0.0]")
        .send()
        .await
        .unwrap();
    expect_problem(&path, r, StatusCode::BAD_REQUEST, "invalid_body").await;
    let path = "/api/v1/students";
    expect_problem(
        path,
        app.get(path, Some(&admin)).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    let path = format!("/api/v1/students?username={username}");
    expect_problem(
        &path,
        app.get(&path, Some(&student_token)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let holds = format!("/api/v1/students/{sid}/holds");
    assert_eq!(app.get_json(&holds, Some(&admin)).await, json!([]));
    let hold = app
        .admin_post(&holds, json!({"reason": "unpaid fees"}))
        .await;
    let listed = app.get_json(&holds, Some(&admin)).await;
    assert_eq!(listed[0]["id"], hold["id"]);
    assert_eq!(listed[0]["reason"], "unpaid fees");
    let lift = format!("{holds}/{}", hold["id"].as_str().unwrap());
    let r = app
        .request(reqwest::Method::DELETE, &lift, Some(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get_json(&holds, Some(&admin)).await, json!([]));
    let unknown = format!("/api/v1/students/{}/holds", uuid::Uuid::new_v4());
    expect_problem(
        &unknown,
        app.get(&unknown, Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "student_not_found",
    )
    .await;
}
