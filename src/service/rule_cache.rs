//! The caches that keep the student rules off the database on the hot path: the facts of
//! sections (never change once created, but for their links, which an admin edit on this
//! node forgets with [`RuleCache::forget_facts`]), registration windows by (term, standing)
//! and each term's add/drop deadlines for [`WINDOW_TTL`], and each student's rule inputs
//! (standing, holds, completed courses, active sections) for [`STUDENT_TTL`].
//!
//! The student entries stay exact for what this node does: the registration flow updates
//! a student's active sections under the student's lock from the section actor's own
//! answers ([`RuleCache::note_membership`]), and forgets the student whenever an answer
//! leaves the outcome unknown or an admin edit (a hold) changes the inputs. Admin edits
//! made through another node arrive by NOTIFY (see `cluster::listener`); a student whose shard
//! moves to or from this node is forgotten, since the other node served them meanwhile.
//! The TTL bounds how long a change made by hand in SQL goes unseen; a waitlist promotion
//! does not change the active sections, so it needs no update.
//!
//! When a window opens every request is a student's first, and each would read its rule
//! inputs alone: 20,000 students, 20,000 queries. Misses are therefore read in batches
//! ([`StudentLoader`]): while one read is in flight, the students missed meanwhile wait
//! for the next, which reads them all in one query. A lone miss is read at once, so the
//! batching costs nothing when the node is quiet.

use crate::resources::{SectionFacts, Standing};
use crate::shard::shard_of;
use crate::store::{DbError, DbResult, catalog, students};
use dashmap::DashMap;
use registrar_actors::student_rules::{Deadlines, Window};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use uuid::Uuid;

/// How long a cached registration window or term's deadlines are trusted (admin edits
/// made by hand in SQL show up within this; those made through the API are announced).
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
    /// Add/drop deadlines by term, with the time they were read.
    deadlines: DashMap<Uuid, (Instant, Deadlines)>,
    /// Rule inputs by student, with the time they were read.
    students: DashMap<Uuid, (Instant, Arc<students::RuleInputs>)>,
    /// Reads the missed students' inputs in batches.
    loader: Arc<StudentLoader>,
}

/// What a waiting miss is answered with.
type Loaded = DbResult<Option<students::RuleInputs>>;

/// Batches the reads of missed students' rule inputs (see the module docs).
struct StudentLoader {
    pool: PgPool,
    state: std::sync::Mutex<LoaderState>,
    stats: Arc<LoadStats>,
}

/// How the missed students were read (exported as metrics).
#[derive(Debug, Default)]
pub struct LoadStats {
    /// Students whose rule inputs were read.
    pub students: AtomicU64,
    /// Queries that read them.
    pub batches: AtomicU64,
}

#[derive(Default)]
struct LoaderState {
    /// Students to read in the next batch, with whoever waits for each.
    waiting: HashMap<Uuid, Vec<oneshot::Sender<Loaded>>>,
    /// A batch task is running (it takes `waiting` when its read is done).
    running: bool,
}

/// Most students one batch reads.
const MAX_LOAD_BATCH: usize = 1_000;

impl StudentLoader {
    /// Read `student`'s inputs, in the next batch.
    async fn load(self: &Arc<Self>, student: Uuid) -> Loaded {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.waiting.entry(student).or_default().push(tx);
            !std::mem::replace(&mut state.running, true)
        };
        if start {
            // Its own task: a caller that gives up (a timed-out request) must not strand
            // the others waiting on the batch.
            tokio::spawn(self.clone().run());
        }
        rx.await.unwrap_or_else(|_| {
            Err(DbError::Unavailable(
                "the rule input read was abandoned".into(),
            ))
        })
    }

    /// Read batches until nobody waits.
    async fn run(self: Arc<Self>) {
        loop {
            let batch: Vec<(Uuid, Vec<oneshot::Sender<Loaded>>)> = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.waiting.is_empty() {
                    state.running = false;
                    return;
                }
                let take: Vec<Uuid> = state.waiting.keys().take(MAX_LOAD_BATCH).copied().collect();
                take.into_iter()
                    .filter_map(|id| state.waiting.remove_entry(&id))
                    .collect()
            };
            let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
            let read = students::rule_inputs_many(&self.pool, &ids).await;
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            self.stats
                .students
                .fetch_add(ids.len() as u64, Ordering::Relaxed);
            for (id, waiters) in batch {
                let answer: Loaded = match &read {
                    Ok(found) => Ok(found.get(&id).cloned()),
                    Err(e) => Err(e.clone()),
                };
                for waiter in waiters {
                    let _ = waiter.send(answer.clone());
                }
            }
        }
    }
}

