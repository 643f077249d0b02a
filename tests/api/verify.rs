//! `registrar verify` against a real database: clean after real traffic, non-zero with
//! the violation named once the database is tampered with.

use crate::helpers::*;
use serde_json::json;
use std::process::Command;

fn verify(database_url: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_registrar"))
        .arg("verify")
        .env("REGISTRAR_DATABASE_URL", database_url)
        .env("REGISTRAR_LOG", "warn")
        .output()
        .expect("run registrar verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn verify_passes_on_real_traffic_and_names_a_violation() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(2, 2, json!([])).await;
    let students = app.students(6, &[]).await;
    app.enroll_each(&students, section).await;
    app.drop_section(&students[0].1, section).await;
    let settings = app.stop().await;

    let (code, out) = verify(&settings.database.database_url);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verify: OK"), "{out}");

    // An event lost from the outbox is a violation.
    let pool = sqlx::PgPool::connect(&settings.database.database_url)
        .await
        .unwrap();
    sqlx::query("DELETE FROM outbox WHERE id = (SELECT max(id) FROM outbox)")
        .execute(&pool)
        .await
        .unwrap();
    let (code, out) = verify(&settings.database.database_url);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("outbox"), "{out}");
}
