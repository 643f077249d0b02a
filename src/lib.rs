//! # registrar
//!
//! A course-registration server built for the minute a registration window opens.
//!
//! # Layout
//! The map of the house, top layer first. A module imports only modules below it (the
//! leaves at the bottom import no other module of the crate), so a request reads top to
//! bottom: [`http`] decides where it is served and hands the [`service`] the home pass,
//! the service asks the section actors through the [`cluster`]'s router, the actors
//! commit through the [`store`].
//!
//! - [`cli`]: the `registrar` command line (`serve`, `migrate`, `seed`, `verify`, the
//!   operator's `cluster` commands, the event consumers).
//! - [`startup`]: [`startup::Application`], the seam tests and `main` share: it builds
//!   the parts, wires the commit fan-out and the health probe, and runs and stops them.
//! - [`http`]: the REST API and the internal hop's endpoints; `http::forward` sends a
//!   student's request to the student's home node, errors become problem+json only in
//!   `http::error`, and `http::figures` is the scrape-time collector of every layer.
//! - [`import`]: catalog and roster import from a student information system's files
//!   (`registrar import`, `POST /api/v1/imports`): parsing, the API's validation, batched
//!   upserts keyed by the SIS's codes, a demo catalog generator.
//! - [`service`]: authentication, the registration flow (student locks, rule caches,
//!   idempotency, swaps), schedules, the seat feed behind the live seat streams.
//! - [`cluster`]: shards and nodes: membership and leases, the shard map, the coordinator,
//!   handoffs, the home pass, routing of section commands, the operator's use cases.
//! - [`events`]: the outbox relay to RabbitMQ and the event consumers.
//! - [`redis`]: all Redis access: the seat-count mirror (which also publishes each
//!   commit's counts), the seat channel's subscriber and their wire types.
//! - [`verify`]: the invariant and acknowledgement checker behind `registrar verify`
//!   (its SQL beside its checks).
//! - [`store`]: the SQL of the API, the hot path and the background tasks, including the
//!   section actors' batch commit and the cluster's rows and states.
//! - [`supervise`]: restarts of panicked background tasks, and their health.
//! - Leaves: [`config`] (typed settings: defaults ← file ← `REGISTRAR_*`), [`resources`]
//!   (the API's resources and the validation of client input), [`metrics`] (the registry
//!   and the small handles every layer is given), [`shard`] (shard hashing),
//!   [`event_schema`] (every event's kind and body), [`faults`] (failpoints of the fault
//!   suite, compiled in only for tests), [`shutdown`], [`backoff`], [`telemetry`].
//!
//! The section actors and the pure seat/waitlist/student rules live in the
//! `registrar-actors` crate (`actors/`), below all of these.

pub mod backoff;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod event_schema;
pub mod events;
pub mod faults;
pub mod http;
pub mod import;
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
