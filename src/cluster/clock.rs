//! The database's clock as this node reads it, and this node's own lease as it judges it.
//!
//! Leases are judged by PostgreSQL's `now()`, so every time-based rule is too: a node whose
//! clock runs ahead or behind must not open a registration window early or late. The node
//! measures the offset between the database clock and its own at every heartbeat (a
//! `clock_timestamp()` read, taken as the midpoint of the round trip) and [`DatabaseClock::now`]
//! is the local clock corrected by it.
//!
//! [`LeaseClock`] is the other half: how long ago this node last renewed its lease, by the
//! monotonic clock (no wall-clock step can extend it). A node that could not renew for
//! longer than the lease must assume it was declared dead and stop deciding anything.

use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The database's clock, from this node (see module docs).
#[derive(Debug, Default)]
pub struct DatabaseClock {
    /// Database time minus local time, in microseconds, as last measured.
    offset_us: AtomicI64,
}

impl DatabaseClock {
    /// The database's time now, by the local clock and the last measured offset.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }

    /// The last measured offset (database minus local).
    pub fn offset(&self) -> TimeDelta {
        TimeDelta::microseconds(self.offset_us.load(Ordering::Relaxed))
    }

    /// Record a reading: the database said `database` between the local `sent` and
    /// `received`.
    pub fn record(&self, sent: DateTime<Utc>, database: DateTime<Utc>, received: DateTime<Utc>) {
        let offset = offset_of(sent, database, received);
        let micros = offset
            .num_microseconds()
            .unwrap_or(if offset < TimeDelta::zero() {
                i64::MIN
            } else {
                i64::MAX
            });
        self.offset_us.store(micros, Ordering::Relaxed);
    }
}

/// The database clock minus the local clock, from one reading: the database's time is
/// taken to be that of the midpoint of the round trip, so the error is at most half of it.
pub fn offset_of(
    sent: DateTime<Utc>,
    database: DateTime<Utc>,
    received: DateTime<Utc>,
) -> TimeDelta {
    let midpoint = sent + (received - sent) / 2;
    database - midpoint
}

/// When this node last renewed its lease, by the monotonic clock (see module docs).
#[derive(Debug)]
pub struct LeaseClock {
    /// When the last successful renewal was sent (the database stamped it later).
    renewed: Mutex<Option<Instant>>,
    /// The lease time.
    lease: Duration,
}

impl LeaseClock {
    /// A lease of `lease`, not held yet.
    pub fn new(lease: Duration) -> Self {
        Self {
            renewed: Mutex::new(None),
            lease,
        }
    }

    /// A renewal sent at `sent` succeeded.
    pub fn renewed(&self, sent: Instant) {
        let mut renewed = self.renewed.lock().expect("lease lock");
        *renewed = Some(renewed.map_or(sent, |r| r.max(sent)));
    }

    /// Whether the lease still holds: renewed less than the lease time ago.
    pub fn holds(&self) -> bool {
        self.holds_at(Instant::now())
    }

    fn holds_at(&self, now: Instant) -> bool {
        self.renewed
            .lock()
            .expect("lease lock")
            .is_some_and(|r| now.saturating_duration_since(r) < self.lease)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap() + TimeDelta::milliseconds(millis)
    }

    #[test]
    fn the_offset_is_the_database_time_minus_the_round_trips_midpoint() {
        // Sent at 0.000, answered at 0.100: the database's 7200.050 is the local 0.050.
        let offset = offset_of(at(0, 0), at(7_200, 50), at(0, 100));
        assert_eq!(offset, TimeDelta::hours(2));
        // A clock two hours ahead of the database: negative.
        let offset = offset_of(at(7_200, 0), at(0, 10), at(7_200, 20));
        assert_eq!(offset, -TimeDelta::hours(2));
        // No round trip at all.
        assert_eq!(offset_of(at(5, 0), at(5, 0), at(5, 0)), TimeDelta::zero());
    }

    #[test]
    fn the_database_clock_applies_the_recorded_offset() {
        let clock = DatabaseClock::default();
        assert_eq!(clock.offset(), TimeDelta::zero());
        let local = Utc::now();
        clock.record(
            local,
            local - TimeDelta::hours(2) + TimeDelta::milliseconds(3),
            local + TimeDelta::milliseconds(6),
        );
        assert_eq!(clock.offset(), -TimeDelta::hours(2));
        let skew = clock.now() - (Utc::now() - TimeDelta::hours(2));
        assert!(skew.abs() < TimeDelta::seconds(1), "{skew}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_lease_holds_for_the_lease_time_after_the_last_renewal_sent() {
        let lease = LeaseClock::new(Duration::from_millis(600));
        assert!(!lease.holds(), "not held before the first renewal");
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(50)).await;
        lease.renewed(sent);
        assert!(lease.holds());
        tokio::time::advance(Duration::from_millis(549)).await;
        assert!(lease.holds());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!lease.holds(), "600 ms after the renewal was sent");
        // A late answer to an older renewal does not move it back.
        lease.renewed(sent);
        assert!(!lease.holds());
        lease.renewed(Instant::now());
        assert!(lease.holds());
    }
}
