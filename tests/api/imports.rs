//! Catalog and roster import, through `POST /api/v1/imports` and the `registrar import`
//! binary against the test's database: a small catalog imported, imported again without
//! a change, a dry run that writes nothing, row errors with their line, changes of an
//! existing section's seats left for its actor, and imported students who log in and
//! enroll under the imported pools, restrictions and tickets. The generated catalog of
//! 50 000 students imports within a bound, and again unchanged.

use crate::helpers::*;
use chrono::{TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// A catalog in the import's JSON format: a term open now, CS101 (open to CS majors, 2 of
/// its 4 seats reserved for HONORS) and CHEM1411 (a lecture with a linked lab), students
/// `ada` (CS, HONORS), `bob` (MATH) and `cy` (CS, ticket tomorrow).
fn catalog() -> Value {
    let now = Utc::now();
    let opens = (now - TimeDelta::hours(1)).to_rfc3339();
    let closes = (now + TimeDelta::days(1)).to_rfc3339();
    let windows: Vec<Value> = ["freshman", "sophomore", "junior", "senior", "graduate"]
        .iter()
        .map(|s| json!({"term": "2027FA", "standing": s, "opens_at": opens, "closes_at": closes}))
        .collect();
    json!({
        "terms": [{"code": "2027FA", "name": "Fall 2027"}],
        "windows": windows,
        "courses": [
            {"code": "cs 101", "title": "Intro to CS", "credits": 3},
            {"code": "CHEM1411", "title": "Chemistry", "credits": 4, "components": ["lecture", "lab"]}
        ],
        "sections": [
            {"term": "2027FA", "course_code": "CS101", "section_code": "01", "capacity": 4,
             "waitlist_capacity": 2, "meetings": [{"day": "mon", "start": "09:00", "end": "10:15"}],
             "reserved": [{"attribute": "cohort", "value": "honors", "seats": 2}],
             "restrictions": [{"attribute": "major", "mode": "include", "values": ["CS"]}]},
            {"term": "2027FA", "course_code": "CHEM1411", "section_code": "01", "capacity": 10,
             "meetings": "tue 09:00-10:15", "waitlist_mode": "offer", "offer_window_minutes": 60},
            {"term": "2027FA", "course_code": "CHEM1411", "section_code": "L01", "capacity": 10,
             "component": "lab", "links": ["01"], "meetings": "thu 13:00-15:00"}
        ],
        "students": [
            {"username": "ada", "password": "ada-password", "standing": "senior",
             "majors": ["cs"], "cohort": "honors", "completed_courses": ["MATH-2413"]},
            {"username": "bob", "password": "bob-password", "standing": "junior", "majors": ["MATH"]},
            {"username": "cy", "password": "cy-password", "standing": "senior", "majors": ["CS"]}
        ],
        "tickets": [
            {"term": "2027FA", "username": "cy",
             "opens_at": (now + TimeDelta::days(1) - TimeDelta::hours(2)).to_rfc3339()}
        ]
    })
}

/// POST `body` to the import endpoint with `query`; status and answer.
async fn import(app: &TestApp, query: &str, body: &Value) -> (StatusCode, Value) {
    let r = app
        .post(
            &format!("/api/v1/imports{query}"),
            Some(&app.admin_token),
            body.clone(),
        )
        .await;
    answer(r).await
}

/// Log `username` in; the token.
async fn login(app: &TestApp, username: &str, password: &str) -> String {
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": username, "password": password}),
        )
        .await;
    let (status, body) = answer(r).await;
    assert_eq!(status, StatusCode::OK, "login {username}: {body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// The id of section `code` of `course` in term 2027FA.
async fn section_id(app: &TestApp, course: &str, code: &str) -> Uuid {
    sqlx::query_scalar(
        "SELECT s.id FROM sections s JOIN terms t ON t.id = s.term_id
          WHERE t.code = '2027FA' AND s.course_code = $1 AND s.section_code = $2",
    )
    .bind(course)
    .bind(code)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn terms(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM terms")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_endpoint_imports_a_catalog_once_and_its_students_enroll_under_its_rules() {
    let app = TestApp::spawn().await;
    let sent = catalog();

    // A dry run says what would change and writes nothing.
    let (status, dry) = import(&app, "?dry_run=true", &sent).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["changed"], 15, "{dry}");
    assert_eq!(dry["files"][0]["applied"], false);
    assert_eq!(terms(&app).await, 0);

    let (status, first) = import(&app, "", &sent).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["changed"], 15, "{first}");
    assert_eq!(first["failed"], 0, "{first}");
    assert_eq!(first["files"][0]["applied"], true);
    let kinds = &first["files"][0]["kinds"];
    assert_eq!(kinds[3]["kind"], "sections");
    assert_eq!(kinds[3]["created"], 3);

    // The same body again changes nothing.
    let (status, again) = import(&app, "", &sent).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["changed"], 0, "{again}");
    assert_eq!(again["files"][0]["kinds"][4]["unchanged"], 3, "{again}");

    // The lab is linked to its lecture; codes are canonical.
    let lecture = section_id(&app, "CHEM1411", "01").await;
    let lab = section_id(&app, "CHEM1411", "L01").await;
    let lab_view = app.section_view(lab).await;
    assert_eq!(lab_view["links"], json!([lecture]), "{lab_view}");
    assert_eq!(lab_view["component"], "lab");
    let lecture_view = app.section_view(lecture).await;
    assert_eq!(lecture_view["waitlist_mode"], "offer", "{lecture_view}");
    assert_eq!(lecture_view["offer_window_minutes"], 60);

    // Imported students log in with their password and enroll under the imported rules.
    let cs101 = section_id(&app, "CS101", "01").await;
    let ada = login(&app, "ada", "ada-password").await;
    let bob = login(&app, "bob", "bob-password").await;
    let cy = login(&app, "cy", "cy-password").await;
    let (status, body) = app.enroll(&ada, cs101).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.enroll(&bob, cs101).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "restricted_section");
    let (status, body) = app.enroll(&cy, cs101).await;
    assert_problem(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "registration_not_open_yet",
    );
    let view = app.section_view(cs101).await;
    assert_eq!(view["reserved"][0]["value"], "HONORS", "{view}");
    assert_eq!(view["reserved"][0]["taken"], 1, "{view}");

    // A changed title and cohort are written; a changed capacity of an existing section is
    // left for its actor, with the request that makes it.
    let mut changed = sent.clone();
    changed["courses"][0]["title"] = json!("Introduction to CS");
    changed["sections"][0]["capacity"] = json!(6);
    changed["sections"][1]["offer_window_minutes"] = json!(30);
    changed["students"][1]["cohort"] = json!("athlete");
    let (status, third) = import(&app, "", &changed).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_eq!(third["changed"], 2, "{third}");
    let file = &third["files"][0];
    let api = &file["api_changes"][0];
    assert_eq!(api["field"], "capacity", "{third}");
    assert_eq!(api["section_id"], json!(cs101));
    assert!(
        api["how"]
            .as_str()
            .unwrap()
            .starts_with(&format!("PATCH /api/v1/sections/{cs101}")),
        "{api}"
    );
    assert_eq!(
        file["api_changes"][1]["field"], "offer_window_minutes",
        "{third}"
    );
    // The node forgets its cached answer when the import's notice comes back.
    wait_until("the new title is answered", async || {
        app.section_view(cs101).await["title"] == "Introduction to CS"
    })
    .await;
    assert_eq!(app.section_view(cs101).await["capacity"], 4);
    let cohort: Option<String> =
        sqlx::query_scalar("SELECT cohort FROM students WHERE username = 'bob'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(cohort.as_deref(), Some("ATHLETE"));
}

