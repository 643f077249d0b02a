//! Test harness: `TestApp::spawn()` creates a database named by a fresh UUID, migrates it,
//! builds the real [`Application`] on `127.0.0.1:0` and serves it in the background; helpers
//! create catalog data through the API (as an admin) and students directly in SQL with the
//! cheap demo hash (thousands per test), and mint tokens with the server's own keys.
//!
//! The steps tests repeat live here too, so that a test reads as its specification: sending
//! a request and asserting its problem+json answer ([`expect_problem`]), a swap, waiting for
//! a condition instead of sleeping ([`wait_until`]) and reading a server-sent event stream
//! ([`EventStream`]).

use chrono::{TimeDelta, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use registrar::config::Settings;
use registrar::resources::Role;
use registrar::service::auth::{TokenKeys, hash_demo_password};
use registrar::startup::Application;
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The connection tests use to create their databases.
pub fn admin_url() -> String {
    std::env::var("REGISTRAR_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://registrar:registrar@127.0.0.1:5432/postgres".into())
}

fn database_url(name: &str) -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}

/// The token secret of every test node: random per test run, so no secret that works
/// against a real node is written down in the repository.
pub static SECRET: LazyLock<String> = LazyLock::new(registrar::service::auth::generated_secret);
pub static DEMO_HASH: LazyLock<String> = LazyLock::new(|| hash_demo_password("password1"));

/// A running server on its own database.
pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub client: Client,
    pub settings: Settings,
    pub admin_token: String,
    /// The node's seat feed (its Redis mirror, for outage tests).
    pub feed: std::sync::Arc<registrar::service::feed::SeatFeed>,
    /// The node's counters of committed batches.
    pub commits: std::sync::Arc<registrar::metrics::CommitStats>,
    /// The node's outbox relay wake-up (tests run extra relays on it).
    pub relay_wake: std::sync::Arc<tokio::sync::Notify>,
    /// The node's registration service (tests run its sweeps directly).
    pub registration: std::sync::Arc<registrar::service::registration::RegistrationService>,
    keys: TokenKeys,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// The test Redis.
pub fn redis_url() -> String {
    std::env::var("REGISTRAR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The test RabbitMQ (test.sh points it at a vhost it recreates each run).
pub fn amqp_url() -> String {
    std::env::var("REGISTRAR_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Settings for a test node on `database`; the Redis prefix, exchange and queue names are
/// derived from the database name, so each test has its own.
pub fn test_settings(database: &str) -> Settings {
    let mut s = Settings::default();
    s.http.listen = "127.0.0.1:0".into();
    s.http.jwt_secret = SECRET.clone();
    s.http.rate_limit_per_sec = 0;
    s.mirror.redis_url = redis_url();
    s.mirror.redis_prefix = database.to_string();
    s.events.amqp_url = amqp_url();
    s.events.events_exchange = format!("registrar.events.{database}");
    s.events.queue_prefix = database.to_string();
    s.database.database_url = database_url(database);
    s.database.db_pool_size = 8;
    s.cluster.node_id = "test-node".into();
    s.cluster.shards = 16;
    s.logging.log = "warn".into();
    s
}

/// Create and migrate a fresh database; its name.
pub async fn fresh_database() -> String {
    let name = format!("registrar_test_{}", Uuid::new_v4().simple());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url())
        .await
        .expect("connect to the test PostgreSQL (run deploy/local/services.sh)");
    let create = format!("CREATE DATABASE {name}");
    sqlx::query(&create)
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let settings = test_settings(&name);
    Application::migrate(&settings).await.expect("migrate");
    name
}

impl Drop for TestApp {
    /// End the node's database sessions. Its pools are not closed when the test's runtime
    /// goes (they outlive it until the process ends), so a whole suite would run out of
    /// `max_connections`; this node's sessions are told apart from other nodes' on the
    /// same database (a cluster test) by their `application_name`.
    fn drop(&mut self) {
        let url = self.settings.database.database_url.clone();
        let Some(database) = url
            .rsplit('/')
            .next()
            .map(|d| d.split('?').next().unwrap_or(d).to_string())
        else {
            return;
        };
        let node = registrar::store::application_name(&self.settings.cluster.node_id);
        let ended = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to end the node's sessions");
            runtime.block_on(async {
                let Ok(admin) = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin_url())
                    .await
                else {
                    return;
                };
                let _ = sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                      WHERE datname = $1 AND application_name = $2 AND pid <> pg_backend_pid()",
                )
                .bind(&database)
                .bind(&node)
                .execute(&admin)
                .await;
                admin.close().await;
            });
        });
        let _ = ended.join();
    }
}