impl RuleCache {
    /// Empty caches reading from `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            facts: DashMap::new(),
            windows: DashMap::new(),
            deadlines: DashMap::new(),
            students: DashMap::new(),
            loader: Arc::new(StudentLoader {
                pool: pool.clone(),
                state: Default::default(),
                stats: Arc::default(),
            }),
            pool,
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

    /// Forget the cached facts of `sections` (their links changed).
    pub fn forget_facts(&self, sections: &[Uuid]) {
        for id in sections {
            self.facts.remove(id);
        }
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

    /// The add/drop deadlines of `term` (none for a term that does not exist: the rules
    /// that need the term refuse it elsewhere).
    pub async fn deadlines(&self, term: Uuid) -> DbResult<Deadlines> {
        if let Some(entry) = self.deadlines.get(&term)
            && entry.0.elapsed() < WINDOW_TTL
        {
            return Ok(entry.1);
        }
        let d = catalog::deadlines(&self.pool, term)
            .await?
            .map(|d| d.rules())
            .unwrap_or_default();
        self.deadlines.insert(term, (Instant::now(), d));
        Ok(d)
    }

    /// Forget cached windows and deadlines, the terms' calendars (after an admin edit, or a
    /// NOTIFY of one).
    pub fn forget_windows(&self) {
        self.windows.clear();
        self.deadlines.clear();
    }

    /// The rule inputs of `student`: cached, or read (and cached) when absent or expired;
    /// `None` if there is no such account.
    pub async fn rule_inputs(&self, student: Uuid) -> DbResult<Option<Arc<students::RuleInputs>>> {
        if let Some(entry) = self.students.get(&student)
            && entry.0.elapsed() < STUDENT_TTL
        {
            return Ok(Some(entry.1.clone()));
        }
        let Some(inputs) = self.loader.load(student).await? else {
            return Ok(None);
        };
        let inputs = Arc::new(inputs);
        if self.students.len() >= STUDENT_CACHE_SWEEP {
            self.students
                .retain(|_, (at, _)| at.elapsed() < STUDENT_TTL);
        }
        self.students
            .insert(student, (Instant::now(), inputs.clone()));
        Ok(Some(inputs))
    }

    /// How missed students' rule inputs were read.
    pub fn load_stats(&self) -> Arc<LoadStats> {
        self.loader.stats.clone()
    }

    /// Forget every student's cached rule inputs (an edit of many students).
    pub fn forget_all_students(&self) {
        self.students.clear();
    }

    /// Forget the cached rule inputs of `student` (read again next time).
    pub fn forget_student(&self, student: Uuid) {
        self.students.remove(&student);
    }

    /// Forget the cached rule inputs of the students of `shards` (of `total`): they are
    /// served elsewhere now, or were while this node was away.
    pub fn forget_shards(&self, shards: &HashSet<u32>, total: u32) {
        self.students
            .retain(|student, _| !shards.contains(&shard_of(*student, total)));
    }

    /// Record what a section actor said about `student`'s membership of `section` (call
    /// under the student's lock).
    pub fn note_membership(&self, student: Uuid, section: Uuid, membership: Membership) {
        let member = match membership {
            Membership::Member => true,
            Membership::NotMember => false,
            Membership::Unknown => {
                self.forget_student(student);
                return;
            }
        };
        if let Some(mut entry) = self.students.get_mut(&student) {
            let active = &mut Arc::make_mut(&mut entry.1).active_sections;
            active.retain(|s| *s != section);
            if member {
                active.push(section);
            }
        }
    }
}

impl RuleCache {
    /// Record the options `student` chose for `section`, once committed (call under the
    /// student's lock).
    pub fn note_options(
        &self,
        student: Uuid,
        section: Uuid,
        options: registrar_actors::student_rules::EnrollmentOptions,
    ) {
        if let Some(mut entry) = self.students.get_mut(&student) {
            let inputs = Arc::make_mut(&mut entry.1);
            inputs.options.retain(|(s, _)| *s != section);
            inputs.options.push((section, options));
            if !inputs.options_on_record.contains(&section) {
                inputs.options_on_record.push(section);
            }
        }
    }
}

/// What an answer says about a student's membership of a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// Holds a seat or a waitlist place in it now.
    Member,
    /// Holds neither.
    NotMember,
    /// The answer does not say (no decision known): read the database next time.
    Unknown,
}
