//! Permits (overrides): staff grant, list and revoke them; a student reads their own. The
//! edits live in `service::permits`; a permit is used by the commit of the place it allows.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery, Caller, Ids};
use crate::resources::{NewPermit, PermitFilter, PermitView, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use uuid::Uuid;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/permits", post(grant).get(list))
        .route("/api/v1/permits/{permit_id}/revoke", post(revoke))
        .route("/api/v1/students/me/permits", get(mine))
}

/// Grant a student a permit: to pass one rule for one section (`capacity`,
/// `prerequisite`, `time_conflict`, `restriction`, `consent`, `late_add`), or to exceed the
/// credit limit in a term up to `max_credits` (`credit_overload`). A section permit is
/// used by the place the student takes in the section (a single-use one then stops
/// counting); a `capacity` permit only when it seats the student beyond the capacity.
#[utoipa::path(post, path = "/api/v1/permits", tag = "admin", request_body = NewPermit,
    responses((status = 201, body = PermitView),
        (status = 404, description = "`student_not_found`, `section_not_found`, `term_not_found`", body = super::error::Problem),
        (status = 422, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewPermit>,
) -> Result<(StatusCode, Json<PermitView>), ApiError> {
    caller.require(Role::Admin)?;
    body.validate(state.registration.router().node().clock.now())?;
    let view = state.registration.grant_permit(&body, caller.id).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Permits, newest first (at most 1000), of one student and/or one section.
#[utoipa::path(get, path = "/api/v1/permits", tag = "admin", params(PermitFilter),
    responses((status = 200, body = [PermitView]), (status = 400, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<PermitFilter>,
) -> Result<Json<Vec<PermitView>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(state.registration.permits(&filter).await?))
}

/// Revoke a permit: it stops counting at once (a place it already allowed stays). Revoking
/// again changes nothing.
#[utoipa::path(post, path = "/api/v1/permits/{permit_id}/revoke", tag = "admin",
    params(("permit_id" = Uuid, Path)),
    responses((status = 200, body = PermitView), (status = 404, description = "`permit_not_found`", body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Ids(permit): Ids<Uuid>,
) -> Result<Json<PermitView>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(
        state.registration.revoke_permit(permit, caller.id).await?,
    ))
}

/// The caller's own permits, newest first.
#[utoipa::path(get, path = "/api/v1/students/me/permits", tag = "registration",
    responses((status = 200, body = [PermitView]), (status = 401, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn mine(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<PermitView>>, ApiError> {
    let filter = PermitFilter {
        student_id: Some(caller.id),
        section_id: None,
    };
    Ok(Json(state.registration.permits(&filter).await?))
}
