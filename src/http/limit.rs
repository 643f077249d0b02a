//! Per-caller rate limiting of registration requests (token bucket): a client hammering
//! "enroll" gets `429 rate_limited` with `Retry-After` instead of a seat in the queue.

use crate::service::token_buckets::TokenBuckets;
use std::time::Instant;
use uuid::Uuid;

/// Token buckets keyed by caller; `None` when limiting is off.
pub struct RateLimiter {
    buckets: Option<TokenBuckets<Uuid>>,
}

impl RateLimiter {
    /// `per_sec` sustained, `burst` at once; `per_sec == 0` disables limiting.
    pub fn new(per_sec: u32, burst: u32) -> Self {
        let buckets =
            (per_sec > 0).then(|| TokenBuckets::new(f64::from(burst.max(1)), f64::from(per_sec)));
        Self { buckets }
    }

    /// Take one token for `caller`; `Err(seconds)` to wait when none is left.
    pub fn check(&self, caller: Uuid) -> Result<(), u32> {
        self.buckets
            .as_ref()
            .map_or(Ok(()), |b| b.take(&caller, Instant::now()))
    }

    /// Drop buckets that are full again (bounded memory).
    pub fn prune(&self) {
        if let Some(b) = &self.buckets {
            b.prune();
        }
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
