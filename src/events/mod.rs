//! Events: the schema ([`payload`]), the transactional outbox relay to RabbitMQ
//! ([`relay`]), the consumers (`notify`, `analytics`) and a tail for operators.
//!
//! Events go to a topic exchange (default `registrar.events`) with the event kind as the
//! routing key; bodies are the outbox payloads as written at commit.

pub mod amqp;
pub mod consumers;
pub mod payload;
pub mod relay;

use std::time::Duration;

/// Exponential backoff for reconnecting to a dependency.
#[derive(Debug)]
pub struct Backoff {
    current: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    /// From `min` doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            current: min,
            min,
            max,
        }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        d
    }

    /// Back to the minimum after a success.
    pub fn reset(&mut self) {
        self.current = self.min;
    }
}

/// Sleep for `d`, or less if `shutdown` fires; true if shutting down.
pub async fn sleep_or_shutdown(
    d: Duration,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let seen: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(seen, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }
}
