//! Events: the schema ([`payload`], a re-export of the leaf [`crate::event_schema`]), the
//! transactional outbox relay to RabbitMQ ([`relay`]), the consumers (`notify`,
//! `analytics`) and a tail for operators.
//!
//! Events go to a topic exchange (default `registrar.events`) with the event kind as the
//! routing key; bodies are the outbox payloads as written at commit.

pub mod amqp;
pub mod consumers;
pub mod relay;

pub use crate::event_schema as payload;
