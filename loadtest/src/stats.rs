//! Our own tally of the run, next to goose's metrics: goose counts requests by name and
//! status, but a registrar benchmark wants *decisions*: accepted enrolls (201 + 202),
//! drops and swaps per second, p50/p99 per operation, and refusals (409 `section_full` and
//! friends, correct answers) kept apart from failures (5xx, timeouts, unexpected codes).
//!
//! Every request appends one sample (a request the careful client retried is one sample,
//! timed from its first attempt to its final answer; the 503s it absorbed are counted apart
//! as retries); [`summarize`] keeps the samples that completed while
//! goose held the user count steady (the "maintaining" steps of the test plan), so ramp-up
//! and shutdown do not dilute the rates.

use crate::cart::Staging;
use crate::clock::now_ms;
use crate::prelogin::PreLogin;
use crate::wire::Verdict;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// The operations we time separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `POST /auth/login`.
    Login,
    /// `POST /sections/{id}/enrollments`.
    Enroll,
    /// `DELETE /sections/{id}/enrollments/me`.
    Drop,
    /// `POST /enrollments/swap`.
    Swap,
    /// `GET /students/me/schedule`.
    Schedule,
    /// Catalog reads: terms, section pages, one section.
    Catalog,
    /// Opening a seat stream and reading its first event.
    SeatStream,
    /// `GET /healthz`.
    Healthz,
    /// `PUT /students/me/cart/{id}` inside the load (no staging phase).
    CartPut,
    /// `POST /students/me/cart/submit`: one answer decides every item of the cart.
    CartSubmit,
    /// `POST /enrollments/sets`: a linked set, all or nothing.
    EnrollSet,
}

impl Op {
    /// Operations whose 2xx is a registration decision.
    pub fn is_decision(self) -> bool {
        matches!(
            self,
            Op::Enroll | Op::Drop | Op::Swap | Op::CartSubmit | Op::EnrollSet
        )
    }
}

struct Sample {
    op: Op,
    done_ms: i64,
    micros: u64,
    verdict: Verdict,
}

/// What one answered cart submit decided: one label per item (`enrolled`, `waitlisted`,
/// `refused section_full`, ...) and one per linked set of the cart.
struct CartSample {
    done_ms: i64,
    items: Vec<String>,
    sets: Vec<String>,
}

#[derive(Default)]
struct Tally {
    samples: Vec<Sample>,
    carts: Vec<CartSample>,
    /// `"enroll 409 section_full"` → count, over the whole run.
    codes: BTreeMap<String, u64>,
    failed_total: u64,
    /// `"enroll 503 overloaded"` → attempts the careful client sent again.
    retries: BTreeMap<String, u64>,
    retries_total: u64,
}

static TALLY: Mutex<Tally> = Mutex::new(Tally {
    samples: Vec::new(),
    carts: Vec::new(),
    codes: BTreeMap::new(),
    failed_total: 0,
    retries: BTreeMap::new(),
    retries_total: 0,
});

/// Record one finished request that started at `started`; `label` is its status and code.
pub fn record(op: Op, started: Instant, verdict: Verdict, label: &str) {
    let micros = started.elapsed().as_micros() as u64;
    let done_ms = now_ms();
    let mut t = TALLY.lock().unwrap_or_else(|e| e.into_inner());
    t.samples.push(Sample {
        op,
        done_ms,
        micros,
        verdict,
    });
    *t.codes
        .entry(format!("{} {label}", op_name(op)))
        .or_default() += 1;
    if verdict == Verdict::Failed {
        t.failed_total += 1;
    }
}

/// Record what an answered cart submit decided (see [`CartSample`]); call right after
/// [`record`] of its [`Op::CartSubmit`].
pub fn cart_decided(items: Vec<String>, sets: Vec<String>) {
    let done_ms = now_ms();
    let mut t = TALLY.lock().unwrap_or_else(|e| e.into_inner());
    t.carts.push(CartSample {
        done_ms,
        items,
        sets,
    });
}

/// Count one answer (`label`: status and code) that the careful client absorbed and retried.
pub fn retried(op: Op, label: &str) {
    let mut t = TALLY.lock().unwrap_or_else(|e| e.into_inner());
    *t.retries
        .entry(format!("{} {label}", op_name(op)))
        .or_default() += 1;
    t.retries_total += 1;
}

