//! What a PostgreSQL failover looks like from a node, shown on the real server: a
//! connection that lands on a read-only server (a standby, or the old primary being
//! demoted) is never pooled, a write refused as read-only is `unavailable` (503, nothing
//! recorded), and a COMMIT whose session was ended under it (a demotion, a shutdown) is of
//! unknown outcome, never "nothing recorded", while one the server refused is rolled back.
//! Browsing reads the read replica when one is configured, and the primary when it is down.
//! The full failover, with Patroni, a synchronous standby and HAProxy, is
//! `loadtest/failover-bench.sh`.

use crate::helpers::*;
use crate::proxy::{Proxy, target_of};
use registrar::store::{DbError, commit_outcome_unknown, connect_node};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};

/// A server that refuses every write the way a standby does (`default_transaction_read_only`
/// set for the session by the URL's `options`).
fn read_only_url(url: &str) -> String {
    format!("{url}?options=-c%20default_transaction_read_only%3Don")
}

#[tokio::test]
async fn a_node_never_pools_a_connection_to_a_read_only_server() {
    let db = fresh_database().await;
    let mut settings = test_settings(&db);
    settings.database.acquire_timeout_ms = 300;

    let writable = connect_node(&settings.database)
        .await
        .expect("a writable primary is pooled");
    let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
        .fetch_one(&writable.reads)
        .await
        .unwrap();
    assert_eq!(read_only, "off");

    settings.database.database_url = read_only_url(&settings.database.database_url);
    let err = connect_node(&settings.database)
        .await
        .expect_err("a read-only server must not be pooled");
    assert!(
        matches!(DbError::from(err), DbError::Unavailable(_)),
        "refusing a read-only server must read as unavailable (503), not as a bug"
    );
}

#[tokio::test]
async fn a_write_refused_as_read_only_is_unavailable() {
    let db = fresh_database().await;
    let pool = PgPool::connect(&test_settings(&db).database.database_url)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("CREATE TABLE refused (i int)")
        .execute(&mut *tx)
        .await
        .expect_err("a read-only transaction refuses a write");
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("25006"));
    assert!(matches!(DbError::from(err), DbError::Unavailable(_)));
}

#[tokio::test]
async fn a_commit_ended_with_its_session_is_unknown_and_a_refused_one_is_not() {
    let db = fresh_database().await;
    let url = test_settings(&db).database.database_url;
    let admin = PgPool::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TABLE once (i int, CONSTRAINT once_i UNIQUE (i) DEFERRABLE INITIALLY DEFERRED)",
    )
    .execute(&admin)
    .await
    .unwrap();

    // The session ends under the transaction (what a demotion or a fast shutdown does to a
    // COMMIT waiting for the synchronous standby): the COMMIT hears 57P01 or nothing.
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("INSERT INTO once VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(ended);
    let err = tx.commit().await.expect_err("the session was ended");
    assert!(commit_outcome_unknown(&err), "{err:?} may hide a commit");

    // The server answers the COMMIT itself with an error (a deferred check): rolled back.
    let mut tx = admin.begin().await.unwrap();
    sqlx::query("INSERT INTO once VALUES (2), (2)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = tx
        .commit()
        .await
        .expect_err("the deferred unique check fails at COMMIT");
    assert!(!commit_outcome_unknown(&err), "{err:?} was rolled back");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM once")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn browsing_reads_the_replica_and_falls_back_to_the_primary_when_it_is_down() {
    // The "replica" is the test database behind a proxy the test can cut, its
    // connections marked by their application_name.
    let proxy = Proxy::start(target_of(&admin_url())).await;
    let app = TestApp::spawn_with(|s| {
        let url = proxy.url_for(&s.database.database_url);
        s.database.database_read_url = format!("{url}?application_name=browse-replica");
        s.database.acquire_timeout_ms = 300;
    })
    .await;
    let (term, section) = app.open_cs101(10, 0, json!([])).await;
    let (_, token) = app.student().await;
    let path = format!("/api/v1/terms/{term}/sections");
    let listed = |page: &Value| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == json!(section))
    };

    let page = app.get_json(&path, Some(&token)).await;
    assert!(listed(&page), "{page}");
    let db = app
        .settings
        .database
        .database_url
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let admin = PgPool::connect(&admin_url()).await.unwrap();
    let on_replica: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'browse-replica'",
    )
    .bind(&db)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(
        on_replica > 0,
        "the section list was not read on the replica"
    );

    // The replica goes away: browsing goes on, on the primary.
    proxy.cut();
    let answer = app.get(&path, Some(&token)).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(listed(&answer.json::<Value>().await.unwrap()));
    let terms = app.get("/api/v1/terms", Some(&token)).await;
    assert_eq!(terms.status(), StatusCode::OK);
}
