//! The student rule caches the cluster keeps right. The registration service caches each
//! student's rule inputs (holds, windows, what they are enrolled in); a node must forget
//! them when another node may have changed them: the student's shard moved, an admin
//! changed them elsewhere (a [`Notice`](crate::store::cluster::Notice)), or this node
//! lost its lease. The caches are built after the node, so they are linked in at start.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// What the node tells the student rule caches (implemented by the registration service).
pub trait RuleCaches: Send + Sync {
    /// Forget what is cached about the students of `shards` (of `total`).
    fn forget_shards(&self, shards: &HashSet<u32>, total: u32);
    /// Forget what is cached about one student (an admin changed it).
    fn forget_student(&self, student: Uuid);
    /// Forget cached registration windows and add/drop deadlines (an admin changed one).
    fn forget_windows(&self);
    /// Forget what is cached about every student (an admin changed many).
    fn forget_all_students(&self);
    /// Forget the cached facts of one section (an admin changed its links).
    fn forget_section(&self, section: Uuid);
}

/// The rule caches once linked (set once at start; until then there is nothing to forget).
#[derive(Default)]
pub struct RuleCacheLink {
    caches: OnceLock<Arc<dyn RuleCaches>>,
}

impl RuleCacheLink {
    /// Link the caches (once; later calls are ignored).
    pub fn connect(&self, caches: Arc<dyn RuleCaches>) {
        let _ = self.caches.set(caches);
    }

    /// Forget the students of `shards` (of `total`).
    pub fn forget_shards(&self, shards: &HashSet<u32>, total: u32) {
        if let Some(caches) = self.caches.get() {
            caches.forget_shards(shards, total);
        }
    }

    /// Forget every student of every one of `total` shards, and every window.
    pub fn forget_all(&self, total: u32) {
        if let Some(caches) = self.caches.get() {
            let all: HashSet<u32> = (0..total).collect();
            caches.forget_shards(&all, total);
            caches.forget_windows();
        }
    }

    /// Forget one student.
    pub fn forget_student(&self, student: Uuid) {
        if let Some(caches) = self.caches.get() {
            caches.forget_student(student);
        }
    }

    /// Forget every student.
    pub fn forget_all_students(&self) {
        if let Some(caches) = self.caches.get() {
            caches.forget_all_students();
        }
    }

    /// Forget one section's facts.
    pub fn forget_section(&self, section: Uuid) {
        if let Some(caches) = self.caches.get() {
            caches.forget_section(section);
        }
    }

    /// Forget every window.
    pub fn forget_windows(&self) {
        if let Some(caches) = self.caches.get() {
            caches.forget_windows();
        }
    }
}
