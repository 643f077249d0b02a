//! The time limit of ordinary requests: a request with no answer within
//! [`Settings::request_timeout`](crate::config::Settings::request_timeout) gets 503
//! `unavailable` with `Retry-After`, so a stuck dependency cannot hold connections open
//! without bound. Seat streams are mounted outside this layer: they are meant to stay open.
//!
//! The limit is never below the section call timeout plus a margin, so a slow registration
//! decision normally answers `decision_pending` itself. If the limit strikes anyway, the
//! request's work is dropped but a command already queued at a section actor may still be
//! decided: a retry of the enroll, drop or swap with the same `Idempotency-Key` maps to the
//! same request id and gets that decision, never a second one.

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Middleware: answer `next` within `limit`, or 503 `unavailable`.
pub async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
            ApiError::unavailable(format!(
                "no answer within {} ms; a registration call retried with the same \
                 Idempotency-Key gets its decision if one was made",
                limit.as_millis()
            ))
            .into_response()
        }
    }
}
