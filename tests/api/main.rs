//! Integration tests of registrar against the real PostgreSQL: each test spins up the
//! real server on port 0 against a fresh database of its own (see `helpers`).

mod admin_create;
mod admission;
mod auth_roles;
mod catalog_admin;
mod cluster;
mod cluster_procs;
mod console;
mod course_codes;
mod cross_node;
mod dead_letters;
mod events;
mod faults_coordinator;
mod faults_membership;
mod faults_swap;
mod flood;
mod grafana;
mod group_commit;
mod held_proxy;
mod helpers;
mod idempotency;
mod input_errors;
mod jwt_secret;
mod limits;
mod login_limits;
mod openapi;
mod outage;
mod outbox;
mod proxy;
mod registration_rules;
mod reshard;
mod restart;
mod retention;
mod verify;
mod waitlist;
mod web;
