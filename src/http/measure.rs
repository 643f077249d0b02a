//! The request metrics middleware: times every request and records it under its route
//! pattern (axum's `MatchedPath`, never the raw URI, so ids do not multiply the series;
//! `unmatched` for the fallback), its method and its status, and counts the 503
//! `overloaded` answers (the problem code rides in the response's extensions, see
//! `error.rs`). Client requests also feed the node's [`RequestFigures`] that the
//! heartbeat reports; internal hops and the probes and scrapes do not.
//!
//! [`RequestFigures`]: crate::metrics::RequestFigures

use super::AppState;
use super::error::ErrorCode;
use crate::metrics::HttpLabels;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// Time and count one request (see module docs).
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let took = started.elapsed();
    let overloaded = response.extensions().get::<ErrorCode>() == Some(&ErrorCode::Overloaded);
    if overloaded {
        state.metrics.http.overloaded.inc();
    }
    if is_client_route(&route) {
        state
            .cluster
            .requests
            .record(is_registration_route(&route), overloaded, took);
    }
    state
        .metrics
        .http
        .duration
        .get_or_create(&HttpLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .observe(took.as_secs_f64());
    response
}

/// The method as a label: the standard ones by name, anything else as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Requests of clients (not the nodes' internal hops, probes or scrapes).
fn is_client_route(route: &str) -> bool {
    !route.starts_with("/internal/") && !matches!(route, "/metrics" | "/healthz" | "/readyz")
}

/// The registration requests whose latency the console's p99 covers: enroll, drop, swap
/// and the student's schedule.
fn is_registration_route(route: &str) -> bool {
    route.starts_with("/api/v1/sections/{section_id}/enrollments")
        || route == "/api/v1/enrollments/swap"
        || route == "/api/v1/students/me/schedule"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_kind() {
        assert!(is_registration_route(
            "/api/v1/sections/{section_id}/enrollments/me"
        ));
        assert!(is_registration_route("/api/v1/enrollments/swap"));
        assert!(!is_registration_route("/api/v1/terms/{term_id}/sections"));
        assert!(is_client_route("/api/v1/terms/{term_id}/sections"));
        assert!(is_client_route("unmatched"));
        assert!(!is_client_route("/internal/v1/handoff"));
        assert!(!is_client_route("/metrics"));
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
