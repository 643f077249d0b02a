//! The caches that keep the student rules off the database on the hot path: the fixed
//! facts of sections (never change once created), registration windows by (term, standing)
//! for [`WINDOW_TTL`], and each student's rule inputs (standing, holds, completed courses,
//! active sections) for [`STUDENT_TTL`].
//!
//! The student entries stay exact for what this node does: the registration flow updates
//! a student's active sections under the student's lock from the section actor's own
//! answers ([`RuleCache::note_membership`]), and forgets the student whenever an answer
//! leaves the outcome unknown or an admin edit (a hold) changes the inputs. Admin edits
//! made through another node arrive by NOTIFY (see `cluster::node`); a student whose shard
//! moves to or from this node is forgotten, since the other node served them meanwhile.
//! The TTL bounds how long a change made by hand in SQL goes unseen; a waitlist promotion
//! does not change the active sections, so it needs no update.

use crate::cluster::node::RuleCaches;
use crate::cluster::shard_of;
use crate::resources::{SectionFacts, Standing};
use crate::store::{DbResult, catalog, students};
use dashmap::DashMap;
use registrar_actors::student_rules::Window;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a cached registration window is trusted (admin edits show up within this).
pub const WINDOW_TTL: Duration = Duration::from_secs(2);

/// How long a student's cached rule inputs are trusted (see the module docs).
pub const STUDENT_TTL: Duration = Duration::from_secs(5);

/// Cached students beyond which expired entries are swept out.
const STUDENT_CACHE_SWEEP: usize = 50_000;

/// The rule caches of one node (see the module docs).
pub struct RuleCache {
    pool: PgPool,
    /// Immutable facts of sections, loaded once.
    facts: DashMap<Uuid, Arc<SectionFacts>>,
    /// Windows by (term, standing), with the time they were read.
    windows: DashMap<(Uuid, Standing), (Instant, Option<Window>)>,
    /// Rule inputs by student, with the time they were read.
    students: DashMap<Uuid, (Instant, students::RuleInputs)>,
}

impl RuleCache {
    /// Empty caches reading from `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            facts: DashMap::new(),
            windows: DashMap::new(),
            students: DashMap::new(),
        }
    }

    /// The fixed facts of `section`; `None` if there is no such section.
    pub async fn facts(&self, section: Uuid) -> DbResult<Option<Arc<SectionFacts>>> {
        Ok(self.facts_many(&[section]).await?.pop())
    }

    /// The fixed facts of the sections in `ids` that exist, in the order of `ids`; one
    /// query for all the missing ones.
    pub async fn facts_many(&self, ids: &[Uuid]) -> DbResult<Vec<Arc<SectionFacts>>> {
        let missing: Vec<Uuid> = ids
            .iter()
            .filter(|id| !self.facts.contains_key(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            for f in catalog::section_facts(&self.pool, &missing).await? {
                self.facts.insert(f.id().0, Arc::new(f));
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| self.facts.get(id).map(|f| f.clone()))
            .collect())
    }

    /// The window of `standing` in `term`, if one is set.
    pub async fn window(&self, term: Uuid, standing: Standing) -> DbResult<Option<Window>> {
        if let Some(entry) = self.windows.get(&(term, standing))
            && entry.0.elapsed() < WINDOW_TTL
        {
            return Ok(entry.1);
        }
        let w = catalog::window(&self.pool, term, standing).await?;
        self.windows.insert((term, standing), (Instant::now(), w));
        Ok(w)
    }

    /// Forget cached windows (after an admin edit).
    pub fn invalidate_windows(&self) {
        self.windows.clear();
    }

    /// The rule inputs of `student`: cached, or read (and cached) when absent or expired;
    /// `None` if there is no such account.
    pub async fn rule_inputs(&self, student: Uuid) -> DbResult<Option<students::RuleInputs>> {
        if let Some(entry) = self.students.get(&student)
            && entry.0.elapsed() < STUDENT_TTL
        {
            return Ok(Some(entry.1.clone()));
        }
        let Some(inputs) = students::rule_inputs(&self.pool, student).await? else {
            return Ok(None);
        };
        if self.students.len() >= STUDENT_CACHE_SWEEP {
            self.students
                .retain(|_, (at, _)| at.elapsed() < STUDENT_TTL);
        }
        self.students
            .insert(student, (Instant::now(), inputs.clone()));
        Ok(Some(inputs))
    }

    /// Forget the cached rule inputs of `student`.
    pub fn invalidate_student(&self, student: Uuid) {
        self.students.remove(&student);
    }

    /// Record what a section actor said about `student`'s membership of `section` (call
    /// under the student's lock): `Some(true)` a member now, `Some(false)` not a member,
    /// `None` unknown (the student is forgotten and read again next time).
    pub fn note_membership(&self, student: Uuid, section: Uuid, member: Option<bool>) {
        let Some(member) = member else {
            self.invalidate_student(student);
            return;
        };
        if let Some(mut entry) = self.students.get_mut(&student) {
            let active = &mut entry.1.active_sections;
            active.retain(|s| *s != section);
            if member {
                active.push(section);
            }
        }
    }
}

impl RuleCaches for RuleCache {
    fn forget_shards(&self, shards: &HashSet<u32>, total: u32) {
        self.students
            .retain(|student, _| !shards.contains(&shard_of(*student, total)));
    }

    fn forget_student(&self, student: Uuid) {
        self.invalidate_student(student);
    }

    fn forget_windows(&self) {
        self.invalidate_windows();
    }
}
