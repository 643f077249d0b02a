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

/// Each invariant check fires on the corruption it guards against (written past the
/// database's own guards, as a bug or a hand edit could).
#[tokio::test]
async fn every_invariant_check_names_its_violation() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(2, 2, json!([])).await;
    let students = app.students(4, &[]).await;
    app.enroll_each(&students, section).await;
    let settings = app.stop().await;
    let url = &settings.database.database_url;
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let corruptions = [
        (
            // A third enrolled row in a 2-seat section (the counters trigger skipped).
            "SET session_replication_role = replica;
             UPDATE enrollments SET status = 'enrolled', enrolled_at = now()
              WHERE id = (SELECT min(id) FROM enrollments WHERE status = 'waitlisted')",
            ["[no oversell]", "[counters match rows]"].as_slice(),
        ),
        (
            "UPDATE enrollments SET waitlist_seq = 1 WHERE waitlist_seq IS NOT NULL",
            ["[waitlist order]"].as_slice(),
        ),
        (
            "UPDATE outbox SET payload = jsonb_set(payload, '{event_id}', '\"forged\"')
              WHERE id = (SELECT min(id) FROM outbox)",
            ["[outbox: event ids]"].as_slice(),
        ),
    ];
    for (sql, names) in corruptions {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::raw_sql(sql).execute(&mut *conn).await.unwrap();
        let (code, out) = verify(url);
        assert_eq!(code, 1, "{sql}: {out}");
        for name in names {
            assert!(out.contains(name), "{sql}: expected {name} in {out}");
        }
    }
}
