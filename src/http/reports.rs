//! What the event consumers produced: a student's notifications and (admin) a term's
//! registration analytics.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{Caller, Ids};
use crate::resources::Role;
use crate::store::{catalog, reports};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use uuid::Uuid;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/students/me/notifications", get(my_notifications))
        .route("/api/v1/analytics/terms/{term_id}", get(term_analytics))
}

/// The calling student's latest 100 notifications, newest first.
#[utoipa::path(get, path = "/api/v1/students/me/notifications", tag = "registration",
    responses((status = 200, body = [reports::Notification]), (status = 401, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn my_notifications(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<reports::Notification>>, ApiError> {
    caller.require(Role::Student)?;
    Ok(Json(
        reports::notifications(&state.pool, caller.id, 100).await?,
    ))
}

/// Registration figures of a term (admin).
#[utoipa::path(get, path = "/api/v1/analytics/terms/{term_id}", tag = "admin", params(("term_id" = Uuid, Path)),
    responses((status = 200, body = reports::TermFigures), (status = 404, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn term_analytics(
    State(state): State<AppState>,
    caller: Caller,
    Ids(term): Ids<Uuid>,
) -> Result<Json<reports::TermFigures>, ApiError> {
    caller.require(Role::Admin)?;
    if !catalog::term_exists(&state.pool, term).await? {
        return Err(ApiError::new(ErrorCode::TermNotFound, "no such term"));
    }
    Ok(Json(reports::term_figures(&state.pool, term).await?))
}
