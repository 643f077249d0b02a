//! Student registration: enroll, drop, swap and the student's own schedule.
//!
//! Enroll, drop and swap accept an `Idempotency-Key` header (see `service::idempotency`):
//! the first final answer is stored and returned again for the same key.

mod answers;
mod call;
pub mod cart;
pub mod options;

pub use answers::{
    DropResponse, DropStatus, EnrollStatus, EnrollmentResponse, SetResponse, SetStatus,
};
use call::Fresh;
pub use call::StudentCall;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Caller, Ids, OptionalJson, parse_id};
use crate::resources::Role;
use crate::service::bundle::{SetRequest, SwapOrWait};
use crate::service::idempotency::{Decided, part_of};
use crate::service::registration::{Dropped, Enrolled};
use crate::service::schedule::Schedule;
use crate::service::swap::Swap;
use crate::store::audit::AttemptOutcome;
use answers::{
    decided_for, drop_answer, enrollment_answer, rebuilt_enroll, refusal_answer, set_answer,
    swap_answer,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sections/{section_id}/enrollments", post(enroll))
        .route(
            "/api/v1/sections/{section_id}/enrollments/me",
            delete(drop_me).patch(options::change_options),
        )
        .route(
            "/api/v1/sections/{section_id}/enrollments/me/accept",
            post(accept_offer),
        )
        .route(
            "/api/v1/sections/{section_id}/enrollments/me/decline",
            post(decline_offer),
        )
        .route("/api/v1/enrollments/swap", post(swap))
        .route("/api/v1/enrollments/sets", post(enroll_set))
        .route("/api/v1/students/me/cart", get(cart::get_cart))
        .route(
            "/api/v1/students/me/cart/{section_id}",
            axum::routing::put(cart::put_item).delete(cart::delete_item),
        )
        .route("/api/v1/students/me/cart/preview", post(cart::preview))
        .route("/api/v1/students/me/cart/submit", post(cart::submit))
        .route("/api/v1/students/me/schedule", get(schedule))
}

/// Swap body: drop `drop` only if a seat in `add` is taken.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwapRequest {
    /// Section to leave.
    #[schema(format = Uuid)]
    pub drop: String,
    /// Section to join (a seat, not a waitlist place); not `drop`.
    #[schema(format = Uuid)]
    pub add: String,
    /// If `add` is full, wait for a seat there and leave `drop` only when it comes, in the
    /// same decision as the promotion ("drop if enrolled"). Default `false`: a full `add`
    /// refuses the swap.
    #[serde(default)]
    pub waitlist: bool,
}

/// Body of a decision over several sections.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBody {
    /// Sections to take a seat in, all or none (1-8; e.g. a lecture, one of its labs and
    /// one of its recitations). Never waitlisted: a full section refuses the whole set.
    #[schema(value_type = Vec<String>, format = Uuid, min_items = 1, max_items = 8)]
    pub sections: Vec<String>,
    /// Sections to leave if, and only if, every seat is taken (e.g. the lab being
    /// swapped for another lab of the same lecture); at most 8.
    #[serde(default)]
    #[schema(value_type = Vec<String>, format = Uuid, max_items = 8)]
    pub replacing: Vec<String>,
    /// Credits to take every section's course for (within its range); default: what the
    /// student already takes the course for, else the course's credits.
    #[serde(default, deserialize_with = "crate::resources::optional_whole_number")]
    #[schema(value_type = Option<u32>, maximum = 12)]
    pub credits: Option<u32>,
    /// Grading basis of every section taken (one the course allows); default as for
    /// `credits`, else `letter`.
    #[serde(default)]
    #[schema(schema_with = crate::resources::schema::optional_grading_basis)]
    pub grading_basis: Option<String>,
}

