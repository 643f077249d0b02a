//! The node's Prometheus metrics, kept with `prometheus-client`: one [`Metrics`] per node,
//! owned by the HTTP state, holding the registry `/metrics` encodes. Tests run several
//! nodes in one process, so there is no global recorder: each part creates the metrics it
//! observes (request latency here, decisions in the registration service, commit batches
//! in the committer, shard moves in the cluster node) and the registry holds clones of
//! them. Counters that already live as atomics in the parts' stats structs are read at
//! scrape time by a collector registered here but written above every layer it reads
//! (`http::figures`).
//!
//! This module is a leaf: it imports no other module of the crate, so every layer can be
//! handed its small handles ([`DecisionCounter`], [`CommitHistograms`], [`CommitStats`],
//! [`RequestFigures`]) without an arrow pointing back up.
//!
//! [`RequestFigures`] is the node-level side of the request figures: answered requests,
//! 503 `overloaded` answers and a bucketed latency of registration requests, which the
//! cluster node turns into rates and a p99 per heartbeat for the operator console.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use registrar_actors::{Change, ChangeKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the request and commit duration histograms.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds (seconds) of the shard move duration histogram.
const MOVE_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Upper bounds of the commit batch size histogram (decisions per transaction).
const BATCH_BUCKETS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// A duration histogram with [`DURATION_BUCKETS`].
pub fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// A shard move duration histogram.
pub fn move_histogram() -> Histogram {
    Histogram::new(MOVE_BUCKETS)
}

/// A commit batch size histogram.
pub fn batch_histogram() -> Histogram {
    Histogram::new(BATCH_BUCKETS)
}

/// Labels of one HTTP series: the route pattern (never the raw path, so ids do not
/// multiply the series), the method and the status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// `GET`, `POST`, ... (`other` for anything else).
    pub method: &'static str,
    /// The matched route (`/api/v1/sections/{section_id}/enrollments`) or `unmatched`.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// The label of a decision: the success kind or the problem code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `enrolled`, `waitlisted`, `dropped`, `withdrawn`, `swapped` or a problem code.
    pub outcome: &'static str,
}

/// Registration decisions by outcome (shared by the service, which counts, and the
/// registry, which exports).
#[derive(Clone, Debug, Default)]
pub struct DecisionCounter(Family<OutcomeLabels, Counter>);

impl DecisionCounter {
    /// Count one answer of `outcome`.
    pub fn count(&self, outcome: &'static str) {
        self.0.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// How many answers of `outcome` were counted.
    pub fn get(&self, outcome: &'static str) -> u64 {
        self.0.get_or_create(&OutcomeLabels { outcome }).get()
    }
}

/// The histograms of the node-wide committer.
#[derive(Clone, Debug)]
pub struct CommitHistograms {
    /// Decisions written per transaction.
    pub batch_size: Histogram,
    /// Time from BEGIN to COMMIT (or failure) of each transaction.
    pub duration: Histogram,
}

impl Default for CommitHistograms {
    fn default() -> Self {
        Self {
            batch_size: batch_histogram(),
            duration: duration_histogram(),
        }
    }
}

/// Counters of the node's committed batches since start, counted by the commit fan-out
/// and read by `/metrics` (and tests).
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Batches committed.
    pub batches: AtomicU64,
    /// Changes committed (= outbox rows written).
    pub changes: AtomicU64,
    /// Seats taken.
    pub enrolled: AtomicU64,
    /// Waitlist entries added.
    pub waitlisted: AtomicU64,
    /// Drops.
    pub dropped: AtomicU64,
    /// Withdrawals (seats left after the drop deadline, with a W).
    pub withdrawn: AtomicU64,
    /// Waitlist promotions.
    pub promoted: AtomicU64,
}

