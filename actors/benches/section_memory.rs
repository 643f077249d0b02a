//! Resident memory of section actors, measured, not estimated: the RSS growth of this
//! process (VmRSS in /proc/self/status) when 100,000 sections are activated, divided by
//! the sections; and the growth per remembered request id of one hot section (a section
//! keeps the answers of its last `RECENT_REQUESTS` requests so that a resent request gets
//! the same answer). The in-memory store is filled before the first reading, so only the
//! actors, their mailboxes, ledgers and the registry's entries are counted.
//!
//! Run: `cargo bench -p registrar-actors --bench section_memory` (SECTIONS=N to change the
//! count). Linux only (it reads /proc).

use registrar_actors::ledger::RECENT_REQUESTS;
use registrar_actors::memory::MemoryStore;
use registrar_actors::store::NoObserver;
use registrar_actors::{
    Call, Command, RegistryConfig, RequestId, SeatDrop, SectionId, SectionRegistry, StudentId,
};
use std::sync::Arc;
use std::time::Duration;

/// This process's resident set, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

fn main() {
    // `cargo bench` passes --bench; nothing else is expected.
    let sections: usize = std::env::var("SECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let ids: Vec<SectionId> = (0..sections).map(|_| SectionId::new_v4()).collect();
        for id in &ids {
            store.add_section(*id, 50, 100);
        }
        let hot = SectionId::new_v4();
        store.add_section(hot, 1_000_000, 0);
        let mut config = RegistryConfig::default();
        // No passivation during the measurement.
        config.section.passivate_after = Duration::from_secs(3600);
        let registry = Arc::new(SectionRegistry::new(store, Arc::new(NoObserver), config));
        // One command per section activates it without a seat taken or a waitlist entry:
        // a drop of a student who holds no place is refused (and remembered, as any answer).
        let activate = |id: SectionId| {
            let registry = registry.clone();
            async move {
                registry
                    .call(
                        id,
                        Call::new(Command::Drop {
                            student: StudentId::new_v4(),
                            request: RequestId::new_v4(),
                            seat: SeatDrop::Plain,
                        }),
                    )
                    .await
                    .expect("decided");
            }
        };
        // Warm the runtime and the allocator with a first thousand, then measure the rest.
        let warm = 1_000.min(sections / 10);
        for chunk in ids[..warm].chunks(500) {
            futures_util::future::join_all(chunk.iter().map(|id| activate(*id))).await;
        }
        let before = rss();
        for chunk in ids[warm..].chunks(500) {
            futures_util::future::join_all(chunk.iter().map(|id| activate(*id))).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = rss();
        let measured = (sections - warm) as u64;
        assert_eq!(registry.active_sections(), sections, "every section stayed active");
        let per_section = after.saturating_sub(before) as f64 / measured as f64;
        println!(
            "section_memory: {measured} sections activated: RSS +{:.1} MiB, {per_section:.0} bytes per active section (empty waitlist, one remembered request); target < 2048",
            after.saturating_sub(before) as f64 / (1024.0 * 1024.0),
        );

        // One hot section: its remembered request ids, up to the bound.
        registry
            .call(hot, Call::new(Command::Drop { student: StudentId::new_v4(), request: RequestId::new_v4(), seat: SeatDrop::Plain }))
            .await
            .expect("decided");
        let before = rss();
        let students: Vec<StudentId> = (0..RECENT_REQUESTS / 2).map(|_| StudentId::new_v4()).collect();
        for s in &students {
            for command in [
                Command::Enroll { student: *s, request: RequestId::new_v4(), seat_only: false, attrs: Vec::new(), permits: Vec::new(), capacity_permit: None,  },
                Command::Drop { student: *s, request: RequestId::new_v4(), seat: SeatDrop::Plain },
            ] {
                registry.call(hot, Call::new(command)).await.expect("decided");
            }
        }
        let after = rss();
        let remembered = (students.len() * 2) as f64;
        println!(
            "section_memory: one hot section remembering {remembered:.0} request ids (its bound): RSS +{:.1} KiB, {:.0} bytes per remembered request",
            after.saturating_sub(before) as f64 / 1024.0,
            after.saturating_sub(before) as f64 / remembered,
        );
        registry.stop_all().await;

        // Baseline: bare ractor actors, nothing of ours in them.
        let before = rss();
        let mut bare = Vec::with_capacity(sections);
        for _ in 0..sections {
            let (actor, handle) = ractor::Actor::spawn(None, Bare, ()).await.expect("spawn");
            bare.push((actor, handle));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = rss();
        println!(
            "section_memory: baseline, {sections} bare ractor actors: {:.0} bytes per actor",
            after.saturating_sub(before) as f64 / sections as f64,
        );
        for (actor, handle) in bare {
            actor.stop(None);
            let _ = handle.await;
        }
    });
}

/// An actor with no state that handles no message: the runtime's own cost per actor.
struct Bare;

impl ractor::Actor for Bare {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _me: ractor::ActorRef<()>,
        _args: (),
    ) -> Result<(), ractor::ActorProcessingErr> {
        Ok(())
    }
}
