//! Supervision of a node's background tasks (the committer workers, the outbox relay, the
//! mirror writer, the in-process consumers): [`supervise`] runs a task, restarts it with
//! backoff when it panics, and records in [`TaskHealth`] whether it is up and how often it
//! was restarted, which `/readyz` and `/metrics` report. A task that returns is done (it
//! saw the shutdown, or its input closed) and is not restarted.

use crate::backoff::Backoff;
use crate::shutdown::Shutdown;
use dashmap::DashMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The state of one supervised task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TaskState {
    /// Running now (false between a panic and its restart).
    pub up: bool,
    /// Panics so far, each followed by a restart.
    pub restarts: u64,
}

/// The states of a node's supervised tasks, by name.
#[derive(Debug, Default)]
pub struct TaskHealth {
    tasks: DashMap<String, TaskState>,
}

impl TaskHealth {
    /// Every task's state, by name.
    pub fn report(&self) -> BTreeMap<String, TaskState> {
        self.tasks
            .iter()
            .map(|t| (t.key().clone(), *t.value()))
            .collect()
    }

    /// Tasks whose name starts with `prefix` that are down now.
    pub fn down(&self, prefix: &str) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|t| t.key().starts_with(prefix) && !t.value().up)
            .map(|t| t.key().clone())
            .collect()
    }

    /// Panics of every task so far.
    pub fn restarts(&self) -> u64 {
        self.tasks.iter().map(|t| t.value().restarts).sum()
    }

    fn set(&self, name: &str, up: bool, panicked: bool) {
        let mut state = self.tasks.entry(name.to_string()).or_default();
        state.up = up;
        state.restarts += u64::from(panicked);
    }
}

/// Run `task()` as `name`, restarting it with backoff (100 ms doubling to 5 s) each time it
/// panics, until it returns or `shutdown` (if any) starts during a backoff.
pub fn supervise<F, Fut>(
    name: String,
    health: Arc<TaskHealth>,
    mut shutdown: Option<Shutdown>,
    mut task: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            health.set(&name, true, false);
            let run = tokio::spawn(task()).await;
            match run {
                Ok(()) => {
                    health.set(&name, false, false);
                    return;
                }
                Err(err) if err.is_panic() => {
                    tracing::error!(task = %name, error = %err, "background task panicked; restarting");
                    health.set(&name, false, true);
                }
                Err(err) => {
                    tracing::warn!(task = %name, error = %err, "background task cancelled");
                    health.set(&name, false, false);
                    return;
                }
            }
            let delay = backoff.next_delay();
            let stopping = match shutdown.as_mut() {
                Some(shutdown) => shutdown.sleep(delay).await,
                None => {
                    tokio::time::sleep(delay).await;
                    false
                }
            };
            if stopping {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::ShutdownTrigger;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_and_its_health_reported() {
        let health = Arc::new(TaskHealth::default());
        let trigger = ShutdownTrigger::new();
        let runs = Arc::new(AtomicU32::new(0));
        let handle = supervise("relay".into(), health.clone(), Some(trigger.subscribe()), {
            let (runs, shutdown) = (runs.clone(), trigger.subscribe());
            move || {
                let (runs, mut shutdown) = (runs.clone(), shutdown.clone());
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                        panic!("injected");
                    }
                    shutdown.recv().await;
                }
            }
        });
        while runs.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let state = health.report()["relay"];
        assert_eq!(
            state,
            TaskState {
                up: true,
                restarts: 2
            }
        );
        assert!(health.down("relay").is_empty());
        trigger.fire();
        handle.await.unwrap();
        assert_eq!(health.down("relay"), vec!["relay".to_string()]);
        assert_eq!(health.restarts(), 2);
    }
}
