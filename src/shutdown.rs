//! Shutdown of a node: the OS signal that starts it (ctrl-c, or SIGTERM from Kubernetes),
//! the [`ShutdownTrigger`] that announces it, and the [`Shutdown`] handle each background
//! task holds to notice it (the shape of mini-redis's `Shutdown`, on a `watch` channel so
//! a task that subscribes late still sees a shutdown already under way).

use std::time::Duration;
use tokio::sync::watch;

/// Resolves on ctrl-c or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

/// Announces a shutdown to every [`Shutdown`] it handed out. Dropping it announces one too.
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl Default for ShutdownTrigger {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownTrigger {
    /// A trigger nobody has fired.
    pub fn new() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }

    /// A handle that notices when this trigger fires.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }

    /// Start the shutdown.
    pub fn fire(&self) {
        self.tx.send_replace(true);
    }
}

/// A background task's view of the node's shutdown.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// True once the shutdown has started.
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow() || self.rx.has_changed().is_err()
    }

    /// Resolves once the shutdown has started (at once if it already has).
    pub async fn recv(&mut self) {
        // An error means the trigger is gone, which is a shutdown too.
        let _ = self.rx.wait_for(|stop| *stop).await;
    }

    /// Sleep for `d`, or less if the shutdown starts; true if shutting down.
    pub async fn sleep(&mut self, d: Duration) -> bool {
        if self.is_shutdown() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = self.recv() => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_sleep_ends_early_on_shutdown_and_late_subscribers_see_it() {
        let trigger = ShutdownTrigger::new();
        let mut early = trigger.subscribe();
        assert!(!early.is_shutdown());
        assert!(!early.sleep(Duration::from_millis(10)).await);
        let sleeper = tokio::spawn(async move { early.sleep(Duration::from_secs(3600)).await });
        tokio::task::yield_now().await;
        trigger.fire();
        assert!(sleeper.await.unwrap());
        let mut late = trigger.subscribe();
        assert!(late.is_shutdown());
        late.recv().await;
    }

    #[tokio::test]
    async fn dropping_the_trigger_is_a_shutdown() {
        let mut shutdown = ShutdownTrigger::new().subscribe();
        shutdown.recv().await;
        assert!(shutdown.is_shutdown());
    }
}