fn op_name(op: Op) -> String {
    serde_json::to_value(op)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Figures of one operation inside the measured window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OpSummary {
    /// Answers received (any verdict).
    pub answers: u64,
    /// 2xx.
    pub accepted: u64,
    /// Expected refusals.
    pub refused: u64,
    /// Failures.
    pub failed: u64,
    /// Answers per second.
    pub per_s: f64,
    /// 2xx per second.
    pub accepted_per_s: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
}

/// What the answered cart submits decided inside the window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CartSummary {
    /// Carts submitted and answered 200.
    pub carts: u64,
    /// Per second.
    pub carts_per_s: f64,
    /// Linked sets in them (bundles taken all or none).
    pub sets: u64,
    /// Per second.
    pub sets_per_s: f64,
    /// Items decided (enrolled + waitlisted + refused).
    pub items: u64,
    /// Per second: the cart's decisions per second.
    pub items_per_s: f64,
    /// Items enrolled.
    pub enrolled: u64,
    /// Items waitlisted.
    pub waitlisted: u64,
    /// Items refused.
    pub refused: u64,
    /// Per item: `enrolled`, `waitlisted`, `refused <code>` → count.
    pub item_outcomes: BTreeMap<String, u64>,
    /// Per linked set: `enrolled`, `refused <code>`, ... → count; `split` is a set whose
    /// items were not all decided alike (the server broke all-or-none).
    pub set_outcomes: BTreeMap<String, u64>,
}

/// The run's summary (printed, and written by `--summary FILE`).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Users at full strength.
    pub users: usize,
    /// Seconds of the measured window (users steady).
    pub window_s: f64,
    /// Per operation, inside the window.
    pub ops: BTreeMap<String, OpSummary>,
    /// Accepted registration decisions (enroll 201/202, drop 200, swap 200, cart submit
    /// 200: one per cart, its items are in [`Summary::cart`]) per second.
    pub decisions_per_s: f64,
    /// Failed requests over the whole run, window or not.
    pub failed_total: u64,
    /// Status/code counts over the whole run (final answers).
    pub codes: BTreeMap<String, u64>,
    /// Attempts the careful client sent again, over the whole run.
    pub retries_total: u64,
    /// The answers it retried after, by status/code.
    pub retries: BTreeMap<String, u64>,
    /// Unix milliseconds of goose's start, from which its request log's `elapsed` counts
    /// (known once a user ran a transaction that notes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goose_started_unix_ms: Option<i64>,
    /// The sign-in phase before the load (`--pre-login`), measured apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_login: Option<PreLogin>,
    /// `cart`: the carts filled before the load, measured apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staging: Option<Staging>,
    /// `cart`: what the submits decided, inside the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cart: Option<CartSummary>,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// Summarize the samples that completed inside `windows` (Unix ms, half-open). With no
/// window, the span from the first to the last sample is used.
pub fn summarize(scenario: &str, users: usize, windows: &[(i64, i64)]) -> Summary {
    let t = TALLY.lock().unwrap_or_else(|e| e.into_inner());
    let fallback;
    let windows = if windows.is_empty() {
        // A cart's tally is noted just after its submit's sample: include it.
        let stamps = || {
            t.samples
                .iter()
                .map(|s| s.done_ms)
                .chain(t.carts.iter().map(|c| c.done_ms))
        };
        let first = stamps().min().unwrap_or(0);
        let last = stamps().max().unwrap_or(0);
        fallback = [(first, last + 1)];
        &fallback[..]
    } else {
        windows
    };
    let window_ms: i64 = windows.iter().map(|(a, b)| (b - a).max(0)).sum();
    let window_s = (window_ms as f64 / 1000.0).max(0.001);
    let inside = |ms: i64| windows.iter().any(|&(a, b)| ms >= a && ms < b);

    let mut latencies: BTreeMap<Op, Vec<u64>> = BTreeMap::new();
    let mut per_op: BTreeMap<Op, OpSummary> = BTreeMap::new();
    let mut decisions = 0u64;
    for s in t.samples.iter().filter(|s| inside(s.done_ms)) {
        let o = per_op.entry(s.op).or_default();
        o.answers += 1;
        match s.verdict {
            Verdict::Accepted => {
                o.accepted += 1;
                if s.op.is_decision() {
                    decisions += 1;
                }
            }
            Verdict::Refused => o.refused += 1,
            Verdict::Failed => o.failed += 1,
        }
        latencies.entry(s.op).or_default().push(s.micros);
    }
    let cart = (!t.carts.is_empty()).then(|| {
        let mut c = CartSummary::default();
        for sample in t.carts.iter().filter(|c| inside(c.done_ms)) {
            c.carts += 1;
            c.sets += sample.sets.len() as u64;
            for item in &sample.items {
                c.items += 1;
                match item.as_str() {
                    "enrolled" => c.enrolled += 1,
                    "waitlisted" => c.waitlisted += 1,
                    _ => c.refused += 1,
                }
                *c.item_outcomes.entry(item.clone()).or_default() += 1;
            }
            for set in &sample.sets {
                *c.set_outcomes.entry(set.clone()).or_default() += 1;
            }
        }
        c.carts_per_s = c.carts as f64 / window_s;
        c.sets_per_s = c.sets as f64 / window_s;
        c.items_per_s = c.items as f64 / window_s;
        c
    });
    let mut ops = BTreeMap::new();
    for (op, mut o) in per_op {
        let mut l = latencies.remove(&op).unwrap_or_default();
        l.sort_unstable();
        o.per_s = o.answers as f64 / window_s;
        o.accepted_per_s = o.accepted as f64 / window_s;
        o.p50_ms = percentile(&l, 50.0);
        o.p99_ms = percentile(&l, 99.0);
        ops.insert(op_name(op), o);
    }
    Summary {
        scenario: scenario.to_string(),
        users,
        window_s,
        ops,
        decisions_per_s: decisions as f64 / window_s,
        failed_total: t.failed_total,
        codes: t.codes.clone(),
        retries_total: t.retries_total,
        retries: t.retries.clone(),
        goose_started_unix_ms: None,
        pre_login: None,
        staging: None,
        cart,
    }
}

