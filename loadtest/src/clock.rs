//! The run's one clock: Unix milliseconds read from a monotonic source, so the stamps of
//! the acknowledgement log ([`crate::acks`]), the samples of the tally ([`crate::stats`])
//! and the scenarios' note of goose's start all share one timeline that never goes
//! backwards within a run.
//!
//! A leaf module: it imports nothing of this crate, so every other module may use it.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static CLOCK: OnceLock<(i64, Instant)> = OnceLock::new();

/// Unix milliseconds now, monotonic within this process.
pub fn now_ms() -> i64 {
    let (unix_ms, start) = *CLOCK.get_or_init(|| {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        (unix, Instant::now())
    });
    unix_ms + start.elapsed().as_millis() as i64
}
