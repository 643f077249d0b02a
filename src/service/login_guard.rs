//! What stands between the login route and argon2: a bounded number of password hashes at
//! once (each takes ~19 MiB and a core for tens of milliseconds, so an unbounded flood
//! exhausts a pod's memory) with a bounded wait for a slot, and allowances of FAILED
//! logins per username and per client address, so guessing is slow whichever of the two
//! an attacker varies. Successful logins never use up an allowance: a load test logging in
//! thousands of students from one address is never limited.

use super::token_buckets::TokenBuckets;
use crate::config::HttpSettings;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a login was not let through to the password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    /// Too many failed logins for this username or from this address; retry after so many
    /// seconds.
    #[error("too many failed logins; retry in {0} s")]
    RateLimited(u32),
    /// Every hashing slot is taken and the wait queue is full.
    #[error("too many logins in progress")]
    Overloaded,
}

/// Failure allowances: a token bucket per key holding `max` failures that refills
/// completely over `window_secs`; only failures take from it. `max == 0`: no limit.
struct FailureBudget<K: Eq + Hash> {
    /// The buckets, when limited.
    buckets: Option<TokenBuckets<K>>,
}

impl<K: Eq + Hash + Clone> FailureBudget<K> {
    fn new(max: u32, window_secs: u64) -> Self {
        let max = f64::from(max);
        let per_sec = max / window_secs.max(1) as f64;
        Self {
            buckets: (max > 0.0).then(|| TokenBuckets::new(max, per_sec)),
        }
    }

    /// Seconds until one failure is allowed again, when none is now.
    fn wait(&self, key: &K, now: Instant) -> Option<u32> {
        self.buckets.as_ref()?.wait(key, now)
    }

    /// Count one failure for `key` (it may be given back with [`FailureBudget::give_back`]).
    fn take(&self, key: &K, now: Instant) -> Result<(), u32> {
        self.buckets.as_ref().map_or(Ok(()), |b| b.take(key, now))
    }

    /// Undo a [`FailureBudget::take`]: the attempt succeeded.
    fn give_back(&self, key: &K) {
        if let Some(b) = &self.buckets {
            b.give_back(key);
        }
    }

    /// Forget keys whose allowance has refilled (bounded memory).
    fn prune(&self) {
        if let Some(b) = &self.buckets {
            b.prune();
        }
    }
}

/// The key a client address is limited under: the address itself for IPv4, its /64 for
/// IPv6 (one host commonly holds a whole /64).
fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

/// The guard of the login route (one per node).
pub struct LoginGuard {
    /// Hashing slots.
    hashing: Arc<Semaphore>,
    /// Logins holding or waiting for a slot.
    admitted: Arc<AtomicUsize>,
    /// Most logins holding or waiting for a slot.
    max_admitted: usize,
    /// Failure allowances per username.
    per_user: FailureBudget<String>,
    /// Failure allowances per client address.
    per_address: FailureBudget<IpAddr>,
}

/// A login's right to hash one password. Move it into the blocking task that hashes, so the
/// slot stays taken until the hash is done even when the client goes away.
pub struct HashSlot {
    _permit: OwnedSemaphorePermit,
    admitted: Arc<AtomicUsize>,
}

impl Drop for HashSlot {
    fn drop(&mut self) {
        self.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A login attempt counted as failed until [`Attempt::succeeded`] says otherwise; dropping
/// it (wrong password, client gone) keeps it counted.
pub struct Attempt<'a> {
    guard: &'a LoginGuard,
    username: String,
    address: Option<IpAddr>,
}

impl Attempt<'_> {
    /// The password was right: the attempt does not count against any allowance.
    pub fn succeeded(self) {
        self.guard.per_user.give_back(&self.username);
        if let Some(address) = self.address {
            self.guard.per_address.give_back(&address);
        }
    }
}

