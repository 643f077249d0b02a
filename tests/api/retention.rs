//! Retention against the real PostgreSQL: the pruner deletes published outbox rows,
//! audit rows and idempotency keys older than their retention, in small batches, keeps
//! the newer ones, and never deletes an unpublished outbox row, however old.

use crate::helpers::*;

/// The count `sql` selects.
async fn left(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_past_their_retention_are_pruned_and_unpublished_events_never() {
    let app = TestApp::spawn_with(|s| {
        // Nothing publishes here: the unpublished rows stay unpublished.
        s.events.relay_enabled = false;
        s.retention.prune_interval_ms = 50;
        // Several statements per table per round.
        s.retention.prune_batch = 10;
    })
    .await;
    let r = &app.settings.retention;
    assert_eq!(
        (
            r.outbox_retention_hours,
            r.attempts_retention_hours,
            r.idempotency_retention_hours
        ),
        (7 * 24, 90 * 24, 24),
        "the defaults this test dates its rows against"
    );
    // 25 rows past retention and 5 within it, per table. In the outbox: published events
    // (behind the cursor) old and recent, published rows from before the cursor existed
    // (txid NULL, `published_at` set), and events from long ago that are unpublished:
    // past the cursor, or behind it but waiting for a retry. Those must stay.
    for sql in [
        "INSERT INTO outbox (event_id, routing_key, payload, created_at)
         SELECT gen_random_uuid(), 'old', '{}', now() - interval '9 days'
           FROM generate_series(1, 20)",
        "INSERT INTO outbox (event_id, routing_key, payload, created_at, published_at, txid)
         SELECT gen_random_uuid(), 'old', '{}', now() - interval '9 days', now() - interval '8 days', NULL
           FROM generate_series(1, 5)",
        "INSERT INTO outbox (event_id, routing_key, payload, created_at)
         SELECT gen_random_uuid(), 'recent', '{}', now() - interval '6 days'
           FROM generate_series(1, 5)",
        "WITH e AS (INSERT INTO outbox (event_id, routing_key, payload, created_at)
                    SELECT gen_random_uuid(), 'retrying', '{}', now() - interval '400 days'
                      FROM generate_series(1, 5) RETURNING id)
         INSERT INTO outbox_retries (id, attempts, next_attempt_at)
         SELECT id, 3, now() + interval '1 hour' FROM e",
        "UPDATE outbox_cursor SET (txid, id) = (SELECT max(txid), max(id) FROM outbox)",
        "INSERT INTO outbox (event_id, routing_key, payload, created_at)
         SELECT gen_random_uuid(), 'unpublished', '{}', now() - interval '400 days'
           FROM generate_series(1, 5)",
        "INSERT INTO registration_attempts (request_id, action, outcome, created_at)
         SELECT gen_random_uuid(), 'enroll', 'old', now() - interval '91 days'
           FROM generate_series(1, 25)",
        "INSERT INTO registration_attempts (request_id, action, outcome, created_at)
         SELECT gen_random_uuid(), 'enroll', 'recent', now() - interval '89 days'
           FROM generate_series(1, 5)",
        "INSERT INTO idempotency_keys (student_id, key, status, body, created_at)
         SELECT gen_random_uuid(), 'old', 201, '{}', now() - interval '25 hours'
           FROM generate_series(1, 25)",
        "INSERT INTO idempotency_keys (student_id, key, status, body, created_at)
         SELECT gen_random_uuid(), 'recent', 201, '{}', now() - interval '23 hours'
           FROM generate_series(1, 5)",
    ] {
        sqlx::query(sql).execute(&app.pool).await.unwrap();
    }

    wait_until("rows past their retention pruned", async || {
        left(
            &app,
            "SELECT count(*) FROM outbox WHERE routing_key = 'old'",
        )
        .await
            == 0
            && left(
                &app,
                "SELECT count(*) FROM registration_attempts WHERE outcome = 'old'",
            )
            .await
                == 0
            && left(
                &app,
                "SELECT count(*) FROM idempotency_keys WHERE key = 'old'",
            )
            .await
                == 0
    })
    .await;
    assert_eq!(
        left(
            &app,
            "SELECT count(*) FROM outbox WHERE routing_key = 'recent'"
        )
        .await,
        5
    );
    assert_eq!(
        left(
            &app,
            "SELECT count(*) FROM registration_attempts WHERE outcome = 'recent'"
        )
        .await,
        5
    );
    assert_eq!(
        left(
            &app,
            "SELECT count(*) FROM idempotency_keys WHERE key = 'recent'"
        )
        .await,
        5
    );
    assert_eq!(
        left(
            &app,
            "SELECT count(*) FROM outbox WHERE routing_key IN ('unpublished', 'retrying')"
        )
        .await,
        10,
        "an unpublished event was pruned"
    );
    // A stopped node stops its pruner too: stop() waits for every background task.
    app.stop().await;
}
