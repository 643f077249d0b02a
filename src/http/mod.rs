//! The REST API (guide: `docs/api.md`; contract: `GET /api/v1/openapi.json`): one module per resource, each exposing
//! `router()`; [`app`] assembles them with the shared layers (request time limit, body
//! limit, tracing, panic catcher, request metrics, security headers) and problem+json answers for unknown routes and methods.

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod cluster;
pub mod error;
pub mod extract;
pub mod figures;
pub mod forward;
pub mod imports;
pub mod internal;
pub mod limit;
pub mod measure;
pub mod openapi;
pub mod ops;
mod permits;
pub mod policy;
pub mod registration;
pub mod reports;
pub mod timeout;
pub mod web;

use crate::config::Settings;
use crate::service::auth::TokenKeys;
use crate::service::feed::SeatFeed;
use crate::service::registration::RegistrationService;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use error::{ApiError, ErrorCode};
use sqlx::PgPool;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// Everything handlers share, behind one `Arc`: axum clones the state for every
/// middleware and extractor of every request, and a clone is then one reference count
/// instead of one per shared part (a profile of the flash benchmark showed the clones and
/// drops of the unshared struct at 1.4% of the CPU).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state of a node.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    /// The database.
    pub pool: PgPool,
    /// The read replica for browsing, if one is configured (see [`crate::http::catalog`]).
    pub browse_pool: Option<PgPool>,
    /// This node in the cluster.
    pub cluster: Arc<crate::cluster::node::ClusterNode>,
    /// Settings in force.
    pub settings: Arc<Settings>,
    /// Token signing and verification.
    pub tokens: Arc<TokenKeys>,
    /// The registration flow.
    pub registration: Arc<RegistrationService>,
    /// The seat streams' counts (and the Redis mirror they read first).
    pub feed: Arc<SeatFeed>,
    /// Counters of the committed batches (counted by the commit fan-out).
    pub commits: Arc<crate::metrics::CommitStats>,
    /// Woken after each commit with changes, so the outbox relay publishes without
    /// polling delay.
    pub relay_wake: Arc<tokio::sync::Notify>,
    /// Per-caller rate limiting of registration requests.
    pub limiter: Arc<limit::RateLimiter>,
    /// Failed-login allowances and the bound on concurrent password hashing.
    pub login_guard: Arc<crate::service::login_guard::LoginGuard>,
    /// Outbox relay figures.
    pub relay: Arc<crate::events::relay::RelayStats>,
    /// Node-wide committer figures.
    pub committer: Arc<crate::store::sections::CommitterStats>,
    /// Supervised background tasks: up or down, restarts.
    pub tasks: Arc<crate::supervise::TaskHealth>,
    /// Section views as last read from PostgreSQL; their fixed fields never change, so a
    /// read with the counts from the Redis mirror needs no database round trip.
    pub section_views: Arc<dashmap::DashMap<uuid::Uuid, crate::resources::SectionView>>,
    /// This node's Prometheus registry (`/metrics`) and the series the HTTP layer observes.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let max_body = state.settings.http.max_body_bytes;
    let time_limit = state.settings.request_timeout();
    // Students' registration calls are served by the student's home node.
    let to_home = axum::middleware::from_fn_with_state(state.clone(), forward::to_home);
    let routes = Router::new()
        .merge(auth::router())
        .merge(catalog::router())
        .merge(registration::router().route_layer(to_home))
        .merge(cluster::router())
        .merge(reports::router())
        .merge(admin::router())
        .merge(policy::router())
        .merge(permits::router())
        .merge(imports::router())
        .merge(ops::router())
        .merge(openapi::router())
        .merge(web::router(&state.settings.http.web_dir))
        // `Router::layer` wraps the routes merged so far: the seat streams, merged after
        // it, stay open as long as their clients want.
        .layer(axum::middleware::from_fn_with_state(
            time_limit,
            timeout::time_limit,
        ))
        .merge(catalog::stream_router())
        // The hop waits for the section's answer however long its commit takes.
        .merge(internal::router())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        // Failures are logged where they are understood (ApiError::internal), not as a
        // blanket ERROR for every 503 `overloaded`, which is load shedding doing its job.
        .layer(TraceLayer::new_for_http().on_failure(()))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal(&"handler panicked").into_response()
        }))
        // Outside the panic catcher, so a panic's 500 is timed and counted too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            measure::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::node_header,
        ))
        .with_state(state);
    // Outermost, so every answer has them, a panic's 500 included.
    web::security_headers(routes)
}

/// The student's registration routes as a peer's forwarded request reaches them over the
/// wire (`cluster::wire`): the same handlers behind the same home check and body limit as
/// [`app`] gives them, without the layers the edge node already runs around the forward
/// (its time limit, its metrics, the trace): the answer goes back through them there.
pub fn forwarded_app(state: AppState) -> Router {
    let max_body = state.settings.http.max_body_bytes;
    let to_home = axum::middleware::from_fn_with_state(state.clone(), forward::to_home);
    Router::new()
        .merge(registration::router().route_layer(to_home))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal(&"handler panicked").into_response()
        }))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::node_header,
        ))
        .with_state(state)
}

/// A browser's page load gets the app (its router knows the page); anything else a 404.
async fn fallback(
    axum::extract::State(state): axum::extract::State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    match web::fallback(&state, &method, uri.path(), &headers).await {
        Some(page) => page,
        None => ApiError::new(ErrorCode::NotFound, "no such route").into_response(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not accept that method",
    )
}
