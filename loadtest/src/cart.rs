//! Carts for the `cart` scenario: what a student puts in the cart ([`compose`], pure and
//! seeded per student, so a student's cart is the same in every run against the same
//! catalog) and the staging phase that puts them there before the window opens
//! ([`stage`]).
//!
//! A cart holds 4-6 sections: one or two linked sets (a lecture with one linked section
//! of every other component the course requires, Zipf-chosen among the linked courses,
//! two distinct courses), and plain sections of other distinct courses, Zipf-chosen like
//! `flash` picks them. Nothing avoids time conflicts: the server refuses those at submit,
//! and a refusal is a decision like any other.
//!
//! The staging phase runs after `--pre-login`, before goose starts: students fill their
//! carts ahead of their window, so the window's figures are the submits alone. Its own
//! figures (PUTs per second, p50/p99, refused and failed PUTs) are reported apart
//! (`staging` in the summary). Without `--pre-login` the scenario stages each cart itself,
//! right after its login, inside the load.

use crate::catalog::{Catalog, LinkedSet};
use crate::prelogin;
use futures_util::stream::{self, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Sections in a cart, at least.
pub const MIN_ITEMS: usize = 4;
/// Sections in a cart, at most.
pub const MAX_ITEMS: usize = 6;

/// What one student puts in the cart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CartPlan {
    /// One or two linked sets, of distinct courses.
    pub sets: Vec<LinkedSet>,
    /// Plain sections, each of its own course, none of a set's course.
    pub plain: Vec<Uuid>,
}

impl CartPlan {
    /// Every section, the sets' first (in order), then the plain ones.
    pub fn sections(&self) -> Vec<Uuid> {
        self.sets
            .iter()
            .flat_map(|s| s.sections.iter().copied())
            .chain(self.plain.iter().copied())
            .collect()
    }

    fn set_items(&self) -> usize {
        self.sets.iter().map(|s| s.sections.len()).sum()
    }
}

/// The generator of student `number`'s cart.
pub fn rng_for(number: u32) -> StdRng {
    StdRng::seed_from_u64(0xCA27_0000_0000 ^ u64::from(number))
}

/// A cart: 4-6 sections (uniformly), 1 or 2 linked sets (evenly), at least one plain
/// section. A second set that would leave no room for a plain section is not taken; a
/// set so large that 4 sections leave no room raises the size (at most 6).
pub fn compose<R: Rng + ?Sized>(catalog: &Catalog, rng: &mut R) -> CartPlan {
    let size = rng.random_range(MIN_ITEMS..=MAX_ITEMS);
    let wanted_sets = rng.random_range(1..=2);
    let mut plan = CartPlan {
        sets: Vec::new(),
        plain: Vec::new(),
    };
    for _ in 0..wanted_sets {
        let taken: Vec<&str> = plan.sets.iter().map(|s| s.course_code.as_str()).collect();
        let Some(set) = catalog.pick_linked_set(rng, &taken) else {
            break;
        };
        if !plan.sets.is_empty() && plan.set_items() + set.sections.len() >= size {
            break;
        }
        plan.sets.push(set);
    }
    let size = size.max(plan.set_items() + 1).min(MAX_ITEMS);
    let courses: Vec<&str> = plan.sets.iter().map(|s| s.course_code.as_str()).collect();
    plan.plain = catalog
        .pick_distinct_courses(rng, size.saturating_sub(plan.set_items()), &courses)
        .into_iter()
        .map(|s| s.id)
        .collect();
    plan
}

/// One staging PUT: how long it took and, unless it was answered 200, what it got.
type Put = (Duration, Option<String>);

static STAGED: OnceLock<HashMap<u32, CartPlan>> = OnceLock::new();

/// Student `number`'s cart, if the staging phase filled it.
pub fn staged(number: u32) -> Option<CartPlan> {
    STAGED.get()?.get(&number).cloned()
}

/// The staging phase, as measured.
#[derive(Clone, Debug, Serialize)]
pub struct Staging {
    /// Carts filled (students with a token from the sign-in phase).
    pub carts: u32,
    /// `PUT .../cart/{section}` requests sent.
    pub puts: u64,
    /// PUTs answered otherwise than 200, by status and code.
    pub refused: BTreeMap<String, u64>,
    /// PUTs without an answer (timeout, broken connection).
    pub failed: u64,
    /// PUTs per second over the phase.
    pub per_s: f64,
    /// Median PUT time.
    pub p50_ms: f64,
    /// 99th percentile PUT time.
    pub p99_ms: f64,
    /// Wall time of the phase.
    pub seconds: f64,
}

