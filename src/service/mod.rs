//! The application services between HTTP and the actors/store: authentication and the
//! registration flow (student rules under a per-student lock, then the section actor).

pub mod admin;
pub mod auth;
pub mod bundle;
pub mod cart;
pub mod eligibility;
pub mod enrollment_options;
pub mod feed;
pub mod idempotency;
pub mod login_guard;
pub mod offers;
pub mod permits;
pub mod policy;
pub mod registration;
pub mod retention;
pub mod rule_cache;
pub mod schedule;
pub mod student_locks;
pub mod swap;
pub mod token_buckets;
