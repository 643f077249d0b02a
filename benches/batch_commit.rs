//! Criterion bench of the section actor's write-through: one [`PgSectionStore::commit`] of
//! a batch of 1, 10, 100 and 1000 enroll decisions against a real PostgreSQL, throughput
//! in decisions per second. This is the cost batching amortizes: one transaction (fence
//! check, enrollment rows, counters with the deferred counter trigger, audit rows, outbox
//! rows) per batch instead of per request.
//!
//! The batches are decided by a real [`SeatLedger`], exactly as the actor does: apply each
//! `Enroll`, collect the decisions' changes and attempt records. After each measured
//! commit the same students are dropped again in an unmeasured commit, so every iteration
//! enrolls into the same small section state and the bench needs only 1000 students.
//!
//! Needs PostgreSQL: it (re)creates the database `registrar_bench_commit` through the admin
//! URL in `REGISTRAR_TEST_DATABASE_URL` (default
//! `postgres://registrar:registrar@127.0.0.1:5432/postgres`), migrates it, claims the shards
//! and inserts a term, a course, a section and the students by SQL.
//! Run: `cargo bench -j2 --bench batch_commit`.

use chrono::Utc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use registrar::cluster::shard_of;
use registrar::store::cluster as membership;
use registrar::store::{self, sections::PgSectionStore};
use registrar_actors::{
    AttemptRecord, Command, CommitBatch, RequestId, SeatDrop, SeatLedger, SectionId, SectionStore,
    StudentId,
};
use sqlx::PgPool;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

const DATABASE: &str = "registrar_bench_commit";
const NODE: &str = "bench-node";
const SHARDS: u32 = 16;
const BATCH_SIZES: [usize; 4] = [1, 10, 100, 1000];

/// The section under test, its students, and the ledger that mirrors what is committed.
struct Fixture {
    store: PgSectionStore,
    section: SectionId,
    shard: u32,
    epoch: i64,
    students: Vec<StudentId>,
    ledger: Mutex<SeatLedger>,
}

fn admin_url() -> String {
    std::env::var("REGISTRAR_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://registrar:registrar@127.0.0.1:5432/postgres".into())
}

fn database_url() -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{DATABASE}")
}

async fn recreate_database() -> Result<(), sqlx::Error> {
    let admin = store::connect(&admin_url(), 2).await?;
    // Database names cannot be bound parameters; DATABASE is a constant.
    sqlx::query("DROP DATABASE IF EXISTS registrar_bench_commit WITH (FORCE)")
        .execute(&admin)
        .await?;
    sqlx::query("CREATE DATABASE registrar_bench_commit")
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}

async fn setup() -> Result<Fixture, Box<dyn std::error::Error>> {
    recreate_database().await?;
    let pool: PgPool = store::connect(&database_url(), 4).await?;
    store::migrate(&pool).await?;
    take_every_shard(&pool).await?;

    let term = Uuid::new_v4();
    sqlx::query("INSERT INTO terms (id, code, name) VALUES ($1, 'BENCH', 'Bench term')")
        .bind(term)
        .execute(&pool)
        .await?;
    sqlx::query("INSERT INTO courses (code, title, credits) VALUES ('BENCH101', 'Bench', 3)")
        .execute(&pool)
        .await?;
    let section = Uuid::new_v4();
    let shard = shard_of(section, SHARDS);
    sqlx::query(
        "INSERT INTO sections (id, term_id, course_code, section_code, capacity, waitlist_capacity, shard)
         VALUES ($1, $2, 'BENCH101', '01', 1000000, 0, $3)",
    )
    .bind(section)
    .bind(term)
    .bind(shard as i32)
    .execute(&pool)
    .await?;
    let max = *BATCH_SIZES.iter().max().unwrap_or(&1) as i32;
    let students: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO students (id, username, password_hash, standing)
         SELECT gen_random_uuid(), 'bench' || g, 'unused', 'senior' FROM generate_series(1, $1) g
         RETURNING id",
    )
    .bind(max)
    .fetch_all(&pool)
    .await?;

    let store = PgSectionStore::new(pool, NODE.to_string());
    let snap = store.load(SectionId(section)).await?;
    let ledger = SeatLedger::restore(
        snap.capacity,
        snap.waitlist_capacity,
        snap.enrolled,
        snap.waitlist,
        snap.next_waitlist_seq,
    );
    Ok(Fixture {
        store,
        section: SectionId(section),
        shard: snap.shard,
        epoch: snap.epoch,
        students: students.into_iter().map(StudentId).collect(),
        ledger: Mutex::new(ledger),
    })
}

