//! The term's sections, fetched ONCE before the attack starts (every user shares them
//! through a once-cell) and ranked for the Zipf choice of "which section does a student
//! want": sections without prerequisites first (the intro courses everybody rushes, and
//! the ones most demo students may take), each group in a fixed shuffled order so the hot
//! set is the same in every run against the same database.
//!
//! Sections of courses taken as linked sets (a lecture with its lab) or with corequisites
//! are left out: the scenarios enroll one section at a time, which the rules refuse for
//! those (`linked_set_incomplete`, `corequisite_missing`).

use crate::zipf::Zipf;
use anyhow::{Context, bail};
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Deserialize;
use std::sync::OnceLock;
use uuid::Uuid;

/// The term every demo run registers for.
pub const TERM_CODE: &str = "2027SP";

/// What a scenario needs to know of a section.
#[derive(Clone, Debug, Deserialize)]
pub struct Section {
    /// Id.
    pub id: Uuid,
    /// Course code, e.g. `CS101`.
    pub course_code: String,
    /// Seats offered.
    pub capacity: u32,
    /// Course codes to complete first.
    #[serde(default)]
    pub prerequisites: Vec<String>,
    /// The course's required components (lecture, lab...); empty for a plain course.
    #[serde(default)]
    pub components: Vec<String>,
    /// Courses to take in the same term.
    #[serde(default)]
    pub corequisites: Vec<String>,
}

impl Section {
    /// Whether a student may take this section on its own (no linked set, no corequisite).
    pub fn enrollable_alone(&self) -> bool {
        self.components.is_empty() && self.corequisites.is_empty()
    }
}

/// The shared catalog.
#[derive(Debug)]
pub struct Catalog {
    /// The term's id.
    pub term_id: Uuid,
    /// Sections in Zipf rank order (index 0 is the hottest).
    pub sections: Vec<Section>,
    zipf: Zipf,
}

static CATALOG: OnceLock<Catalog> = OnceLock::new();

#[derive(Deserialize)]
struct Term {
    id: Uuid,
    code: String,
}

#[derive(Deserialize)]
struct Page {
    items: Vec<Section>,
    next_cursor: Option<String>,
}

impl Catalog {
    /// Rank the `sections` a student may take alone and build the sampler.
    pub fn new(term_id: Uuid, sections: Vec<Section>, exponent: f64) -> Self {
        let mut rng = StdRng::seed_from_u64(2027);
        let (mut open, mut gated): (Vec<_>, Vec<_>) = sections
            .into_iter()
            .filter(Section::enrollable_alone)
            .partition(|s| s.prerequisites.is_empty());
        // Sort first so the shuffle does not depend on the page order of the API.
        open.sort_by_key(|s| s.id);
        gated.sort_by_key(|s| s.id);
        open.shuffle(&mut rng);
        gated.shuffle(&mut rng);
        open.extend(gated);
        let zipf = Zipf::new(open.len(), exponent);
        Self {
            term_id,
            sections: open,
            zipf,
        }
    }

    /// One Zipf-chosen section.
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> &Section {
        &self.sections[self.zipf.sample(rng)]
    }

    /// Up to `k` distinct Zipf-chosen sections, none of them in `exclude` (bounded tries,
    /// so a tiny catalog returns fewer).
    pub fn pick_distinct<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        k: usize,
        exclude: &[Uuid],
    ) -> Vec<Uuid> {
        let mut out: Vec<Uuid> = Vec::with_capacity(k);
        for _ in 0..k * 20 {
            if out.len() == k {
                break;
            }
            let id = self.pick(rng).id;
            if !out.contains(&id) && !exclude.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// A uniformly chosen section (catalog pages start anywhere).
    pub fn any<R: Rng + ?Sized>(&self, rng: &mut R) -> &Section {
        &self.sections[rng.random_range(0..self.sections.len())]
    }
}

/// Fetch the term and all its sections from `host`, rank them and publish the catalog.
pub async fn load(host: &str, exponent: f64) -> anyhow::Result<&'static Catalog> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let base = host.trim_end_matches('/');
    let terms: Vec<Term> = client
        .get(format!("{base}/api/v1/terms"))
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?
        .error_for_status()?
        .json()
        .await
        .context("GET /api/v1/terms")?;
    let term = terms
        .into_iter()
        .find(|t| t.code == TERM_CODE)
        .with_context(|| format!("no term {TERM_CODE}: seed the server first (registrar seed)"))?;
    let mut sections = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/terms/{}/sections?limit=500", term.id);
        if let Some(c) = &cursor {
            url.push_str("&cursor=");
            url.push_str(c);
        }
        let page: Page = client
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
            .context("GET sections page")?;
        sections.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    if !sections.iter().any(Section::enrollable_alone) {
        bail!("term {TERM_CODE} has no section a student may take on its own");
    }
    Ok(CATALOG.get_or_init(|| Catalog::new(term.id, sections, exponent)))
}

/// The catalog loaded by [`load`] (scenarios run only after it).
pub fn get() -> &'static Catalog {
    CATALOG
        .get()
        .expect("the catalog is loaded before the attack")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(prereq: bool) -> Section {
        Section {
            id: Uuid::new_v4(),
            course_code: "CS101".into(),
            capacity: 10,
            prerequisites: if prereq { vec!["CS100".into()] } else { vec![] },
            components: vec![],
            corequisites: vec![],
        }
    }

    #[test]
    fn linked_and_corequisite_sections_are_left_out() {
        let mut sections: Vec<_> = (0..4).map(|_| section(false)).collect();
        sections[1].components = vec!["lecture".into(), "lab".into()];
        sections[2].corequisites = vec!["MATH2413".into()];
        let kept = [sections[0].id, sections[3].id];
        let c = Catalog::new(Uuid::new_v4(), sections, 1.1);
        assert_eq!(c.sections.len(), 2);
        assert!(c.sections.iter().all(|s| kept.contains(&s.id)));
    }

    #[test]
    fn open_sections_rank_first_and_picks_are_distinct() {
        let sections: Vec<_> = (0..30).map(|i| section(i % 3 == 0)).collect();
        let c = Catalog::new(Uuid::new_v4(), sections, 1.1);
        assert!(c.sections[..20].iter().all(|s| s.prerequisites.is_empty()));
        let mut rng = StdRng::seed_from_u64(3);
        let exclude = vec![c.sections[0].id];
        let picks = c.pick_distinct(&mut rng, 6, &exclude);
        assert_eq!(picks.len(), 6);
        assert!(!picks.contains(&exclude[0]));
        let mut dedup = picks.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 6);
    }
}