impl Summary {
    /// A human-readable table.
    pub fn render(&self) -> String {
        let mut s = format!(
            "registrar-loadtest summary: scenario {} | {} users | {:.1}s measured (users steady)\n",
            self.scenario, self.users, self.window_s
        );
        s.push_str(&format!(
            "  {:<12} {:>9} {:>9} {:>9} {:>7} {:>10} {:>10} {:>9} {:>9}\n",
            "op", "answers", "2xx", "refused", "failed", "answers/s", "2xx/s", "p50 ms", "p99 ms"
        ));
        for (name, o) in &self.ops {
            s.push_str(&format!(
                "  {:<12} {:>9} {:>9} {:>9} {:>7} {:>10.1} {:>10.1} {:>9.2} {:>9.2}\n",
                name,
                o.answers,
                o.accepted,
                o.refused,
                o.failed,
                o.per_s,
                o.accepted_per_s,
                o.p50_ms,
                o.p99_ms
            ));
        }
        s.push_str(&format!(
            "  accepted decisions/s (enroll 201+202, drop 200, swap 200, cart submit 200): {:.1}\n",
            self.decisions_per_s
        ));
        if let Some(st) = &self.staging {
            s.push_str(&format!(
                "  carts staged before the load: {} carts, {} PUTs in {:.1} s: {:.0} PUTs/s, p50 {:.1} ms, p99 {:.1} ms ({} without answer)\n",
                st.carts, st.puts, st.seconds, st.per_s, st.p50_ms, st.p99_ms, st.failed
            ));
            for (code, n) in &st.refused {
                s.push_str(&format!("    PUT {code:<40} {n:>9}\n"));
            }
        }
        if let Some(c) = &self.cart {
            s.push_str(&format!(
                "  carts: {} submitted ({:.1}/s), {} linked sets ({:.1}/s), {} items decided ({:.1}/s): {} enrolled, {} waitlisted, {} refused\n",
                c.carts, c.carts_per_s, c.sets, c.sets_per_s, c.items, c.items_per_s, c.enrolled, c.waitlisted, c.refused
            ));
            for (outcome, n) in &c.item_outcomes {
                s.push_str(&format!("    item {outcome:<39} {n:>9}\n"));
            }
            for (outcome, n) in &c.set_outcomes {
                s.push_str(&format!("    set {outcome:<40} {n:>9}\n"));
            }
        }
        s.push_str(&format!(
            "  failed requests over the whole run: {}\n  answers over the whole run:\n",
            self.failed_total
        ));
        for (code, n) in &self.codes {
            s.push_str(&format!("    {code:<44} {n:>9}\n"));
        }
        if self.retries_total > 0 {
            s.push_str(&format!(
                "  retried by the careful client (same Idempotency-Key): {}\n",
                self.retries_total
            ));
            for (code, n) in &self.retries {
                s.push_str(&format!("    {code:<44} {n:>9}\n"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cart_items_are_tallied_per_outcome() {
        cart_decided(
            vec![
                "enrolled".into(),
                "enrolled".into(),
                "refused time_conflict".into(),
            ],
            vec!["enrolled".into()],
        );
        cart_decided(vec!["waitlisted".into()], vec![]);
        let c = summarize("cart", 1, &[]).cart.expect("carts were tallied");
        assert_eq!((c.carts, c.sets, c.items), (2, 1, 4));
        assert_eq!((c.enrolled, c.waitlisted, c.refused), (2, 1, 1));
        assert_eq!(c.item_outcomes["refused time_conflict"], 1);
        assert_eq!(c.set_outcomes["enrolled"], 1);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let l: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile(&l, 50.0), 50.0);
        assert_eq!(percentile(&l, 99.0), 99.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
        assert_eq!(percentile(&[1500], 50.0), 1.5);
    }
}
