//! Sign-in before the window opens (`--pre-login`): students log in ahead of their
//! registration window, so a benchmark of the window's first seconds should not pay for
//! password hashing inside the burst. Before goose starts, this module logs in the run's
//! students (`--first-student` .. `+ --students`) with a bounded number of concurrent
//! requests, spread over `--hosts` like the users, times each login, and keeps the tokens;
//! the scenarios then take a student's token from here instead of logging in.
//!
//! The login figures are reported on their own (`pre_login` in the summary): logins per
//! second and their p50/p99, measured over the whole sign-in phase.

use crate::wire::{HOME_HEADER, Student, demo_password, token_subject};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static TOKENS: OnceLock<HashMap<u32, Student>> = OnceLock::new();

/// The sign-in phase, as measured.
#[derive(Clone, Debug, Serialize)]
pub struct PreLogin {
    /// Students asked to sign in.
    pub students: u32,
    /// Tokens received.
    pub tokens: u32,
    /// Logins answered otherwise (wrong password, 429, 5xx, no answer).
    pub failed: u32,
    /// Logins per second over the phase.
    pub per_s: f64,
    /// Median login time.
    pub p50_ms: f64,
    /// 99th percentile login time.
    pub p99_ms: f64,
    /// Wall time of the phase.
    pub seconds: f64,
}

/// A signed-in student's token, if the sign-in phase got one.
pub fn token(number: u32) -> Option<Student> {
    TOKENS.get()?.get(&number).cloned()
}

/// Log in students `first .. first + count` over `hosts` (round-robin), `concurrency` at a time.
pub async fn run(
    hosts: &[String],
    first: u32,
    count: u32,
    concurrency: usize,
) -> anyhow::Result<PreLogin> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    let password = demo_password();
    let started = Instant::now();
    let results: Vec<(u32, Option<Student>, Duration)> = stream::iter(0..count)
        .map(|i| {
            let number = first + i;
            let url = format!(
                "{}/api/v1/auth/login",
                hosts[i as usize % hosts.len()].trim_end_matches('/')
            );
            let body =
                serde_json::json!({"username": format!("s{number:06}"), "password": password});
            let client = client.clone();
            async move {
                let t = Instant::now();
                let student = async {
                    let r = client.post(&url).json(&body).send().await.ok()?;
                    if !r.status().is_success() {
                        return None;
                    }
                    let home = r
                        .headers()
                        .get(HOME_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let v: serde_json::Value = r.json().await.ok()?;
                    let token = v.get("access_token")?.as_str()?.to_string();
                    let id = token_subject(&token)?;
                    Some(Student { id, token, home })
                }
                .await;
                (number, student, t.elapsed())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let mut times: Vec<f64> = results
        .iter()
        .map(|(_, _, d)| d.as_secs_f64() * 1000.0)
        .collect();
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if times.is_empty() {
            return 0.0;
        }
        times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1]
    };
    let mut tokens = HashMap::with_capacity(results.len());
    let mut failed = 0;
    for (number, student, _) in results {
        match student {
            Some(s) => {
                tokens.insert(number, s);
            }
            None => failed += 1,
        }
    }
    let summary = PreLogin {
        students: count,
        tokens: tokens.len() as u32,
        failed,
        per_s: if seconds > 0.0 {
            tokens.len() as f64 / seconds
        } else {
            0.0
        },
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        seconds,
    };
    let _ = TOKENS.set(tokens);
    Ok(summary)
}
