//! The term's sections, fetched ONCE before the attack starts (every user shares them
//! through a once-cell) and ranked for the Zipf choice of "which section does a student
//! want": sections without prerequisites first (the intro courses everybody rushes, and
//! the ones most demo students may take), each group in a fixed shuffled order so the hot
//! set is the same in every run against the same database.
//!
//! Sections of courses taken as linked sets (a lecture with its lab) or with corequisites
//! are left out of that ranking: most scenarios enroll one section at a time, which the
//! rules refuse for those (`linked_set_incomplete`, `corequisite_missing`). The linked
//! courses without corequisites are kept apart ([`Catalog::linked`]), ranked the same way,
//! for the scenarios that take a whole set at once ([`Catalog::pick_linked_set`]).

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
    /// Which of its course's components this section is.
    #[serde(default = "lecture")]
    pub component: String,
    /// Sections linked to this one (a lecture's labs, or a lab's lectures).
    #[serde(default)]
    pub links: Vec<Uuid>,
}

fn lecture() -> String {
    "lecture".to_string()
}

impl Section {
    /// Whether a student may take this section on its own (no linked set, no corequisite).
    pub fn enrollable_alone(&self) -> bool {
        self.components.is_empty() && self.corequisites.is_empty()
    }
}

/// A course taken as a linked set, with every complete set it offers.
#[derive(Clone, Debug)]
pub struct LinkedCourse {
    /// Course code, e.g. `BIOL1406`.
    pub course_code: String,
    /// Its required components, the primary first: `["lecture", "lab"]`.
    pub components: Vec<String>,
    /// Its primaries that have at least one linked section of every other component.
    pub primaries: Vec<Primary>,
}

/// A primary section (a lecture) and what may go with it.
#[derive(Clone, Debug)]
pub struct Primary {
    /// The primary's id.
    pub id: Uuid,
    /// Per other required component (in [`LinkedCourse::components`] order, the primary's
    /// own left out), the sections of it linked to this primary.
    pub linked: Vec<Vec<Uuid>>,
}

/// One choice of a linked course: a primary, then one linked section per other required
/// component, which the server takes all or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedSet {
    /// The course.
    pub course_code: String,
    /// The primary first, then one section per other component.
    pub sections: Vec<Uuid>,
}