/// Decide one command per student on the ledger and package the batch as the actor does.
fn decide(fx: &Fixture, students: &[StudentId], enroll: bool) -> CommitBatch {
    let mut ledger = fx.ledger.lock().unwrap_or_else(|e| e.into_inner());
    let mut changes = Vec::new();
    let mut attempts = Vec::with_capacity(students.len());
    for &student in students {
        let request = RequestId::new_v4();
        let command = if enroll {
            Command::Enroll {
                student,
                request,
                seat_only: false,
                attrs: Vec::new(),
                permits: Vec::new(),
                capacity_permit: None,
            }
        } else {
            Command::Drop {
                student,
                request,
                seat: SeatDrop::Plain,
            }
        };
        let decision = ledger.apply(&command);
        assert!(decision.outcome.is_ok(), "bench decision refused");
        attempts.push(AttemptRecord {
            request,
            student: Some(student),
            action: command.action(),
            outcome: decision.outcome,
            home: None,
        });
        changes.extend(decision.changes);
    }
    CommitBatch {
        section: fx.section,
        shard: fx.shard,
        epoch: fx.epoch,
        decided_at: Utc::now(),
        counts: ledger.counts(),
        changes,
        attempts,
        after: None,
    }
}

fn batch_commit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let fx = match rt.block_on(setup()) {
        Ok(fx) => fx,
        Err(e) => panic!(
            "batch_commit needs PostgreSQL at {} (REGISTRAR_TEST_DATABASE_URL): {e}",
            admin_url()
        ),
    };
    let mut group = c.benchmark_group("pg_batch_commit");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for size in BATCH_SIZES {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::new("enroll", size), &size, |b, &size| {
            let fx = &fx;
            b.to_async(&rt).iter_custom(|iters| async move {
                let students = &fx.students[..size];
                let mut measured = Duration::ZERO;
                for _ in 0..iters {
                    let enroll = decide(fx, students, true);
                    let started = Instant::now();
                    fx.store
                        .commit(&enroll)
                        .await
                        .expect("enroll batch commits");
                    measured += started.elapsed();
                    // Free the seats again, unmeasured, so the next iteration starts alike.
                    let drop = decide(fx, students, false);
                    fx.store.commit(&drop).await.expect("drop batch commits");
                }
                measured
            })
        });
    }
    group.finish();
}

criterion_group!(benches, batch_commit);
criterion_main!(benches);

/// Make `NODE` the only member, owning every shard, as the first node of a cluster does.
async fn take_every_shard(pool: &PgPool) -> Result<(), Box<dyn std::error::Error>> {
    let incarnation = Uuid::new_v4();
    membership::ensure_cluster(pool, SHARDS).await?;
    // A lease of 0: take the id whatever an earlier run left behind.
    if !membership::register(pool, NODE, incarnation, "http://127.0.0.1:0", 0).await? {
        return Err("the bench's node id is held".into());
    }
    membership::set_state(
        pool,
        NODE,
        incarnation,
        &[membership::NodeState::Joining],
        membership::NodeState::Active,
    )
    .await?;
    membership::lead(pool, NODE, incarnation, 60_000).await?;
    let mut tx = membership::begin_as_coordinator(pool, NODE, incarnation)
        .await?
        .ok_or("no coordinator lease")?;
    let all: Vec<(u32, String)> = (0..SHARDS).map(|s| (s, NODE.to_string())).collect();
    membership::assign_orphans(&mut tx, &all).await?;
    tx.commit().await?;
    Ok(())
}