/// Fill the carts of students `first .. first + count` that signed in (`--pre-login`),
/// over `hosts` (round-robin), `concurrency` students at a time, each student's PUTs one
/// after the other (the server serializes a student's requests anyway).
pub async fn stage(
    catalog: &Catalog,
    hosts: &[String],
    first: u32,
    count: u32,
    concurrency: usize,
) -> anyhow::Result<Staging> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    let started = Instant::now();
    let results: Vec<(u32, CartPlan, Vec<Put>)> = stream::iter(0..count)
        .filter_map(|i| async move { prelogin::token(first + i).map(|s| (i, s)) })
        .map(|(i, student)| {
            let number = first + i;
            let base = hosts[i as usize % hosts.len()]
                .trim_end_matches('/')
                .to_string();
            let plan = compose(catalog, &mut rng_for(number));
            let client = client.clone();
            async move {
                let mut puts = Vec::new();
                for section in plan.sections() {
                    let url = format!("{base}/api/v1/students/me/cart/{section}");
                    let t = Instant::now();
                    let outcome = match client.put(&url).bearer_auth(&student.token).send().await {
                        Ok(r) if r.status().as_u16() == 200 => None,
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let body: serde_json::Value = r.json().await.unwrap_or_default();
                            let code = body.get("code").and_then(|c| c.as_str()).unwrap_or("");
                            Some(format!("{status} {code}").trim_end().to_string())
                        }
                        Err(_) => Some("no answer".to_string()),
                    };
                    puts.push((t.elapsed(), outcome));
                }
                (number, plan, puts)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let mut times: Vec<f64> = Vec::new();
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed = 0;
    let mut plans = HashMap::with_capacity(results.len());
    for (number, plan, puts) in results {
        for (elapsed, outcome) in puts {
            times.push(elapsed.as_secs_f64() * 1000.0);
            match outcome {
                None => {}
                Some(label) if label == "no answer" => failed += 1,
                Some(label) => *refused.entry(label).or_default() += 1,
            }
        }
        plans.insert(number, plan);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if times.is_empty() {
            return 0.0;
        }
        times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1]
    };
    let summary = Staging {
        carts: plans.len() as u32,
        puts: times.len() as u64,
        refused,
        failed,
        per_s: if seconds > 0.0 {
            times.len() as f64 / seconds
        } else {
            0.0
        },
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        seconds,
    };
    let _ = STAGED.set(plans);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::linked_catalog;

    fn catalog() -> Catalog {
        Catalog::new(Uuid::new_v4(), linked_catalog(), 1.1)
    }

    #[test]
    fn carts_hold_four_to_six_sections_with_one_or_two_sets() {
        let c = catalog();
        let mut sizes = [0usize; 7];
        let mut set_counts = [0usize; 3];
        for number in 0..500 {
            let plan = compose(&c, &mut rng_for(number));
            let sections = plan.sections();
            assert!(
                (MIN_ITEMS..=MAX_ITEMS).contains(&sections.len()),
                "{plan:?}"
            );
            assert!((1..=2).contains(&plan.sets.len()), "{plan:?}");
            assert!(!plan.plain.is_empty(), "{plan:?}");
            let mut unique = sections.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), sections.len(), "no section twice");
            sizes[sections.len()] += 1;
            set_counts[plan.sets.len()] += 1;
        }
        assert!(sizes[4..].iter().all(|&n| n > 0), "{sizes:?}");
        assert!(set_counts[1] > 0 && set_counts[2] > 0, "{set_counts:?}");
    }

    #[test]
    fn sets_are_linked_and_courses_distinct() {
        let sections = linked_catalog();
        let c = Catalog::new(Uuid::new_v4(), sections.clone(), 1.1);
        let by_id: HashMap<Uuid, &crate::catalog::Section> =
            sections.iter().map(|s| (s.id, s)).collect();
        for number in 0..300 {
            let plan = compose(&c, &mut rng_for(number));
            let mut courses: Vec<&str> = Vec::new();
            for set in &plan.sets {
                let course = c
                    .linked
                    .iter()
                    .find(|l| l.course_code == set.course_code)
                    .expect("a linked course");
                // One section per required component, in the course's order.
                let components: Vec<&str> = set
                    .sections
                    .iter()
                    .map(|id| by_id[id].component.as_str())
                    .collect();
                assert_eq!(components, course.components);
                let primary = by_id[&set.sections[0]];
                for id in &set.sections[1..] {
                    let s = by_id[id];
                    assert!(s.links.contains(&primary.id) || primary.links.contains(id));
                }
                assert!(
                    set.sections
                        .iter()
                        .all(|id| by_id[id].corequisites.is_empty())
                );
                courses.push(&set.course_code);
            }
            for id in &plan.plain {
                let s = by_id[id];
                assert!(s.enrollable_alone(), "plain sections only outside the sets");
                courses.push(&s.course_code);
            }
            let n = courses.len();
            courses.sort_unstable();
            courses.dedup();
            assert_eq!(courses.len(), n, "distinct courses: {plan:?}");
        }
    }

    #[test]
    fn a_student_gets_the_same_cart_every_run() {
        let sections = linked_catalog();
        let a = Catalog::new(Uuid::new_v4(), sections.clone(), 1.1);
        let mut shuffled = sections;
        shuffled.reverse();
        let b = Catalog::new(Uuid::new_v4(), shuffled, 1.1);
        for number in [1, 2, 17, 40_000] {
            assert_eq!(
                compose(&a, &mut rng_for(number)),
                compose(&b, &mut rng_for(number)),
                "the page order of the API does not matter"
            );
        }
        assert_ne!(
            (1..20)
                .map(|n| compose(&a, &mut rng_for(n)))
                .collect::<Vec<_>>(),
            vec![compose(&a, &mut rng_for(1)); 19],
            "students differ"
        );
    }
}
