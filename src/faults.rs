//! Failpoints: the named places where the fault suite makes the server fail at an exact
//! moment (between the two halves of a swap, after a COMMIT before its reply, inside a
//! handoff), with the `fail` crate. They are compiled in only with the `failpoints`
//! feature, which the tests turn on; in a production build [`hit`] is a constant `false`.
//!
//! A failpoint strikes for one key (a student, a section) so that tests running side by
//! side in one process do not trip each other: set it to `return(<key>)`, or
//! `return(*)` for every key. A process reads `FAILPOINTS=name=return(<key>);...` at start.
//!
//! The failpoints, and the moment each one strikes:
//!
//! | name | key | where | what it does |
//! |---|---|---|---|
//! | `swap-between-halves` | student | `service::swap` | the swap stops after its add, before its drop (left under way) |
//! | `bundle-after-holds` | student | `service::bundle` | a decision over several sections stops after its holds were sent, before it is confirmed or cancelled (left pending: the home "died") |
//! | `bundle-holding` | student | `service::bundle` | the decision holds after every hold was answered, before it is confirmed or cancelled ([`hold`]) |
//! | `bundle-decided` | student | `service::bundle` | the decision holds once confirmed or cancelled, before any part is carried out ([`hold`]) |
//! | `bundle-after-decision` | student | `service::bundle` | the decision stops once confirmed or cancelled, before any part is carried out |
//! | `commit-unavailable` | section | `store::sections::committer` | the commit fails as if PostgreSQL were gone |
//! | `commit-stall` | section | `store::sections::committer` | the commit waits `<milliseconds>` before it runs |
//! | `commit-fails-late` | student | `store::sections::committer` | the commit of the batch deciding the student's command waits `<milliseconds>`, then fails as if PostgreSQL were gone (later batches of its section queue behind it) |
//! | `commit-reply-lost` | section | `store::sections::committer` | the commit succeeds, its answer is lost |
//! | `commit-hold` | node | `store::sections::write` | the commit waits 30 s holding `FOR SHARE` on its shard rows |
//! | `handoff-hold` | node | `cluster::handoff` | the old owner's handoff holds with its shards' gates closed and quiet, before the ownership transaction: requests for the shards are held ([`hold`]) |

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

/// Hold the caller at failpoint `name` while it strikes for `key`: until the failpoint is
/// turned off (`return(<key>)`), or for `<milliseconds>` (`return(<key>:<milliseconds>)`,
/// for a process the test cannot reach once started). A hold logs a warning when it
/// begins, and [`holding`] counts the holds in progress, so a test can wait until the
/// moment it is about has come.
#[cfg(feature = "failpoints")]
pub async fn hold(name: &str, key: &(dyn Display + Sync)) {
    let bounded = delay(name, key);
    if bounded.is_none() && !hit(name, key) {
        return;
    }
    let _holding = Holding::begin(name, key);
    tracing::warn!(failpoint = name, key = %key, "failpoint holding");
    match bounded {
        Some(pause) => tokio::time::sleep(pause).await,
        // Polled, not woken: `fail` has no notification when an action changes.
        None => {
            while hit(name, key) {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }
}

/// Hold the caller at failpoint `name`: never, in this build.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn hold(_name: &str, _key: &(dyn Display + Sync)) {}

/// Holds in progress, per (failpoint, key).
#[cfg(feature = "failpoints")]
static HOLDING: std::sync::Mutex<Vec<(String, String, usize)>> = std::sync::Mutex::new(Vec::new());

/// One hold in progress at a failpoint, counted until it is dropped (the holder may be
/// cancelled mid-hold).
#[cfg(feature = "failpoints")]
struct Holding {
    name: String,
    key: String,
}

#[cfg(feature = "failpoints")]
impl Holding {
    fn begin(name: &str, key: &dyn Display) -> Holding {
        let (name, key) = (name.to_string(), key.to_string());
        let mut holding = HOLDING.lock().expect("failpoint holds");
        match holding.iter_mut().find(|h| h.0 == name && h.1 == key) {
            Some(h) => h.2 += 1,
            None => holding.push((name.clone(), key.clone(), 1)),
        }
        Holding { name, key }
    }
}

#[cfg(feature = "failpoints")]
impl Drop for Holding {
    fn drop(&mut self) {
        let mut holding = HOLDING.lock().expect("failpoint holds");
        if let Some(h) = holding
            .iter_mut()
            .find(|h| h.0 == self.name && h.1 == self.key)
        {
            h.2 -= 1;
        }
    }
}

/// How many callers are held at failpoint `name` for `key` now (in this process).
#[cfg(feature = "failpoints")]
pub fn holding(name: &str, key: &dyn Display) -> usize {
    let key = key.to_string();
    HOLDING
        .lock()
        .expect("failpoint holds")
        .iter()
        .find(|h| h.0 == name && h.1 == key)
        .map_or(0, |h| h.2)
}

#[cfg(all(test, feature = "failpoints"))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_hold_lasts_until_the_failpoint_is_turned_off_and_only_for_its_key() {
        let name = "faults-unit-hold";
        set(name, "return(held-key)").unwrap();
        // Another key passes at once.
        tokio::time::timeout(Duration::from_secs(1), hold(name, &"other-key"))
            .await
            .expect("another key is not held");
        let held = tokio::spawn(async move { hold(name, &"held-key").await });
        tokio::time::timeout(Duration::from_secs(5), async {
            while holding(name, &"held-key") == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the hold began");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !held.is_finished(),
            "the hold ended while the failpoint was set"
        );
        assert_eq!(holding(name, &"held-key"), 1);
        clear(name);
        tokio::time::timeout(Duration::from_secs(1), held)
            .await
            .expect("the hold ended once the failpoint was off")
            .unwrap();
        assert_eq!(holding(name, &"held-key"), 0);
    }

    #[tokio::test]
    async fn a_bounded_hold_ends_by_itself() {
        let name = "faults-unit-bounded-hold";
        set(name, "return(k:100)").unwrap();
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(2), hold(name, &"k"))
            .await
            .expect("the bounded hold ended by itself");
        assert!(started.elapsed() >= Duration::from_millis(100));
        clear(name);
    }
}
