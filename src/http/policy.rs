//! Registration policy (admin, and a student's own appointments): a student's attributes,
//! a section's reserved seat pools, time tickets. The edits themselves live in
//! `service::policy`.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{ApiJson, Caller, Ids};
use crate::resources::{
    NewTimeTicket, ReservedPools, Role, SectionView, StudentPatch, StudentView, TicketRule,
    TimeTicketView, check_pools,
};
use crate::store::{catalog, students, tickets};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, put};
use axum::{Json, Router};
use uuid::Uuid;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/students/{student_id}", patch(patch_student))
        .route("/api/v1/sections/{section_id}/reserved", put(set_reserved))
        .route(
            "/api/v1/terms/{term_id}/time-tickets/{student_id}",
            put(set_ticket).delete(remove_ticket),
        )
        .route(
            "/api/v1/terms/{term_id}/time-tickets/assign",
            axum::routing::post(assign_tickets),
        )
        .route(
            "/api/v1/students/{student_id}/time-tickets",
            get(student_tickets),
        )
        .route("/api/v1/students/me/time-tickets", get(my_tickets))
}

/// Change a student's standing, credit limit, majors, program or cohort (fields left out
/// stay; `program` or `cohort` sent as `null` are cleared).
#[utoipa::path(patch, path = "/api/v1/students/{student_id}", tag = "admin", request_body = StudentPatch,
    params(("student_id" = Uuid, Path)),
    responses((status = 200, body = StudentView), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn patch_student(
    State(state): State<AppState>,
    caller: Caller,
    Ids(student): Ids<Uuid>,
    ApiJson(mut body): ApiJson<StudentPatch>,
) -> Result<Json<StudentView>, ApiError> {
    caller.require(Role::Admin)?;
    body.validate()?;
    Ok(Json(
        state.registration.update_student(student, &body).await?,
    ))
}

/// Replace a section's reserved seat pools (through its actor: seats a pool no longer
/// holds back promote the waitlist in the same commit). A pool for the same attribute and
/// value as an existing one keeps its id and the students seated in it.
#[utoipa::path(put, path = "/api/v1/sections/{section_id}/reserved", tag = "admin", request_body = ReservedPools,
    params(("section_id" = Uuid, Path)),
    responses((status = 200, description = "The section, with its pools", body = SectionView),
        (status = 404, description = "`section_not_found`", body = super::error::Problem),
        (status = 409, description = "`reserved_above_capacity`", body = super::error::Problem),
        (status = 422, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_reserved(
    State(state): State<AppState>,
    caller: Caller,
    Ids(section): Ids<Uuid>,
    ApiJson(body): ApiJson<ReservedPools>,
) -> Result<Json<SectionView>, ApiError> {
    caller.require(Role::Admin)?;
    // The capacity is checked by the actor, against the capacity it decides with.
    let pools = check_pools(&body.reserved, u32::MAX)?;
    state.registration.set_reserves(section, &pools).await?;
    state.section_views.remove(&section);
    let view = catalog::section(&state.pool, section)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::SectionNotFound, "no such section"))?;
    Ok(Json(view))
}

/// Set a student's registration appointment in a term: from `opens_at` (instead of the
/// opening of their standing's window) until `closes_at` or the window's close.
#[utoipa::path(put, path = "/api/v1/terms/{term_id}/time-tickets/{student_id}", tag = "admin", request_body = NewTimeTicket,
    params(("term_id" = Uuid, Path), ("student_id" = Uuid, Path)),
    responses((status = 200, body = TimeTicketView), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_ticket(
    State(state): State<AppState>,
    caller: Caller,
    Ids((term, student)): Ids<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<NewTimeTicket>,
) -> Result<Json<TimeTicketView>, ApiError> {
    caller.require(Role::Admin)?;
    body.validate()?;
    Ok(Json(
        state.registration.set_ticket(term, student, &body).await?,
    ))
}

/// Give every student (of some standings) a registration appointment in a term, by credits
/// earned: most credits first, `group_size` students per step of `step_minutes` from
/// `first_opens_at`. Replaces their appointments in the term.
#[utoipa::path(post, path = "/api/v1/terms/{term_id}/time-tickets/assign", tag = "admin", request_body = TicketRule,
    params(("term_id" = Uuid, Path)),
    responses((status = 200, description = "`{\"assigned\": N}`"), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn assign_tickets(
    State(state): State<AppState>,
    caller: Caller,
    Ids(term): Ids<Uuid>,
    ApiJson(body): ApiJson<TicketRule>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Admin)?;
    body.validate()?;
    let assigned = state.registration.assign_tickets(term, &body).await?;
    Ok(Json(serde_json::json!({ "assigned": assigned })))
}

/// Remove a student's registration appointment in a term (their standing's window applies).
#[utoipa::path(delete, path = "/api/v1/terms/{term_id}/time-tickets/{student_id}", tag = "admin",
    params(("term_id" = Uuid, Path), ("student_id" = Uuid, Path)),
    responses((status = 204), (status = 404, description = "`ticket_not_found`", body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn remove_ticket(
    State(state): State<AppState>,
    caller: Caller,
    Ids((term, student)): Ids<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    state.registration.remove_ticket(term, student).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A student's registration appointments, earliest first.
#[utoipa::path(get, path = "/api/v1/students/{student_id}/time-tickets", tag = "admin",
    params(("student_id" = Uuid, Path)),
    responses((status = 200, body = [TimeTicketView]), (status = 404, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn student_tickets(
    State(state): State<AppState>,
    caller: Caller,
    Ids(student): Ids<Uuid>,
) -> Result<Json<Vec<TimeTicketView>>, ApiError> {
    caller.require(Role::Admin)?;
    if students::get(&state.pool, student).await?.is_none() {
        return Err(ApiError::new(ErrorCode::StudentNotFound, "no such student"));
    }
    Ok(Json(tickets::of_student(&state.pool, student).await?))
}

/// The caller's own registration appointments, earliest first.
#[utoipa::path(get, path = "/api/v1/students/me/time-tickets", tag = "registration",
    responses((status = 200, body = [TimeTicketView]), (status = 401, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn my_tickets(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TimeTicketView>>, ApiError> {
    Ok(Json(tickets::of_student(&state.pool, caller.id).await?))
}
