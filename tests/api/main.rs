//! Integration tests of registrar against the real PostgreSQL: each test spins up the
//! real server on port 0 against a fresh database of its own (see `helpers`).

mod admission;
mod auth_roles;
mod catalog_admin;
mod course_codes;
mod events;
mod flood;
mod group_commit;
mod helpers;
mod input_errors;
mod limits;
mod openapi;
mod outage;
mod proxy;
mod registration_rules;
mod restart;
mod verify;
mod waitlist;