impl CommitStats {
    /// Count one committed batch of `changes`.
    pub fn count(&self, changes: &[Change]) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.changes
            .fetch_add(changes.len() as u64, Ordering::Relaxed);
        for c in changes {
            let counter = match c.kind {
                ChangeKind::Enrolled { .. } | ChangeKind::Confirmed { .. } => &self.enrolled,
                ChangeKind::Waitlisted { .. } => &self.waitlisted,
                ChangeKind::Dropped {
                    withdrawn: true, ..
                } => &self.withdrawn,
                ChangeKind::Dropped { .. } => &self.dropped,
                ChangeKind::Promoted { .. }
                | ChangeKind::PromotedHeld { .. }
                | ChangeKind::OfferAccepted { .. } => &self.promoted,
                ChangeKind::CapacityChanged { .. }
                | ChangeKind::ReservesChanged { .. }
                | ChangeKind::Offered { .. }
                | ChangeKind::OfferEnded { .. }
                | ChangeKind::Blocked { .. }
                | ChangeKind::Held { .. }
                | ChangeKind::Released { .. } => continue,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The series the HTTP layer observes itself.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    /// Request latency by method, route and status.
    pub duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
    /// 503 `overloaded` answers.
    pub overloaded: Counter,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            duration: Family::new_with_constructor(duration_histogram),
            overloaded: Counter::default(),
        }
    }
}

/// One node's registry (see module docs).
pub struct Metrics {
    registry: Registry,
    /// Observed by the HTTP middleware.
    pub http: HttpMetrics,
    /// The outbox backlog, set from the cached count at each scrape.
    pub outbox_backlog: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The metrics the node's parts own, for [`Metrics::new`] to register.
pub struct Parts {
    /// From the registration service.
    pub decisions: DecisionCounter,
    /// From the committer.
    pub commits: CommitHistograms,
    /// From the cluster node.
    pub moves: Histogram,
    /// Reads the stats structs at scrape time.
    pub collector: Box<dyn prometheus_client::collector::Collector>,
}

impl Metrics {
    /// A registry holding the parts' metrics and the HTTP ones.
    pub fn new(parts: Parts) -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics::default();
        let outbox_backlog = Gauge::default();
        registry.register(
            "registrar_http_request_duration_seconds",
            "Time to answer HTTP requests (to the response head), by method, route pattern and status.",
            http.duration.clone(),
        );
        registry.register(
            "registrar_http_overloaded",
            "Requests answered 503 `overloaded` (load shed at an admission bound).",
            http.overloaded.clone(),
        );
        registry.register(
            "registrar_decisions",
            "Registration answers by outcome: enrolled, waitlisted, dropped, withdrawn, swapped, or the problem code.",
            parts.decisions.0,
        );
        registry.register(
            "registrar_commit_batch_size",
            "Decisions written per transaction of the node-wide committer.",
            parts.commits.batch_size,
        );
        registry.register(
            "registrar_commit_duration_seconds",
            "Time from BEGIN to COMMIT (or failure) of the committer's transactions.",
            parts.commits.duration,
        );
        registry.register(
            "registrar_cluster_move_duration_seconds",
            "How long the shard moves this node carried out took (quiet, stop, hand over).",
            parts.moves,
        );
        registry.register(
            "registrar_outbox_backlog",
            "Outbox rows not yet confirmed by the broker, counted at most every REGISTRAR_BACKLOG_MAX_AGE_MS (-1: unknown).",
            outbox_backlog.clone(),
        );
        registry.register_collector(parts.collector);
        Self {
            registry,
            http,
            outbox_backlog,
        }
    }

    /// The OpenMetrics text of every series.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would be a bug in a collector.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        out
    }
}

/// Upper bounds (milliseconds) of the node-level registration latency buckets.
const LATENCY_BOUNDS_MS: [f64; 16] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 2000.0, 5000.0,
    10000.0, 30000.0,
];

/// Node-level request figures the heartbeat turns into rates (see module docs).
#[derive(Debug, Default)]
pub struct RequestFigures {
    answered: AtomicU64,
    overloaded: AtomicU64,
    /// Registration requests per latency bucket (not cumulative; the last is past every bound).
    latency: [AtomicU64; LATENCY_BOUNDS_MS.len() + 1],
}

/// The figures at one moment; two of them give the figures of the time between.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestSnapshot {
    /// Client requests answered.
    pub answered: u64,
    /// 503 `overloaded` answers.
    pub overloaded: u64,
    /// Registration requests per latency bucket.
    pub latency: [u64; LATENCY_BOUNDS_MS.len() + 1],
}