#[tokio::test]
async fn the_endpoint_answers_row_errors_by_index_and_refuses_bad_bodies() {
    let app = TestApp::spawn().await;
    let mut body = catalog();
    body["sections"][1]["capacity"] = json!(100_001);
    body["students"][1]["standing"] = json!("alumnus");

    // A body with row errors applies nothing of itself.
    let (status, report) = import(&app, "", &body).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    // The lab names the lecture that failed: it fails too.
    assert_eq!(report["failed"], 3, "{report}");
    let errors = &report["files"][0]["errors"];
    assert_eq!(errors[0]["kind"], "sections", "{errors}");
    assert_eq!(errors[0]["index"], 1);
    assert_eq!(errors[0]["field"], "capacity");
    assert_eq!(errors[0]["message"], "0 to 100000");
    assert_eq!(errors[1]["kind"], "students");
    assert_eq!(errors[1]["index"], 1);
    assert_eq!(report["files"][0]["applied"], false);
    assert_eq!(terms(&app).await, 0);

    // With skip_errors the other rows are applied.
    let (status, report) = import(&app, "?skip_errors=true", &body).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["files"][0]["applied"], true);
    assert_eq!(report["changed"], 12, "{report}");
    assert_eq!(terms(&app).await, 1);

    // Bodies that are not the format are 400 invalid_body; students may not import.
    let path = "/api/v1/imports";
    let token = Some(app.admin_token.as_str());
    for bad in [
        json!({"sectoins": []}),
        json!({"terms": {}}),
        json!({"terms": [1]}),
    ] {
        // A record that is not an object is a malformed body here too (the document says
        // records are objects), not a row error as in a JSON Lines file.
        let r = app.post(path, token, bad.clone()).await;
        let (status, body) = answer(r).await;
        assert_problem(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    }
    let r = app
        .request(reqwest::Method::POST, path, token)
        .header("content-type", "application/json")
        .body("{\"terms\": [")
        .send()
        .await
        .unwrap();
    expect_problem("truncated body", r, StatusCode::BAD_REQUEST, "invalid_body").await;
    let r = app.post(&format!("{path}?dry=1"), token, json!({})).await;
    expect_problem("unknown query", r, StatusCode::BAD_REQUEST, "invalid_query").await;
    let (student, _) = app.student().await;
    let student_token = app.token(student, registrar::resources::Role::Student);
    app.post_expect_problem(
        path,
        Some(&student_token),
        json!({}),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

/// Run `registrar import ARGS` against `app`'s database; exit status and output. The
/// server keeps serving meanwhile (the test's runtime is not blocked on the child).
async fn cli(app: &TestApp, args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_registrar"))
        .arg("import")
        .args(args)
        .env(
            "REGISTRAR_DATABASE_URL",
            &app.settings.database.database_url,
        )
        .env("REGISTRAR_SHARDS", app.settings.cluster.shards.to_string())
        .env("REGISTRAR_LOG", "warn")
        .output()
        .await
        .expect("run registrar import");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

/// A fresh directory for a test's files.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("registrar-import-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn the_cli_imports_csv_files_with_line_numbers_and_dry_runs() {
    let app = TestApp::spawn().await;
    let dir = scratch();
    let opens = (Utc::now() - TimeDelta::hours(1)).to_rfc3339();
    let closes = (Utc::now() + TimeDelta::days(1)).to_rfc3339();
    let terms_csv = write(&dir, "terms.csv", "code,name\n2027FA,Fall 2027\n");
    let windows_csv = write(
        &dir,
        "windows.csv",
        &format!("term,standing,opens_at,closes_at\n2027FA,senior,{opens},{closes}\n"),
    );
    let courses_csv = write(
        &dir,
        "courses.csv",
        "code,title,credits,prerequisites\nCS101,Intro,3,\nCS201,Data structures,3,CS101\n",
    );
    let sections = "term,course_code,section_code,capacity,meetings,reserved,restrictions\n\
                    2027FA,CS101,01,30,mon 09:00-10:15; wed 09:00-10:15,major=CS:10,\n\
                    2027FA,CS201,01,0,tue 09:00-10:15,,include major=CS\n";
    let bad_sections = sections.replace(",0,tue", ",100001,tue");
    let sections_csv = write(&dir, "sections.csv", &bad_sections);
    let students_csv = write(
        &dir,
        "students.csv",
        "username,password,standing,majors,completed_courses\n\
         dana,dana-password,senior,cs;math,\n\
         eli,,senior,CS,cs-101\n",
    );
    let all = [
        sections_csv.as_str(),
        students_csv.as_str(),
        terms_csv.as_str(),
        windows_csv.as_str(),
        courses_csv.as_str(),
    ];

    // The bad sections file applies nothing of itself; the others are applied, in order
    // of kind whatever the order given.
    let (code, out) = cli(&app, &all).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("sections.csv:3: capacity: 0 to 100000"),
        "{out}"
    );
    assert!(out.contains("sections.csv: NOT APPLIED"), "{out}");
    let sections_now: i64 = sqlx::query_scalar("SELECT count(*) FROM sections")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(sections_now, 0);
    assert!(
        out.contains("students created without a password got this generated one"),
        "{out}"
    );

    // Fixed: everything is applied; again: nothing changes.
    std::fs::write(&sections_csv, sections).unwrap();
    let (code, out) = cli(&app, &all).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 changed (2 created, 0 updated)"), "{out}");
    let (code, out) = cli(&app, &all).await;
    assert_eq!(code, 0, "{out}");
    let (terms_at, sections_at) = (out.find("terms.csv:"), out.find("sections.csv:"));
    assert!(terms_at < sections_at, "applied in order of kind: {out}");
    assert!(out.contains("\n0 changed (0 created, 0 updated)"), "{out}");

    // A dry run prints the row-level changes and writes none of them.
    std::fs::write(
        &courses_csv,
        "code,title,credits,prerequisites\nCS101,Intro to CS,4,\nCS201,Data structures,3,CS101\n",
    )
    .unwrap();
    let (code, out) = cli(&app, &["--dry-run", &courses_csv]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("courses.csv:2: updated course CS101: title: \"Intro\" -> \"Intro to CS\"; credits: 3 -> 4"),
        "{out}"
    );
    assert!(
        out.contains("1 changed") && out.contains("dry run: nothing was written"),
        "{out}"
    );
    let credits: i16 = sqlx::query_scalar("SELECT credits FROM courses WHERE code = 'CS101'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(credits, 3);

    // A capacity change of an existing section is left for the API; the rest applies.
    let more = sections.replace("2027FA,CS101,01,30,", "2027FA,CS101,01,40,");
    std::fs::write(&sections_csv, more).unwrap();
    let (code, out) = cli(&app, &[&sections_csv]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("capacity: 30 -> 40; make it with PATCH /api/v1/sections/"),
        "{out}"
    );

    // The student with a password logs in and enrolls; a prerequisite named in any form
    // was stored canonical.
    let dana = login(&app, "dana", "dana-password").await;
    let cs101 = section_id(&app, "CS101", "01").await;
    let (status, body) = app.enroll(&dana, cs101).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let completed: Vec<String> =
        sqlx::query_scalar("SELECT completed_courses FROM students WHERE username = 'eli'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(completed, ["CS101"]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The full-size catalog: 50 000 students with their tickets, 2000 sections. About 5 s
/// to import in a debug build on the 2-core development machine (2 s to re-import
/// unchanged); the bound only catches a return to one statement per row.
#[tokio::test]
async fn a_generated_catalog_of_50000_students_imports_fast_and_imports_again_unchanged() {
    let app = TestApp::spawn().await;
    let dir = scratch();
    let demo = dir.display().to_string();
    let (code, out) = cli(&app, &["--generate-demo", &demo, "--students", "50000"]).await;
    assert_eq!(code, 0, "{out}");
    let files: Vec<String> = [
        "terms", "windows", "courses", "sections", "students", "tickets",
    ]
    .iter()
    .map(|k| dir.join(format!("{k}.csv")).display().to_string())
    .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let (code, out) = cli(&app, &files).await;
    let took = started.elapsed();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("students: 50000 created"), "{out}");
    assert!(out.contains("tickets: 50000 created"), "{out}");
    assert!(out.contains("sections: 2000 created"), "{out}");
    assert!(took < std::time::Duration::from_secs(60), "took {took:?}");
    println!("imported 50000 generated students in {took:?}");
    let (code, out) = cli(&app, &files).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\n0 changed"), "{out}");

    // The student with the earliest ticket logs in with the demo password (the file's
    // password_hash) and enrolls in a section open to anyone.
    let username: String = sqlx::query_scalar(
        "SELECT s.username FROM time_tickets t JOIN students s ON s.id = t.student_id
          ORDER BY t.opens_at, s.username LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let section: Uuid = sqlx::query_scalar(
        "SELECT s.id FROM sections s JOIN courses c ON c.code = s.course_code
          WHERE s.restrictions = '[]' AND c.components = '{}' AND c.prerequisites = '{}'
            AND c.corequisites = '{}' AND s.capacity > 0
            AND NOT EXISTS (SELECT 1 FROM section_reserves r WHERE r.section_id = s.id)
          ORDER BY s.course_code, s.section_code LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let token = login(&app, &username, "demo").await;
    let (status, body) = app.enroll(&token, section).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    std::fs::remove_dir_all(dir).unwrap();
}