/// The distinct ids of `raw` (`field` for errors), at most `max`.
fn section_ids(field: &str, raw: &[String], max: usize) -> Result<Vec<Uuid>, ApiError> {
    if raw.len() > max {
        return Err(ApiError::invalid_body(format!(
            "{field}: at most {max} sections"
        )));
    }
    let mut ids = Vec::with_capacity(raw.len());
    for r in raw {
        let id = parse_id(r)?;
        if ids.contains(&id) {
            return Err(ApiError::invalid_body(format!(
                "{field}: section {id} is named twice"
            )));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Take a seat in every section of a linked set at once, or in none (and, with
/// `replacing`, leave those sections only if every seat was taken).
#[utoipa::path(post, path = "/api/v1/enrollments/sets", tag = "registration", request_body = SetBody,
    params(("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = "^[!-~]+$",
        description = "1-255 visible ASCII characters; a retry of the same request with the same key gets the first answer; a key first used for a different request gets 422 idempotency_key_reused")),
    responses((status = 201, body = SetResponse), (status = 404, body = super::error::Problem),
        (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 429, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn enroll_set(
    State(state): State<AppState>,
    call: StudentCall,
    ApiJson(body): ApiJson<SetBody>,
) -> Result<Response, ApiError> {
    let take = section_ids("sections", &body.sections, 8)?;
    let leave = section_ids("replacing", &body.replacing, 8)?;
    if take.is_empty() {
        return Err(ApiError::invalid_body(
            "sections: name at least one section",
        ));
    }
    if let Some(both) = take.iter().find(|s| leave.contains(s)) {
        return Err(ApiError::invalid_body(format!(
            "section {both} is both taken and replaced"
        )));
    }
    let asked = options::OptionsBody {
        credits: body.credits,
        grading_basis: body.grading_basis.clone(),
    }
    .asked()?;
    let mut what = vec!["set".to_string()];
    what.extend(take.iter().map(|s| format!("+{s}")));
    what.extend(leave.iter().map(|s| format!("-{s}")));
    what.extend(asked.fingerprint());
    let what: Vec<&str> = what.iter().map(String::as_str).collect();
    // The decision row is the record: the service answers a retry from it.
    let rebuild = |_: &[Decided], _| None;
    call.idempotent(&state, &what, &[""], rebuild, async |request| {
        let r = SetRequest {
            student: call.student,
            take: take.clone(),
            leave: leave.clone(),
            request,
            asked: vec![asked; take.len()],
        };
        let decided = state.registration.take_set(call.home(), r).await?;
        Ok(Fresh::from(set_answer(decided.value)).decided_by(decided.by))
    })
    .await
}

/// Enroll the calling student (a seat, else a waitlist place), with the credits and
/// grading basis of the optional body.
#[utoipa::path(post, path = "/api/v1/sections/{section_id}/enrollments", tag = "registration",
    request_body = Option<options::OptionsBody>,
    params(("section_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = "^[!-~]+$",
        description = "1-255 visible ASCII characters; a retry of the same request with the same key gets the first answer; a key first used for a different request gets 422 idempotency_key_reused")),
    responses((status = 201, body = EnrollmentResponse), (status = 202, body = EnrollmentResponse),
        (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem),
        (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 429, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn enroll(
    State(state): State<AppState>,
    call: StudentCall,
    Ids(section): Ids<Uuid>,
    OptionalJson(body): OptionalJson<options::OptionsBody>,
) -> Result<Response, ApiError> {
    let asked = body.unwrap_or_default().asked()?;
    let rebuild = |decided: &[Decided], request| {
        rebuilt_enroll(section, call.student, decided_for(decided, request)?)
    };
    let section_text = section.to_string();
    let mut what = vec!["enroll".to_string(), section_text];
    what.extend(asked.fingerprint());
    let what: Vec<&str> = what.iter().map(String::as_str).collect();
    call.idempotent(&state, &what, &[""], rebuild, async |request| {
        let enrolled = (state.registration)
            .enroll_with(call.home(), call.seat(section, request), asked)
            .await?;
        let answer = enrollment_answer(section, call.student, enrolled.value);
        Ok(Fresh::from(answer).decided_by(enrolled.by))
    })
    .await
}

/// Drop the calling student's seat or waitlist place.
#[utoipa::path(delete, path = "/api/v1/sections/{section_id}/enrollments/me", tag = "registration",
    params(("section_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = "^[!-~]+$",
        description = "1-255 visible ASCII characters; a retry of the same request with the same key gets the first answer; a key first used for a different request gets 422 idempotency_key_reused")),
    responses((status = 200, body = DropResponse), (status = 404, body = super::error::Problem),
        (status = 422, body = super::error::Problem), (status = 429, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn drop_me(
    State(state): State<AppState>,
    call: StudentCall,
    Ids(section): Ids<Uuid>,
) -> Result<Response, ApiError> {
    let rebuild = |decided: &[Decided], request| {
        let d = decided_for(decided, request)?;
        match d.outcome {
            AttemptOutcome::Dropped => Some(drop_answer(d.promoted?, d.withdrawn)),
            AttemptOutcome::Refused => refusal_answer(d),
            _ => None,
        }
    };
    let what = ["drop", &section.to_string()];
    // A section of a linked set (a lecture with its lab) is dropped with its whole set.
    if !state
        .registration
        .facts(section)
        .await?
        .offered
        .required_components
        .is_empty()
    {
        let rebuild = |_: &[Decided], _| None;
        return call
            .idempotent(&state, &what, &[""], rebuild, async |request| {
                let dropped = state
                    .registration
                    .drop_set(call.home(), call.student, section, request)
                    .await?;
                Ok(Fresh::from(set_answer(dropped.value)).decided_by(dropped.by))
            })
            .await;
    }
    call.idempotent(&state, &what, &[""], rebuild, async |request| {
        let dropped = state
            .registration
            .drop_enrollment(call.home(), call.seat(section, request))
            .await?;
        let Dropped {
            promoted,
            withdrawn,
        } = dropped.value;
        Ok(Fresh::from(drop_answer(promoted, withdrawn)).decided_by(dropped.by))
    })
    .await
}

/// Take the seat an offer-mode waitlist offers the calling student (their rules are
/// checked again first).
#[utoipa::path(post, path = "/api/v1/sections/{section_id}/enrollments/me/accept", tag = "registration",
    params(("section_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = "^[!-~]+$",
        description = "1-255 visible ASCII characters; a retry of the same request with the same key gets the first answer; a key first used for a different request gets 422 idempotency_key_reused")),
    responses((status = 201, body = EnrollmentResponse),
        (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem),
        (status = 409, description = "`no_offer` (none, or it expired), a student rule's code", body = super::error::Problem),
        (status = 422, body = super::error::Problem), (status = 429, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn accept_offer(
    State(state): State<AppState>,
    call: StudentCall,
    Ids(section): Ids<Uuid>,
) -> Result<Response, ApiError> {
    let rebuild = |_: &[Decided], _| None;
    let what = ["accept", &section.to_string()];
    call.idempotent(&state, &what, &[""], rebuild, async |request| {
        let enrolled = (state.registration)
            .accept_offer(call.home(), call.seat(section, request))
            .await?;
        let answer = enrollment_answer(section, call.student, enrolled.value);
        Ok(Fresh::from(answer).decided_by(enrolled.by))
    })
    .await
}

/// Turn down the seat offered to the calling student: they leave the waitlist, and the seat
/// is offered to the next student.
#[utoipa::path(post, path = "/api/v1/sections/{section_id}/enrollments/me/decline", tag = "registration",
    params(("section_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = "^[!-~]+$",
        description = "1-255 visible ASCII characters; a retry of the same request with the same key gets the first answer; a key first used for a different request gets 422 idempotency_key_reused")),
    responses((status = 200, description = "`{\"status\":\"declined\",\"promoted\":bool}`: `promoted` says whether the seat went to the next student"),
        (status = 404, body = super::error::Problem),
        (status = 409, description = "`no_offer`", body = super::error::Problem),
        (status = 422, body = super::error::Problem), (status = 429, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn decline_offer(
    State(state): State<AppState>,
    call: StudentCall,
    Ids(section): Ids<Uuid>,
) -> Result<Response, ApiError> {
    let rebuild = |_: &[Decided], _| None;
    let what = ["decline", &section.to_string()];
    call.idempotent(&state, &what, &[""], rebuild, async |request| {
        let declined = (state.registration)
            .decline_offer(call.home(), call.seat(section, request))
            .await?;
        let body = serde_json::json!({"status": "declined", "section_id": section,
            "promoted": declined.value.promoted});
        Ok(Fresh::from((StatusCode::OK, body)).decided_by(declined.by))
    })
    .await
}

/// Swap: take a seat in `add`, and only then leave `drop`.
#[utoipa::path(post, path = "/api/v1/enrollments/swap", tag = "registration", request_body = SwapRequest,
    params(("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = "^[!-~]+$",
        description = "1-255 visible ASCII characters; a retry of the same request with the same key gets the first answer; a key first used for a different request gets 422 idempotency_key_reused")),
    responses((status = 200, description = "`{\"status\":\"swapped\",\"dropped\":{..},\"added\":{..}}`"),
        (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 429, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn swap(
    State(state): State<AppState>,
    call: StudentCall,
    ApiJson(body): ApiJson<SwapRequest>,
) -> Result<Response, ApiError> {
    let student = call.student;
    let drop = parse_id(&body.drop)?;
    let add = parse_id(&body.add)?;
    if drop == add {
        return Err(ApiError::invalid_body(
            "drop and add must be different sections",
        ));
    }
    // A rule refusal is recorded under the request id, the seat and the drop under their
    // parts' ids; a swap whose drop is not on record is run again (its parts replay).
    let rebuild = |decided: &[Decided], request| {
        if let Some(refused) = decided_for(decided, request) {
            return refusal_answer(refused);
        }
        let added = decided_for(decided, part_of(request, "add"))?;
        let enrolled = match added.outcome {
            AttemptOutcome::Enrolled => Enrolled::Seat { at: added.at },
            AttemptOutcome::Refused => return refusal_answer(added),
            _ => return None,
        };
        let dropped = decided_for(decided, part_of(request, "drop"))?;
        let promoted = (dropped.outcome == AttemptOutcome::Dropped).then_some(dropped.promoted?)?;
        Some((
            StatusCode::OK,
            swap_answer(add, student, enrolled, drop, promoted),
        ))
    };
    if body.waitlist {
        let what = ["swap-or-wait", &drop.to_string(), &add.to_string()];
        let rebuild = |_: &[Decided], _| None;
        return call
            .idempotent(&state, &what, &[""], rebuild, async |request| {
                let decided = state
                    .registration
                    .swap_or_wait(call.home(), student, drop, add, request)
                    .await?;
                let answer = match decided.value {
                    SwapOrWait::Swapped(taken) => (
                        StatusCode::OK,
                        serde_json::json!({"status": "swapped", "decision_id": taken.decision,
                            "added": {"section_id": add}, "dropped": {"section_id": drop}}),
                    ),
                    SwapOrWait::Waiting { position } => (
                        StatusCode::ACCEPTED,
                        serde_json::json!({"status": "waitlisted", "section_id": add,
                            "student_id": student, "position": position, "drop_if_enrolled": drop}),
                    ),
                };
                Ok(Fresh::from(answer).decided_by(decided.by))
            })
            .await;
    }
    let what = ["swap", &drop.to_string(), &add.to_string()];
    let parts = ["", "add", "drop"];
    call.idempotent(&state, &what, &parts, rebuild, async |request| {
        let swap = Swap {
            student,
            drop,
            add,
            request,
        };
        let swapped = state.registration.swap(call.home(), swap).await?;
        let (enrolled, dropped) = swapped.value;
        let body = swap_answer(add, student, enrolled, drop, dropped.promoted);
        Ok(Fresh::from((StatusCode::OK, body)).decided_by(swapped.by))
    })
    .await
}

/// The calling student's schedule.
#[utoipa::path(get, path = "/api/v1/students/me/schedule", tag = "registration",
    responses((status = 200, body = Schedule), (status = 401, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn schedule(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Schedule>, ApiError> {
    caller.require(Role::Student)?;
    Ok(Json(state.registration.schedule(caller.id).await?))
}