impl RequestFigures {
    /// Count one answered client request; `registration` ones also count their latency.
    pub fn record(&self, registration: bool, overloaded: bool, took: Duration) {
        self.answered.fetch_add(1, Ordering::Relaxed);
        if overloaded {
            self.overloaded.fetch_add(1, Ordering::Relaxed);
        }
        if registration {
            let ms = took.as_secs_f64() * 1000.0;
            let bucket = LATENCY_BOUNDS_MS
                .iter()
                .position(|bound| ms <= *bound)
                .unwrap_or(LATENCY_BOUNDS_MS.len());
            self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The figures now.
    pub fn snapshot(&self) -> RequestSnapshot {
        RequestSnapshot {
            answered: self.answered.load(Ordering::Relaxed),
            overloaded: self.overloaded.load(Ordering::Relaxed),
            latency: std::array::from_fn(|i| self.latency[i].load(Ordering::Relaxed)),
        }
    }
}

impl RequestSnapshot {
    /// The p99 latency (milliseconds) of the registration requests counted between
    /// `earlier` and `self`, interpolated inside its bucket as Prometheus'
    /// `histogram_quantile` does; `None` if there were none.
    pub fn p99_ms_since(&self, earlier: &RequestSnapshot) -> Option<f64> {
        let counts: Vec<u64> = self
            .latency
            .iter()
            .zip(&earlier.latency)
            .map(|(now, before)| now.saturating_sub(*before))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = 0.99 * total as f64;
        let mut below = 0u64;
        for (i, n) in counts.iter().enumerate() {
            if *n > 0 && (below + n) as f64 >= rank {
                let Some(upper) = LATENCY_BOUNDS_MS.get(i) else {
                    // Past the last bound: the last bound is all that is known.
                    return Some(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1]);
                };
                let lower = if i == 0 {
                    0.0
                } else {
                    LATENCY_BOUNDS_MS[i - 1]
                };
                let within = (rank - below as f64) / *n as f64;
                return Some(lower + (upper - lower) * within);
            }
            below += n;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(latencies_ms: &[u64]) -> RequestFigures {
        let f = RequestFigures::default();
        for ms in latencies_ms {
            f.record(true, false, Duration::from_millis(*ms));
        }
        f
    }

    #[test]
    fn no_requests_no_p99() {
        let f = figures(&[]);
        assert_eq!(f.snapshot().p99_ms_since(&RequestSnapshot::default()), None);
    }

    #[test]
    fn p99_falls_in_the_bucket_of_the_slowest_percent() {
        // 99 fast requests and one slow one: the p99 is among the fast ones.
        let mut ms = vec![3; 99];
        ms.push(900);
        let p99 = figures(&ms)
            .snapshot()
            .p99_ms_since(&RequestSnapshot::default())
            .unwrap();
        assert!((2.0..=5.0).contains(&p99), "p99 {p99}");
        // Ten slow ones in a hundred: the p99 is a slow one.
        let mut ms = vec![3; 90];
        ms.extend([900; 10]);
        let p99 = figures(&ms)
            .snapshot()
            .p99_ms_since(&RequestSnapshot::default())
            .unwrap();
        assert!((750.0..=1000.0).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn p99_covers_only_the_interval() {
        let f = figures(&[900; 50]);
        let before = f.snapshot();
        for _ in 0..20 {
            f.record(true, false, Duration::from_millis(1));
        }
        f.record(false, true, Duration::from_secs(60));
        let after = f.snapshot();
        let p99 = after.p99_ms_since(&before).unwrap();
        assert!(p99 <= 1.0, "p99 {p99}");
        assert_eq!(after.answered - before.answered, 21);
        assert_eq!(after.overloaded - before.overloaded, 1);
    }

    #[test]
    fn past_the_last_bound_reports_the_last_bound() {
        let p99 = figures(&[60_000])
            .snapshot()
            .p99_ms_since(&RequestSnapshot::default());
        assert_eq!(p99, Some(30000.0));
    }

    #[test]
    fn the_registry_names_its_series() {
        let m = Metrics::new(Parts {
            decisions: DecisionCounter::default(),
            commits: CommitHistograms::default(),
            moves: move_histogram(),
            collector: Box::new(Nothing),
        });
        m.outbox_backlog.set(3);
        m.http.overloaded.inc();
        let text = m.encode();
        assert!(text.contains("registrar_outbox_backlog 3\n"), "{text}");
        assert!(
            text.contains("registrar_http_overloaded_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("registrar_commit_duration_seconds_count 0\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[derive(Debug)]
    struct Nothing;

    impl prometheus_client::collector::Collector for Nothing {
        fn encode(
            &self,
            _: prometheus_client::encoding::DescriptorEncoder,
        ) -> Result<(), std::fmt::Error> {
            Ok(())
        }
    }
}
