//! Token buckets by key: each key holds up to `capacity` tokens that refill at `per_sec`.
//! The registration rate limit (one token per request) and the login guard's failure
//! allowances (one token per failed login, given back on success) both count with it.

use dashmap::DashMap;
use std::hash::Hash;
use std::time::Instant;

/// Token buckets keyed by `K` (see the module docs).
pub struct TokenBuckets<K: Eq + Hash> {
    /// Tokens a full bucket holds.
    capacity: f64,
    /// Refill per second.
    per_sec: f64,
    /// Buckets touched and not yet full again: (tokens, when counted).
    buckets: DashMap<K, (f64, Instant)>,
}

impl<K: Eq + Hash + Clone> TokenBuckets<K> {
    /// Buckets of `capacity` tokens refilling at `per_sec` (which must be positive).
    pub fn new(capacity: f64, per_sec: f64) -> Self {
        Self {
            capacity,
            per_sec,
            buckets: DashMap::new(),
        }
    }

    fn refilled(&self, (tokens, at): (f64, Instant), now: Instant) -> f64 {
        (tokens + now.saturating_duration_since(at).as_secs_f64() * self.per_sec).min(self.capacity)
    }

    fn seconds_to_one(&self, tokens: f64) -> u32 {
        ((1.0 - tokens) / self.per_sec).ceil().max(1.0) as u32
    }

    /// Seconds until `key` has a token again, when it has none now.
    pub fn wait(&self, key: &K, now: Instant) -> Option<u32> {
        let tokens = self
            .buckets
            .get(key)
            .map_or(self.capacity, |b| self.refilled(*b, now));
        (tokens < 1.0).then(|| self.seconds_to_one(tokens))
    }

    /// Take one token from `key`'s bucket; `Err(seconds)` to wait when none is left.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), u32> {
        let mut bucket = self
            .buckets
            .entry(key.clone())
            .or_insert((self.capacity, now));
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            Ok(())
        } else {
            *bucket = (tokens, now);
            Err(self.seconds_to_one(tokens))
        }
    }

    /// Put back a token taken from `key` (what it counted did not happen after all).
    pub fn give_back(&self, key: &K) {
        if let Some(mut bucket) = self.buckets.get_mut(key) {
            bucket.0 = (bucket.0 + 1.0).min(self.capacity);
        }
    }

    /// Forget buckets that are full again (bounded memory).
    pub fn prune(&self) {
        let now = Instant::now();
        self.buckets
            .retain(|_, bucket| self.refilled(*bucket, now) < self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_until_empty_then_wait_and_give_back() {
        let b = TokenBuckets::new(2.0, 0.5);
        let now = Instant::now();
        assert_eq!(b.take(&"k", now), Ok(()));
        assert_eq!(b.take(&"k", now), Ok(()));
        assert_eq!(b.take(&"k", now), Err(2));
        assert_eq!(b.wait(&"k", now), Some(2));
        assert_eq!(b.wait(&"other", now), None, "buckets are per key");
        b.give_back(&"k");
        assert_eq!(b.wait(&"k", now), None);
    }
}
