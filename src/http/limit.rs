//! Per-caller rate limiting of registration requests (token bucket): a client hammering
//! "enroll" gets `429 rate_limited` with `Retry-After` instead of a seat in the queue.

use dashmap::DashMap;
use std::time::Instant;
use uuid::Uuid;

/// Token buckets keyed by caller.
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: DashMap<Uuid, (f64, Instant)>,
}

impl RateLimiter {
    /// `per_sec` sustained, `burst` at once; `per_sec == 0` disables limiting.
    pub fn new(per_sec: u32, burst: u32) -> Self {
        Self {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
            buckets: DashMap::new(),
        }
    }

    /// Take one token for `caller`; `Err(seconds)` to wait when none is left.
    pub fn check(&self, caller: Uuid) -> Result<(), u32> {
        if self.per_sec <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut bucket = self.buckets.entry(caller).or_insert((self.burst, now));
        let (tokens, last) = *bucket;
        let refilled =
            (tokens + now.duration_since(last).as_secs_f64() * self.per_sec).min(self.burst);
        if refilled >= 1.0 {
            *bucket = (refilled - 1.0, now);
            Ok(())
        } else {
            *bucket = (refilled, now);
            Err(((1.0 - refilled) / self.per_sec).ceil().max(1.0) as u32)
        }
    }

    /// Drop buckets that have been full for a while (bounded memory).
    pub fn prune(&self) {
        let burst = self.burst;
        let per_sec = self.per_sec;
        self.buckets
            .retain(|_, (tokens, last)| *tokens + last.elapsed().as_secs_f64() * per_sec < burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_with_wait() {
        let l = RateLimiter::new(1, 3);
        let id = Uuid::nil();
        assert!((0..3).all(|_| l.check(id).is_ok()));
        assert_eq!(l.check(id), Err(1));
        assert!(l.check(Uuid::max()).is_ok(), "buckets are per caller");
        assert!(RateLimiter::new(0, 0).check(id).is_ok());
    }
}
