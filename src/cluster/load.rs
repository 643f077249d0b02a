//! The load this node reports with every heartbeat ([`LoadReport`]): decisions per second
//! overall, by shard and for its hottest sections, the client requests it answered, and
//! the health of its broker link and Redis mirror. Rates are over the interval since the
//! previous report. The last report is kept for `/metrics` and for a rebalance by load.
//!
//! The health of the broker link and of the mirror is not this module's to judge: it asks
//! the [`HealthProbe`] it is given at start (startup wires the relay and the mirror in).

use super::shard_of;
use crate::metrics::{RequestFigures, RequestSnapshot};
use crate::store::cluster::{HotSection, LoadReport, MirrorHealth};
use registrar_actors::{SectionId, SectionRegistry};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::time::Instant;

/// How many of its hottest sections a node reports.
const HOT_SECTIONS_REPORTED: usize = 20;

/// The health of what the node depends on, as its load report carries it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DependencyHealth {
    /// Whether the outbox relay holds a broker link.
    pub broker_connected: bool,
    /// The Redis mirror.
    pub redis: MirrorHealth,
}

/// Who knows the health of the broker link and of the mirror.
pub trait HealthProbe: Send + Sync {
    /// Their health now.
    fn health(&self) -> DependencyHealth;
}

/// Builds the load reports (see module docs).
pub struct LoadReporter {
    /// This node's id, named in its hot sections.
    node: Arc<str>,
    /// The shard count.
    shards: u32,
    /// The actors whose calls are counted.
    registry: Arc<SectionRegistry>,
    /// Client requests answered, for the report (the HTTP layer records them).
    requests: Arc<RequestFigures>,
    /// The broker link's and the mirror's health (set once at start; they are built after
    /// the node). Until then: disconnected, no mirror.
    health: OnceLock<Arc<dyn HealthProbe>>,
    /// The request figures at the last report, for rates over the interval.
    last_requests: Mutex<RequestSnapshot>,
    /// Calls per section at the last report, for rates.
    last_loads: Mutex<(Instant, HashMap<SectionId, u64>)>,
    /// The last report.
    last_report: Mutex<LoadReport>,
}

/// A rate with one decimal, as reported.
fn tenths(rate: f64) -> f64 {
    (rate * 10.0).round() / 10.0
}

impl LoadReporter {
    /// A reporter over `registry`'s actors and `requests`.
    pub fn new(
        node: Arc<str>,
        shards: u32,
        registry: Arc<SectionRegistry>,
        requests: Arc<RequestFigures>,
    ) -> Self {
        Self {
            node,
            shards,
            registry,
            requests,
            health: OnceLock::new(),
            last_requests: Mutex::default(),
            last_loads: Mutex::new((Instant::now(), HashMap::new())),
            last_report: Mutex::default(),
        }
    }

    /// Connect the probe of the broker link's and the mirror's health (once, at start).
    pub fn set_health_probe(&self, probe: Arc<dyn HealthProbe>) {
        let _ = self.health.set(probe);
    }

    /// The load figures since the last report (which this one becomes).
    pub fn report(&self) -> LoadReport {
        let loads = self.registry.section_loads();
        let mut last = self.last_loads.lock().expect("load lock");
        let now = Instant::now();
        let secs = now.duration_since(last.0).as_secs_f64().max(0.001);
        let mut rates: Vec<(SectionId, f64, usize)> = loads
            .iter()
            .map(|l| {
                let before = last.1.get(&l.section).copied().unwrap_or(0);
                let delta = l.calls.saturating_sub(before.min(l.calls));
                (l.section, delta as f64 / secs, l.in_flight)
            })
            .collect();
        *last = (now, loads.iter().map(|l| (l.section, l.calls)).collect());
        drop(last);
        // `+ 0.0`: an empty f64 sum is -0.0, which the console would print as such.
        let total: f64 = rates.iter().map(|r| r.1).sum::<f64>() + 0.0;
        let mut by_shard: BTreeMap<u32, f64> = BTreeMap::new();
        for (section, rate, _) in &rates {
            *by_shard
                .entry(shard_of(section.0, self.shards))
                .or_default() += rate;
        }
        let shard_load: BTreeMap<u32, f64> = by_shard
            .into_iter()
            .filter(|(_, rate)| *rate > 0.0)
            .map(|(shard, rate)| (shard, tenths(rate)))
            .collect();
        rates.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.2.cmp(&a.2)));
        let hot_sections: Vec<HotSection> = rates
            .iter()
            .filter(|r| r.1 > 0.0 || r.2 > 0)
            .take(HOT_SECTIONS_REPORTED)
            .map(|(section, rate, in_flight)| HotSection {
                section_id: section.0,
                shard: shard_of(section.0, self.shards),
                node_id: self.node.to_string(),
                decisions_per_s: tenths(*rate),
                in_flight: *in_flight,
            })
            .collect();
        let requests = self.requests.snapshot();
        let before = std::mem::replace(
            &mut *self.last_requests.lock().expect("requests lock"),
            requests.clone(),
        );
        let per_s = |now: u64, then: u64| tenths(now.saturating_sub(then) as f64 / secs);
        let health = self
            .health
            .get()
            .map(|probe| probe.health())
            .unwrap_or_default();
        let report = LoadReport {
            decisions_per_s: tenths(total),
            in_flight: self.registry.in_flight() as i32,
            hot_sections,
            shard_load,
            requests_per_s: per_s(requests.answered, before.answered),
            p99_ms: requests
                .p99_ms_since(&before)
                .map(|ms| (ms * 100.0).round() / 100.0),
            overloaded_per_s: per_s(requests.overloaded, before.overloaded),
            broker_connected: health.broker_connected,
            redis: health.redis,
        };
        *self.last_report.lock().expect("report lock") = report.clone();
        report
    }

    /// Decisions per second at the last report.
    pub fn last_rate(&self) -> f64 {
        self.last_report
            .lock()
            .expect("report lock")
            .decisions_per_s
    }

    /// Decisions per second by shard at the last report, busiest first.
    pub fn shard_loads(&self) -> Vec<(u32, f64)> {
        let report = self.last_report.lock().expect("report lock");
        let mut loads: Vec<(u32, f64)> = report
            .shard_load
            .iter()
            .map(|(shard, rate)| (*shard, *rate))
            .collect();
        loads.sort_by(|a, b| b.1.total_cmp(&a.1));
        loads
    }
}