impl LoginGuard {
    /// A guard with the login settings of `http`.
    pub fn new(http: &HttpSettings) -> Self {
        let slots = if http.login_max_concurrent_hashes == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
        } else {
            http.login_max_concurrent_hashes
        };
        Self {
            hashing: Arc::new(Semaphore::new(slots)),
            admitted: Arc::default(),
            max_admitted: slots + http.login_max_queued_hashes,
            per_user: FailureBudget::new(
                http.login_max_failures_per_user,
                http.login_failure_window_secs,
            ),
            per_address: FailureBudget::new(
                http.login_max_failures_per_address,
                http.login_failure_window_secs,
            ),
        }
    }

    /// Refuse at once when `username` or `address` has no failure left (cheap: no slot is
    /// taken, nothing is hashed).
    pub fn check(&self, username: &str, address: Option<IpAddr>) -> Result<(), LoginRefusal> {
        let now = Instant::now();
        let wait = [
            self.per_user.wait(&username.to_string(), now),
            address.and_then(|a| self.per_address.wait(&address_key(a), now)),
        ];
        match wait.into_iter().flatten().max() {
            Some(secs) => Err(LoginRefusal::RateLimited(secs)),
            None => Ok(()),
        }
    }

    /// A hashing slot, waiting for one only if the wait queue has room.
    pub async fn slot(&self) -> Result<HashSlot, LoginRefusal> {
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.max_admitted {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(LoginRefusal::Overloaded);
        }
        // From here the count is released by HashSlot's drop, or below on failure.
        match self.hashing.clone().acquire_owned().await {
            Ok(permit) => Ok(HashSlot {
                _permit: permit,
                admitted: self.admitted.clone(),
            }),
            Err(_closed) => {
                self.admitted.fetch_sub(1, Ordering::SeqCst);
                Err(LoginRefusal::Overloaded)
            }
        }
    }

    /// Count an attempt against both allowances before its password is checked, so
    /// concurrent guesses cannot overrun them; [`Attempt::succeeded`] gives it back.
    pub fn attempt(
        &self,
        username: &str,
        address: Option<IpAddr>,
    ) -> Result<Attempt<'_>, LoginRefusal> {
        let now = Instant::now();
        let username = username.to_string();
        let address = address.map(address_key);
        self.per_user
            .take(&username, now)
            .map_err(LoginRefusal::RateLimited)?;
        if let Some(a) = address
            && let Err(secs) = self.per_address.take(&a, now)
        {
            self.per_user.give_back(&username);
            return Err(LoginRefusal::RateLimited(secs));
        }
        Ok(Attempt {
            guard: self,
            username,
            address,
        })
    }

    /// Forget allowances that have refilled.
    pub fn prune(&self) {
        self.per_user.prune();
        self.per_address.prune();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(slots: usize, queued: usize, per_user: u32, per_address: u32) -> HttpSettings {
        HttpSettings {
            login_max_concurrent_hashes: slots,
            login_max_queued_hashes: queued,
            login_max_failures_per_user: per_user,
            login_max_failures_per_address: per_address,
            login_failure_window_secs: 60,
            ..HttpSettings::default()
        }
    }

    #[test]
    fn failures_use_up_allowances_and_successes_give_them_back() {
        let guard = LoginGuard::new(&settings(1, 0, 2, 100));
        let addr = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..10 {
            guard.attempt("bob", addr).unwrap().succeeded();
        }
        assert!(guard.check("bob", addr).is_ok());
        drop(guard.attempt("bob", addr).unwrap());
        drop(guard.attempt("bob", addr).unwrap());
        assert_eq!(guard.check("bob", addr), Err(LoginRefusal::RateLimited(30)));
        assert!(guard.attempt("bob", addr).is_err());
        assert!(
            guard.check("alice", addr).is_ok(),
            "allowances are per username"
        );
    }

    #[test]
    fn ipv6_addresses_share_their_64_prefix() {
        let guard = LoginGuard::new(&settings(1, 0, 0, 1));
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        drop(guard.attempt("x", Some(a)).unwrap());
        assert!(guard.check("y", Some(b)).is_err());
        assert!(
            guard
                .check("y", Some("2001:db9::1".parse().unwrap()))
                .is_ok()
        );
    }

    #[tokio::test]
    async fn logins_beyond_the_slots_and_queue_are_refused_and_the_slot_comes_back() {
        let guard = Arc::new(LoginGuard::new(&settings(1, 1, 0, 0)));
        let first = guard.slot().await.unwrap();
        let second = tokio::spawn({
            let guard = guard.clone();
            async move { guard.slot().await.map(drop) }
        });
        // One holds the slot, one waits in the queue of one: a third is refused.
        while guard.admitted.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(guard.slot().await.err(), Some(LoginRefusal::Overloaded));
        drop(first);
        second.await.unwrap().unwrap();
        assert_eq!(guard.admitted.load(Ordering::SeqCst), 0);
        assert!(guard.slot().await.is_ok());
    }
}