/// The shared catalog.
#[derive(Debug)]
pub struct Catalog {
    /// The term's id.
    pub term_id: Uuid,
    /// Sections a student may take alone, in Zipf rank order (index 0 is the hottest).
    pub sections: Vec<Section>,
    zipf: Zipf,
    /// Linked courses without corequisites, in Zipf rank order (a fixed shuffle).
    pub linked: Vec<LinkedCourse>,
    linked_zipf: Zipf,
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
    /// Rank the `sections` a student may take alone, and apart the linked courses, and
    /// build the samplers.
    pub fn new(term_id: Uuid, sections: Vec<Section>, exponent: f64) -> Self {
        let mut linked = linked_courses(&sections);
        // A generator of its own, so the ranking of the plain sections is what it was.
        linked.sort_by(|a, b| a.course_code.cmp(&b.course_code));
        linked.shuffle(&mut StdRng::seed_from_u64(2028));
        let linked_zipf = Zipf::new(linked.len(), exponent);
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
            linked,
            linked_zipf,
        }
    }

    /// Up to `k` Zipf-chosen sections of distinct courses, none of a course in
    /// `exclude_courses` (bounded tries, so a tiny catalog returns fewer).
    pub fn pick_distinct_courses<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        k: usize,
        exclude_courses: &[&str],
    ) -> Vec<&Section> {
        let mut out: Vec<&Section> = Vec::with_capacity(k);
        for _ in 0..k * 20 {
            if out.len() == k {
                break;
            }
            let s = self.pick(rng);
            let code = s.course_code.as_str();
            if !exclude_courses.contains(&code) && out.iter().all(|o| o.course_code != code) {
                out.push(s);
            }
        }
        out
    }

    /// A linked set of a Zipf-chosen linked course not in `exclude_courses`: a uniformly
    /// chosen primary and, for each other component, one of its linked sections, uniformly.
    /// `None` when the catalog has no such course (bounded tries).
    pub fn pick_linked_set<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        exclude_courses: &[&str],
    ) -> Option<LinkedSet> {
        if self.linked.is_empty() {
            return None;
        }
        let course = (0..20)
            .map(|_| &self.linked[self.linked_zipf.sample(rng)])
            .find(|c| !exclude_courses.contains(&c.course_code.as_str()))?;
        let primary = &course.primaries[rng.random_range(0..course.primaries.len())];
        let mut sections = vec![primary.id];
        for options in &primary.linked {
            sections.push(options[rng.random_range(0..options.len())]);
        }
        Some(LinkedSet {
            course_code: course.course_code.clone(),
            sections,
        })
    }

    /// The linked course `section` belongs to (a primary or one linked to one), if any.
    pub fn linked_course_of(&self, section: Uuid) -> Option<&str> {
        self.linked
            .iter()
            .find(|c| {
                c.primaries
                    .iter()
                    .any(|p| p.id == section || p.linked.iter().flatten().any(|l| *l == section))
            })
            .map(|c| c.course_code.as_str())
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

/// The linked courses of `sections` that have no corequisite, each with its primaries that
/// have a linked section of every other component (a link counts from either side).
fn linked_courses(sections: &[Section]) -> Vec<LinkedCourse> {
    let mut by_course: Vec<(&str, Vec<&Section>)> = Vec::new();
    for s in sections
        .iter()
        .filter(|s| !s.components.is_empty() && s.corequisites.is_empty())
    {
        match by_course.iter_mut().find(|(c, _)| *c == s.course_code) {
            Some((_, list)) => list.push(s),
            None => by_course.push((&s.course_code, vec![s])),
        }
    }
    let mut out = Vec::new();
    for (code, list) in by_course {
        let components = list[0].components.clone();
        let mut primaries: Vec<Primary> = list
            .iter()
            .filter(|s| s.component == components[0])
            .filter_map(|p| {
                let linked: Vec<Vec<Uuid>> = components[1..]
                    .iter()
                    .map(|component| {
                        let mut ids: Vec<Uuid> = list
                            .iter()
                            .filter(|s| &s.component == component)
                            .filter(|s| p.links.contains(&s.id) || s.links.contains(&p.id))
                            .map(|s| s.id)
                            .collect();
                        ids.sort();
                        ids
                    })
                    .collect();
                linked
                    .iter()
                    .all(|ids| !ids.is_empty())
                    .then_some(Primary { id: p.id, linked })
            })
            .collect();
        primaries.sort_by_key(|p| p.id);
        if !primaries.is_empty() {
            out.push(LinkedCourse {
                course_code: code.to_string(),
                components,
                primaries,
            });
        }
    }
    out
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
pub(crate) mod tests {
    use super::*;

    fn section(prereq: bool) -> Section {
        Section {
            id: Uuid::new_v4(),
            course_code: "CS101".into(),
            capacity: 10,
            prerequisites: if prereq { vec!["CS100".into()] } else { vec![] },
            components: vec![],
            corequisites: vec![],
            component: "lecture".into(),
            links: vec![],
        }
    }

    /// A section of `course` (components `components`), of `component`, linked to `links`.
    fn part(course: &str, components: &[&str], component: &str, links: &[Uuid]) -> Section {
        Section {
            course_code: course.into(),
            components: components.iter().map(|c| c.to_string()).collect(),
            component: component.into(),
            links: links.to_vec(),
            ..section(false)
        }
    }

    /// BIOL: 2 lectures with 2 labs each (links on the lab side); CHEM: one lecture with a
    /// lab and a recitation (links on the lecture side), one lecture without a recitation;
    /// PHYS: a linked course with a corequisite.
    pub(crate) fn linked_catalog() -> Vec<Section> {
        let bio = ["lecture", "lab"];
        let chem = ["lecture", "lab", "recitation"];
        let mut out: Vec<Section> = (0..20)
            .map(|i| Section {
                course_code: format!("ENGL{}", 1301 + i),
                ..section(false)
            })
            .collect();
        for _ in 0..2 {
            let lecture = part("BIOL1406", &bio, "lecture", &[]);
            for _ in 0..2 {
                out.push(part("BIOL1406", &bio, "lab", &[lecture.id]));
            }
            out.push(lecture);
        }
        let lab = part("CHEM1411", &chem, "lab", &[]);
        let rec = part("CHEM1411", &chem, "recitation", &[]);
        out.push(part("CHEM1411", &chem, "lecture", &[lab.id, rec.id]));
        let lab2 = part("CHEM1411", &chem, "lab", &[]);
        out.push(part("CHEM1411", &chem, "lecture", &[lab2.id]));
        out.extend([lab, rec, lab2]);
        let phys = part("PHYS2425", &bio, "lecture", &[]);
        let mut phys_lab = part("PHYS2425", &bio, "lab", &[phys.id]);
        phys_lab.corequisites = vec!["MATH2413".into()];
        let mut phys = phys;
        phys.corequisites = vec!["MATH2413".into()];
        out.extend([phys, phys_lab]);
        out
    }

    #[test]
    fn linked_courses_keep_complete_sets_only() {
        let sections = linked_catalog();
        let by_id: std::collections::HashMap<Uuid, Section> =
            sections.iter().map(|s| (s.id, s.clone())).collect();
        let c = Catalog::new(Uuid::new_v4(), sections, 1.1);
        assert_eq!(c.sections.len(), 20, "plain sections only");
        let mut codes: Vec<&str> = c.linked.iter().map(|l| l.course_code.as_str()).collect();
        codes.sort_unstable();
        assert_eq!(codes, ["BIOL1406", "CHEM1411"], "no corequisite course");
        let chem = c
            .linked
            .iter()
            .find(|l| l.course_code == "CHEM1411")
            .unwrap();
        assert_eq!(
            chem.primaries.len(),
            1,
            "the lecture without a recitation is left out"
        );
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..200 {
            let set = c.pick_linked_set(&mut rng, &[]).unwrap();
            let course = c
                .linked
                .iter()
                .find(|l| l.course_code == set.course_code)
                .unwrap();
            assert_eq!(set.sections.len(), course.components.len());
            let primary = &by_id[&set.sections[0]];
            assert_eq!(primary.component, "lecture");
            for (id, component) in set.sections[1..].iter().zip(&course.components[1..]) {
                let s = &by_id[id];
                assert_eq!(&s.component, component);
                assert!(s.links.contains(&primary.id) || primary.links.contains(id));
            }
        }
        assert_eq!(c.pick_linked_set(&mut rng, &["BIOL1406", "CHEM1411"]), None);
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
