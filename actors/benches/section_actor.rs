//! Criterion benches of the decision path: the pure ledger alone, and the real section
//! actor deciding and committing batches against the in-memory store (so the numbers are
//! the actor's own cost, without PostgreSQL). Run: `cargo bench --bench section_actor`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use registrar_actors::memory::MemoryStore;
use registrar_actors::store::NoObserver;
use registrar_actors::{
    Call, Command, RegistryConfig, RequestId, SeatLedger, SectionId, SectionRegistry, StudentId,
};
use std::sync::Arc;

fn ledger(c: &mut Criterion) {
    let students: Vec<StudentId> = (0..1000).map(|_| StudentId::new_v4()).collect();
    let mut group = c.benchmark_group("ledger");
    group.throughput(Throughput::Elements(students.len() as u64));
    group.bench_function("1000 enrolls, capacity 50, waitlist 100", |b| {
        b.iter(|| {
            let mut l = SeatLedger::new(50, 100);
            for s in &students {
                l.apply(&Command::Enroll {
                    student: *s,
                    request: RequestId::new_v4(),
                    seat_only: false,
                    attrs: Vec::new(),
                    permits: Vec::new(),
                    capacity_permit: None,
                });
            }
            l.counts()
        })
    });
    group.finish();
}

fn actor(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("actor_decide_commit");
    for concurrent in [1usize, 100, 1000] {
        group.throughput(Throughput::Elements(concurrent as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(concurrent),
            &concurrent,
            |b, &n| {
                b.to_async(&rt).iter_batched(
                    || {
                        let store = Arc::new(MemoryStore::new());
                        let section = SectionId::new_v4();
                        store.add_section(section, (n / 2) as u32, n as u32);
                        let registry = SectionRegistry::new(
                            store,
                            Arc::new(NoObserver),
                            RegistryConfig::default(),
                        );
                        (Arc::new(registry), section)
                    },
                    |(registry, section)| async move {
                        let calls = (0..n).map(|_| {
                            let registry = registry.clone();
                            async move {
                                registry
                                    .call(
                                        section,
                                        Call::new(Command::Enroll {
                                            student: StudentId::new_v4(),
                                            request: RequestId::new_v4(),
                                            seat_only: false,
                                            attrs: Vec::new(),
                                            permits: Vec::new(),
                                            capacity_permit: None,
                                        }),
                                    )
                                    .await
                                    .expect("decided")
                            }
                        });
                        join_all(calls).await;
                        registry.stop_all().await;
                    },
                    criterion::BatchSize::SmallInput,
                )
            },
        );
    }
    group.finish();
}

criterion_group!(benches, ledger, actor);
criterion_main!(benches);
