//! Events: the schema ([`payload`]), the transactional outbox relay to RabbitMQ
//! ([`relay`]), the consumers (`notify`, `analytics`) and a tail for operators.
//!
//! Events go to a topic exchange (default `registrar.events`) with the event kind as the
//! routing key; bodies are the outbox payloads as written at commit.

pub mod amqp;
pub mod consumers;
pub mod payload;
pub mod relay;
