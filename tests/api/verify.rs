//! `registrar verify` against a real database: clean after real traffic, non-zero with
//! the violation named once the database (or the acknowledgement log) is tampered with.

use crate::helpers::*;
use serde_json::json;
use std::process::Command;
use uuid::Uuid;

fn verify(database_url: &str) -> (i32, String) {
    verify_acks(database_url, None)
}

fn verify_acks(database_url: &str, acks: Option<&std::path::Path>) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_registrar"));
    command.arg("verify");
    if let Some(file) = acks {
        command.arg("--acks").arg(file);
    }
    let out = command
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
        (
            // CS101 is graded by letter only (its places chose nothing: no rows of their
            // own, so one is written for a seat).
            "INSERT INTO enrollment_options (student_id, section_id, credits, grading_basis)
             SELECT student_id, section_id, 3, 'audit' FROM enrollments
              WHERE status = 'enrolled' LIMIT 1",
            ["[enrollment options fit their course]"].as_slice(),
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

/// One acknowledgement line as `registrar-loadtest --acks` writes it.
fn ack(t_ms: i64, student: Uuid, section: Uuid, op: &str, result: &str) -> serde_json::Value {
    json!({"t_ms": t_ms, "student_id": student, "section_id": section, "op": op, "result": result})
}

fn write_acks(lines: &[serde_json::Value]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("registrar-acks-{}.jsonl", Uuid::new_v4()));
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// The per-student rules, the swap checks and the idempotency check each fire on a
/// database (or log) built to break them, after passing on real traffic with a real swap.
#[tokio::test]
async fn student_rules_swaps_and_keys_name_their_violations() {
    let app = TestApp::spawn().await;
    let (term, a) = app.open_cs101(10, 0, meet("mon", "09:00", "10:15")).await;
    let a2 = app
        .section(term, "CS101", "02", 10, 0, meet("tue", "13:00", "14:00"))
        .await;
    app.course("MATH201", 4, &[]).await;
    let clash = app
        .section(term, "MATH201", "01", 10, 0, meet("mon", "09:30", "10:30"))
        .await;
    app.course("PHYS101", 4, &[]).await;
    let b = app
        .section(term, "PHYS101", "01", 10, 0, meet("wed", "08:00", "09:00"))
        .await;
    let s = app.students(6, &[]).await;
    app.enroll_each(&s[..4], a).await;
    let (status, body) = app.swap(&s[3].1, a, b).await;
    assert_eq!(status, 200, "{body}");
    let settings = app.stop().await;
    let url = &settings.database.database_url;
    let real = write_acks(&[
        ack(1, s[3].0, b, "swap_add", "enrolled"),
        ack(1, s[3].0, a, "swap_drop", "dropped"),
    ]);
    let (code, out) = verify_acks(url, Some(&real));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 swaps checked"), "{out}");

    let pool = sqlx::PgPool::connect(url).await.unwrap();
    // Rows written past the rules (and the counter triggers), as a stale rule cache on a
    // fenced node could have let them in.
    let sneak_in = |student: Uuid, section: Uuid| {
        format!(
            "SET session_replication_role = replica;
             INSERT INTO enrollments (section_id, student_id, status, request_id, epoch, created_at, enrolled_at)
             VALUES ('{section}', '{student}', 'enrolled', gen_random_uuid(), 0, now(), now());
             UPDATE sections SET seats_taken = seats_taken + 1 WHERE id = '{section}';"
        )
    };
    let corruptions = [
        (sneak_in(s[0].0, a2), "[one section per course]"),
        (sneak_in(s[1].0, clash), "[no time conflict]"),
        (
            format!("UPDATE students SET max_credits = 2 WHERE id = '{}'", s[2].0),
            "[credit limit]",
        ),
        (
            format!(
                "INSERT INTO swap_intents (request_id, student_id, drop_section, add_section, created_at)
                 VALUES (gen_random_uuid(), '{}', '{a}', '{b}', now() - interval '1 hour')",
                s[4].0
            ),
            "[swaps under way]",
        ),
    ];
    for (sql, name) in corruptions {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::raw_sql(&sql).execute(&mut *conn).await.unwrap();
        let (code, out) = verify(url);
        assert_eq!(code, 1, "{sql}: {out}");
        assert!(out.contains(name), "{sql}: expected {name} in {out}");
    }

    // A first answer stored under a key that the client's log says was another one.
    sqlx::query("INSERT INTO idempotency_keys (student_id, key, status, body) VALUES ($1, 'k-1', 409, '{}')")
        .bind(s[1].0)
        .execute(&pool)
        .await
        .unwrap();
    let mut keyed = ack(2, s[1].0, a, "enroll", "enrolled");
    keyed["key"] = json!("k-1");
    keyed["status"] = json!(201);
    let tampered = write_acks(&[
        // s2 still sits in `a` and never reached `b`: reversed.
        ack(3, s[2].0, b, "swap_add", "enrolled"),
        ack(3, s[2].0, a, "swap_drop", "dropped"),
        // s5 holds nothing: in neither, acknowledged and unanswered.
        ack(4, s[5].0, b, "swap_add", "enrolled"),
        ack(4, s[5].0, a, "swap_drop", "dropped"),
        ack(5, s[5].0, clash, "swap_add", "unknown"),
        ack(5, s[5].0, a2, "swap_drop", "unknown"),
        // A later request on a swap's section excuses it (s0's swap below is undone).
        ack(6, s[0].0, b, "swap_add", "enrolled"),
        ack(6, s[0].0, a, "swap_drop", "dropped"),
        ack(7, s[0].0, b, "drop", "unknown"),
        keyed,
    ]);
    let (code, out) = verify_acks(url, Some(&tampered));
    assert_eq!(code, 1, "{out}");
    for name in [
        "[swaps: acknowledged, reversed]: 1 found",
        "[swaps: acknowledged, in neither]: 1 found",
        "[swaps: unanswered, in neither]: 1 found",
        "[idempotency keys replay the first answer]: 1 found",
    ] {
        assert!(out.contains(name), "expected {name} in {out}");
    }
    assert!(out.contains("(1 changed later)"), "{out}");
    assert!(!out.contains("[swaps: acknowledged, in both]"), "{out}");
    let _ = std::fs::remove_file(real);
    let _ = std::fs::remove_file(tampered);
}