impl TestApp {
    /// A fresh database and a server on it.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Like [`TestApp::spawn`], adjusting the settings first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let name = fresh_database().await;
        let mut settings = test_settings(&name);
        adjust(&mut settings);
        Self::start(settings).await
    }

    /// Start a server with `settings` (on an existing database).
    pub async fn start(settings: Settings) -> TestApp {
        registrar::telemetry::init(&settings.logging.log, settings.logging.log_format);
        let app = Application::build(settings.clone())
            .await
            .expect("build application");
        Self::serve(app, settings).await
    }

    /// Like [`TestApp::start`] with pools the test made (e.g. one of them through a proxy).
    pub async fn start_with_pools(
        settings: Settings,
        pools: registrar::store::NodePools,
    ) -> TestApp {
        registrar::telemetry::init(&settings.logging.log, settings.logging.log_format);
        let app = Application::build_with_pools(settings.clone(), pools)
            .await
            .expect("build application");
        Self::serve(app, settings).await
    }

    async fn serve(app: Application, settings: Settings) -> TestApp {
        let address = format!("http://{}", app.address());
        let pool = app.state().pool.clone();
        let feed = app.state().feed.clone();
        let commits = app.state().commits.clone();
        let relay_wake = app.state().relay_wake.clone();
        let registration = app.state().registration.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = rx.await;
            })
            .await
            .expect("server");
        });
        let keys = TokenKeys::new(SECRET.as_bytes(), 3600);
        let admin_id: Uuid = sqlx::query_scalar(
            "INSERT INTO students (id, username, password_hash, role) VALUES ($1, 'admin', $2, 'admin')
             ON CONFLICT (username) DO UPDATE SET role = 'admin' RETURNING id",
        )
        .bind(Uuid::new_v4())
        .bind(&*DEMO_HASH)
        .fetch_one(&pool)
        .await
        .expect("admin account");
        let admin_token = keys.issue(admin_id, Role::Admin).0;
        let client = Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .unwrap();
        TestApp {
            address,
            pool,
            client,
            settings,
            admin_token,
            feed,
            commits,
            relay_wake,
            registration,
            keys,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// Stop gracefully (in-flight requests finish, actors stop).
    pub async fn stop(mut self) -> Settings {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
        self.settings.clone()
    }

    /// Batches committed by this server so far.
    pub fn batches(&self) -> u64 {
        self.commits
            .batches
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A token for `id` with `role`.
    pub fn token(&self, id: Uuid, role: Role) -> String {
        self.keys.issue(id, role).0
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request to `path`, with `token` as its bearer if given; the caller adds the rest.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let req = self.client.request(method, self.url(path));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let req = self.request(Method::GET, path, token);
        req.send().await.expect("request")
    }

    /// GET `path` and read its JSON body.
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        let r = self.get(path, token).await;
        r.json().await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let req = self.request(Method::POST, path, token).json(&body);
        req.send().await.expect("request")
    }

    /// POST `body` to `path` and assert the answer is a problem+json with `status` and
    /// `code`; its body.
    pub async fn post_expect_problem(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
        status: StatusCode,
        code: &str,
    ) -> Value {
        let r = self.post(path, token, body).await;
        expect_problem(&format!("POST {path}"), r, status, code).await
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, Some(&self.admin_token), body.clone()).await;
        let status = r.status();
        let out: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path} {body} -> {status} {out}");
        out
    }

    /// A term with every standing's window open now; its id.
    pub async fn open_term(&self) -> Uuid {
        let code = format!("T{}", &Uuid::new_v4().simple().to_string()[..8]);
        let term = self
            .admin_post("/api/v1/terms", json!({"code": code, "name": "Test term"}))
            .await;
        let id: Uuid = term["id"].as_str().unwrap().parse().unwrap();
        for standing in ["freshman", "sophomore", "junior", "senior", "graduate"] {
            self.admin_post(
                &format!("/api/v1/terms/{id}/windows"),
                json!({"standing": standing, "opens_at": Utc::now() - TimeDelta::hours(1), "closes_at": Utc::now() + TimeDelta::hours(2)}),
            )
            .await;
        }
        id
    }

    /// The catalog most tests need: an open term, the 3-credit course `CS101` and its
    /// section `01` with `capacity` seats, `waitlist` places and `meetings`;
    /// (term id, section id).
    pub async fn open_cs101(&self, capacity: u32, waitlist: u32, meetings: Value) -> (Uuid, Uuid) {
        let term = self.open_term().await;
        self.course("CS101", 3, &[]).await;
        let section = self
            .section(term, "CS101", "01", capacity, waitlist, meetings)
            .await;
        (term, section)
    }

    /// A course (ignores "already exists").
    pub async fn course(&self, code: &str, credits: u32, prerequisites: &[&str]) {
        let r = self
            .post("/api/v1/courses", Some(&self.admin_token), json!({"code": code, "title": format!("{code} title"), "credits": credits, "prerequisites": prerequisites}))
            .await;
        assert!(
            r.status() == StatusCode::CREATED || r.status() == StatusCode::CONFLICT,
            "course {code}: {}",
            r.status()
        );
    }

    /// A section; its id.
    pub async fn section(
        &self,
        term: Uuid,
        course: &str,
        code: &str,
        capacity: u32,
        waitlist: u32,
        meetings: Value,
    ) -> Uuid {
        let s = self
            .admin_post(
                "/api/v1/sections",
                json!({"term_id": term, "course_code": course, "section_code": code, "capacity": capacity, "waitlist_capacity": waitlist, "meetings": meetings}),
            )
            .await;
        s["id"].as_str().unwrap().parse().unwrap()
    }

    /// `n` senior students with 18 credits and the given completed courses; (id, token) each.
    pub async fn students(&self, n: usize, completed: &[&str]) -> Vec<(Uuid, String)> {
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
        let names: Vec<String> = ids.iter().map(|id| format!("u{}", id.simple())).collect();
        let completed: Vec<String> = completed.iter().map(|s| s.to_string()).collect();
        sqlx::query(
            "INSERT INTO students (id, username, password_hash, role, standing, max_credits, completed_courses)
             SELECT i, u, $3, 'student', 'senior', 18, $4 FROM unnest($1::uuid[], $2::text[]) AS t(i, u)",
        )
        .bind(&ids)
        .bind(&names)
        .bind(&*DEMO_HASH)
        .bind(&completed)
        .execute(&self.pool)
        .await
        .expect("insert students");
        ids.into_iter()
            .map(|id| (id, self.token(id, Role::Student)))
            .collect()
    }

    /// One student; (id, token).
    pub async fn student(&self) -> (Uuid, String) {
        self.students(1, &[]).await.remove(0)
    }

    /// POST an enroll; (status, body).
    pub async fn enroll(&self, token: &str, section: Uuid) -> (StatusCode, Value) {
        let path = format!("/api/v1/sections/{section}/enrollments");
        answer(self.post(&path, Some(token), json!({})).await).await
    }

    /// Enroll each of `students` in `section`, one after another; their statuses in order.
    pub async fn enroll_each(&self, students: &[(Uuid, String)], section: Uuid) -> Vec<StatusCode> {
        let mut statuses = Vec::with_capacity(students.len());
        for (_, token) in students {
            statuses.push(self.enroll(token, section).await.0);
        }
        statuses
    }

    /// DELETE my enrollment; (status, body).
    pub async fn drop_section(&self, token: &str, section: Uuid) -> (StatusCode, Value) {
        let path = format!("/api/v1/sections/{section}/enrollments/me");
        let req = self.request(Method::DELETE, &path, Some(token));
        answer(req.send().await.expect("request")).await
    }

    /// POST a swap out of `drop` into `add`, all or nothing; (status, body).
    pub async fn swap(&self, token: &str, drop: Uuid, add: Uuid) -> (StatusCode, Value) {
        let body = json!({"drop": drop, "add": add});
        let r = self.post("/api/v1/enrollments/swap", Some(token), body);
        answer(r.await).await
    }

    /// The section as the API shows it.
    pub async fn section_view(&self, section: Uuid) -> Value {
        let path = format!("/api/v1/sections/{section}");
        self.get_json(&path, None).await
    }

    /// Subscribe through `client` to the live seat counts of `section`.
    pub async fn seat_stream(&self, client: &Client, section: Uuid) -> EventStream {
        let path = format!("/api/v1/sections/{section}/seats/stream");
        let r = client.get(self.url(&path)).send().await.expect("request");
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        EventStream::new(r)
    }

    /// A number from the database: `sql` selects one `int8` with `$1` bound to `id`.
    pub async fn count(&self, sql: &str, id: Uuid) -> i64 {
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Active rows of a section from the database: (student, status, rank among waitlisted).
    pub async fn rows(&self, section: Uuid) -> Vec<(Uuid, String, Option<i64>)> {
        sqlx::query_as(
            "SELECT student_id, status,
                    CASE WHEN status = 'waitlisted' THEN rank() OVER (PARTITION BY status ORDER BY waitlist_seq) END
               FROM enrollments WHERE section_id = $1 AND status <> 'dropped'",
        )
        .bind(section)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}

/// The value of the unlabelled metric `name` on `/metrics` (0 if absent).
pub async fn metric(app: &TestApp, name: &str) -> i64 {
    let text = app.get("/metrics", None).await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Meetings helper: `meet("mon", "09:00", "10:00")`.
pub fn meet(day: &str, start: &str, end: &str) -> Value {
    json!([{"day": day, "start": start, "end": end}])
}

/// An answer's status and JSON body (`null` when it has none).
pub async fn answer(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Assert a problem+json answer with `code`.
pub fn assert_problem(status: StatusCode, body: &Value, expected_status: StatusCode, code: &str) {
    check_problem("answer", status, body, expected_status, code);
}

/// Assert `r` is an `application/problem+json` answer with `status` and `code`; its body.
/// `request` names the request in a failure message.
pub async fn expect_problem(request: &str, r: Response, status: StatusCode, code: &str) -> Value {
    let content_type = r.headers().get("content-type").cloned();
    let (got, body) = answer(r).await;
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{request}: status {got}, body {body}"
    );
    check_problem(request, got, &body, status, code);
    body
}

fn check_problem(
    request: &str,
    status: StatusCode,
    body: &Value,
    expected: StatusCode,
    code: &str,
) {
    assert_eq!(status, expected, "{request}: body {body}");
    assert_eq!(body["code"], code, "{request}: body {body}");
    assert_eq!(body["status"], expected.as_u16(), "{request}: body {body}");
    assert!(
        body["title"].is_string() && body["type"].is_string() && body["detail"].is_string(),
        "{request}: body {body}"
    );
}

/// How long [`wait_until`] waits before it fails the test: far above what any condition
/// here takes on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// Poll `done` every 10 ms until it holds; fail the test, naming `what`, if it does not
/// within 20 s.
pub async fn wait_until<F: AsyncFnMut() -> bool>(what: &str, mut done: F) {
    let deadline = Instant::now() + PATIENCE;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A `text/event-stream` answer read one event at a time.
pub struct EventStream {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    /// Bytes received but not yet returned as an event (events may straddle chunks).
    buf: Vec<u8>,
    /// How long to wait for the next event before failing the test.
    patience: Duration,
}

impl EventStream {
    /// Read `r`, waiting at most 5 s for each event.
    pub fn new(r: Response) -> EventStream {
        EventStream {
            body: r.bytes_stream().map(|c| c.map(|b| b.to_vec())).boxed(),
            buf: Vec::new(),
            patience: Duration::from_secs(5),
        }
    }

    /// The same, waiting at most `patience` for each event.
    pub fn with_patience(mut self, patience: Duration) -> EventStream {
        self.patience = patience;
        self
    }

    /// The `data` of the next event as JSON (keep-alive comments are skipped).
    pub async fn next_event(&mut self) -> Value {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.buf.drain(..end + 2).collect();
                let event = std::str::from_utf8(&event).expect("UTF-8 event");
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim)
                    .collect();
                if !data.is_empty() {
                    return serde_json::from_str(&data).expect("JSON event data");
                }
                continue;
            }
            let chunk = tokio::time::timeout(self.patience, self.body.next())
                .await
                .expect("event in time")
                .expect("stream still open")
                .expect("stream chunk");
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// Whether the server has closed the stream (its next chunk is an end or an error).
    pub async fn ended(&mut self) -> bool {
        self.body.next().await.is_none_or(|c| c.is_err())
    }
}

/// A consumer of every message published to `exchange` (an exclusive, server-named queue
/// bound with `#`), with the link that must outlive it.
pub async fn subscribe_events(exchange: &str) -> (registrar::events::amqp::Link, lapin::Consumer) {
    use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let link = registrar::events::amqp::connect(&amqp_url(), exchange)
        .await
        .expect("broker");
    let options = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    let queue = (link.channel)
        .queue_declare("".into(), options, FieldTable::default())
        .await
        .unwrap();
    let bind = QueueBindOptions::default();
    (link.channel)
        .queue_bind(
            queue.name().clone(),
            exchange.into(),
            "#".into(),
            bind,
            FieldTable::default(),
        )
        .await
        .unwrap();
    let consume = BasicConsumeOptions::default();
    let consumer = (link.channel)
        .basic_consume(
            queue.name().clone(),
            "test".into(),
            consume,
            FieldTable::default(),
        )
        .await
        .unwrap();
    (link, consumer)
}

/// A failpoint set for this test, cleared when the test ends, however it ends.
pub struct Failpoint(&'static str);

impl Failpoint {
    /// Set failpoint `name` to strike for `key` (see `registrar::faults`).
    pub fn set(name: &'static str, key: impl std::fmt::Display) -> Failpoint {
        registrar::faults::set(name, &format!("return({key})")).expect("failpoint");
        Failpoint(name)
    }
}

impl Drop for Failpoint {
    fn drop(&mut self) {
        registrar::faults::clear(self.0);
    }
}

/// Every invariant `registrar verify` checks holds on `app`'s database.
pub async fn verified(app: &TestApp) {
    let found = registrar::verify::violations(&app.pool).await.unwrap();
    let broken: Vec<_> = found.iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(broken.is_empty(), "verify: {broken:?}");
}
