//! Failpoints: the named places where the fault suite makes the server fail at an exact
//! moment (between the two halves of a swap, after a COMMIT before its reply, inside a
//! handoff), with the `fail` crate. They are compiled in only with the `failpoints`
//! feature, which the tests turn on; in a production build [`hit`] is a constant `false`.
//!
//! A failpoint strikes for one key (a student, a section) so that tests running side by
//! side in one process do not trip each other: set it to `return(<key>)`, or
//! `return(*)` for every key. A process reads `FAILPOINTS=name=return(<key>);...` at start.

use std::fmt::Display;

/// Whether failpoint `name` is set to strike for `key` (see the module docs).
#[cfg(feature = "failpoints")]
pub fn hit(name: &str, key: &dyn Display) -> bool {
    fail::eval(name, |arg| {
        arg.is_some_and(|a| a == "*" || a == key.to_string())
    })
    .unwrap_or(false)
}

/// Whether failpoint `name` is set to strike for `key`: never, in this build.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str, _key: &dyn Display) -> bool {
    false
}

/// How long failpoint `name`, set to `return(<key>:<milliseconds>)`, stalls `key` (a
/// commit stuck in PostgreSQL, say).
#[cfg(feature = "failpoints")]
pub fn delay(name: &str, key: &dyn Display) -> Option<std::time::Duration> {
    fail::eval(name, |arg| {
        let arg = arg?;
        let (k, ms) = arg.rsplit_once(':')?;
        if k != "*" && k != key.to_string() {
            return None;
        }
        ms.parse().ok().map(std::time::Duration::from_millis)
    })
    .flatten()
}

/// How long failpoint `name` stalls `key`: never, in this build.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn delay(_name: &str, _key: &dyn Display) -> Option<std::time::Duration> {
    None
}

/// Set failpoint `name` to `action` (`return(<key>)`, `off`, or any `fail` action).
#[cfg(feature = "failpoints")]
pub fn set(name: &str, action: &str) -> Result<(), String> {
    fail::cfg(name, action)
}

/// Turn failpoint `name` off.
#[cfg(feature = "failpoints")]
pub fn clear(name: &str) {
    fail::remove(name);
}

/// Read the failpoints of `FAILPOINTS` (a process started by the fault suite); the
/// returned guard keeps them set.
#[cfg(feature = "failpoints")]
pub fn from_env() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}
