//! # registrar
//!
//! A course-registration server built for the minute a registration window opens.
//!
//! # Layout
//! - [`config`]: typed settings (defaults ← file ← `REGISTRAR_*`).
//! - [`startup`]: [`startup::Application`], the seam tests and `main` share.
//! - [`http`]: the REST API; errors become problem+json only in `http::error`.
//! - [`service`]: authentication, the registration flow (student locks, rule caches,
//!   idempotency), schedules, the seat feed behind the live seat streams.
//! - [`store`]: the SQL of the API, the hot path and the background tasks, including the
//!   section actors' batch commit (the consumers, `verify` and the shard claim keep theirs
//!   beside their logic; see `store`).
//! - [`cluster`]: shards and ownership epochs.
//! - [`shard`]: shard hashing, the stable placement of sections and students (a leaf the
//!   store and the cluster share).
//! - [`event_schema`]: the event kinds and the JSON body of every event (a leaf: the store
//!   writes it, `events` and `verify` read it).
//! - [`events`]: the outbox relay to RabbitMQ and the event consumers.
//! - [`metrics`]: the node's Prometheus registry (`prometheus-client`) and the small
//!   handles (counters, histograms, the request figures its heartbeat reports) every layer
//!   is given; a leaf, the collector that reads the layers is `http::figures`.
//! - [`redis`]: all Redis access: the seat-count mirror (which also publishes each commit's
//!   counts), the seat channel's subscriber and their wire types.
//! - [`resources`]: the API's resources (terms, courses, sections, students, holds) and
//!   the validation of client input.
//! - [`shutdown`]: the shutdown signal and the handle background tasks watch.
//! - [`backoff`]: reconnect delays of the background tasks.
//! - [`faults`]: failpoints of the fault suite (compiled in only for tests).
//! - [`supervise`]: restarts of panicked background tasks, and their health.
//! - [`cli`]: the `registrar` command line.
//! - [`verify`]: the invariant and acknowledgement checker behind `registrar verify`.
//!
//! The section actors and the pure seat/waitlist/student rules live in the
//! `registrar-actors` crate.

pub mod backoff;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod event_schema;
pub mod events;
pub mod faults;
pub mod http;
pub mod metrics;
pub mod redis;
pub mod resources;
pub mod service;
pub mod shard;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod supervise;
pub mod telemetry;
pub mod verify;
