//! Criterion bench of the outbox relay's throughput against the real PostgreSQL and
//! RabbitMQ: draining 5000 committed outbox rows (claim, publish with confirms, mark),
//! next to the baseline of publishing the same 5000 messages with confirms straight from
//! memory. Run: `cargo bench --bench relay` (services from `deploy/local/services.sh`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lapin::BasicProperties;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use registrar::events::amqp;
use registrar::events::relay::{OutboxRelay, RelayStats, backlog};
use registrar::shutdown::ShutdownTrigger;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const EVENTS: usize = 5000;
const EXCHANGE: &str = "registrar.events.bench";

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

async fn fresh_pool() -> PgPool {
    let admin_url = env(
        "REGISTRAR_TEST_DATABASE_URL",
        "postgres://registrar:registrar@127.0.0.1:5432/postgres",
    );
    let admin = PgPool::connect(&admin_url)
        .await
        .expect("PostgreSQL (run deploy/local/services.sh)");
    sqlx::query("DROP DATABASE IF EXISTS registrar_bench_relay WITH (FORCE)")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE registrar_bench_relay")
        .execute(&admin)
        .await
        .unwrap();
    let url = format!(
        "{}/registrar_bench_relay",
        admin_url.rsplit_once('/').unwrap().0
    );
    let pool = PgPool::connect(&url).await.unwrap();
    registrar::store::migrate(&pool).await.unwrap();
    pool
}

async fn fill_outbox(pool: &PgPool) {
    sqlx::query(
        "INSERT INTO outbox (event_id, routing_key, payload)
         SELECT gen_random_uuid(), 'enrollment.created',
                jsonb_build_object('type', 'enrollment.created', 'section_id', gen_random_uuid(), 'seats_taken', g, 'capacity', 100000)
           FROM generate_series(1, $1) AS g",
    )
    .bind(EVENTS as i32)
    .execute(pool)
    .await
    .unwrap();
}

/// A queue bound to every event of the bench exchange that keeps only the newest message;
/// its link (keep it alive while the bench runs).
async fn bind_sink(amqp_url: &str) -> amqp::Link {
    let link = amqp::connect(amqp_url, EXCHANGE).await.expect("RabbitMQ");
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    let queue = format!("{EXCHANGE}.sink");
    link.channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            args,
        )
        .await
        .unwrap();
    link.channel
        .queue_bind(
            queue.as_str().into(),
            EXCHANGE.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    link
}

fn relay(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let amqp_url = env(
        "REGISTRAR_TEST_AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
    );
    let pool = rt.block_on(fresh_pool());
    // The relay publishes `mandatory`: without a bound queue nothing would be marked. The
    // sink keeps one message, so it never grows.
    let sink = rt.block_on(bind_sink(&amqp_url));
    let mut group = c.benchmark_group("relay");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));

    group.bench_function("baseline: publish 5000 with confirms from memory", |b| {
        let link = rt
            .block_on(amqp::connect(&amqp_url, EXCHANGE))
            .expect("RabbitMQ");
        rt.block_on(link.channel.confirm_select(ConfirmSelectOptions::default()))
            .unwrap();
        let body = serde_json::to_vec(
            &serde_json::json!({"type": "enrollment.created", "seats_taken": 1}),
        )
        .unwrap();
        b.to_async(&rt).iter(|| async {
            let mut confirms = Vec::with_capacity(EVENTS);
            for _ in 0..EVENTS {
                let props = BasicProperties::default().with_delivery_mode(2);
                let confirm = link
                    .channel
                    .basic_publish(
                        EXCHANGE.into(),
                        "enrollment.created".into(),
                        BasicPublishOptions::default(),
                        &body,
                        props,
                    )
                    .await
                    .unwrap();
                confirms.push(confirm);
            }
            for c in confirms {
                assert!(c.await.unwrap().is_ack());
            }
        })
    });

    group.bench_function("relay: drain 5000 outbox rows", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (pool, amqp_url) = (pool.clone(), amqp_url.clone());
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    fill_outbox(&pool).await;
                    let stop = ShutdownTrigger::new();
                    let relay = OutboxRelay::new(
                        pool.clone(),
                        amqp_url.clone(),
                        EXCHANGE.into(),
                        500,
                        Arc::new(Notify::new()),
                        Arc::new(RelayStats::default()),
                    );
                    let started = Instant::now();
                    let task = tokio::spawn(relay.run(stop.subscribe()));
                    while backlog(&pool).await.unwrap() > 0 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    total += started.elapsed();
                    stop.fire();
                    task.await.unwrap();
                }
                total
            }
        })
    });
    group.finish();
    drop(sink);
}

criterion_group!(benches, relay);
criterion_main!(benches);
