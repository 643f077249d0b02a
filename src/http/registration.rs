//! Student registration: enroll, drop, swap and the student's own schedule.
//!
//! Enroll, drop and swap accept an `Idempotency-Key` header (see `service::idempotency`):
//! the first final answer is stored and returned again for the same key.

use super::AppState;
use super::error::{ApiError, ErrorCode, render};
use super::extract::{ApiJson, Caller, Ids, parse_id};
use crate::resources::Role;
use crate::service::idempotency::{self, IdempotencyKey};
use crate::service::registration::{Enrolled, SeatRequest, Swap};
use crate::service::schedule::Schedule;
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use registrar_actors::{RequestId, StudentId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sections/{section_id}/enrollments", post(enroll))
        .route(
            "/api/v1/sections/{section_id}/enrollments/me",
            delete(drop_me),
        )
        .route("/api/v1/enrollments/swap", post(swap))
        .route("/api/v1/students/me/schedule", get(schedule))
}

/// Answer of an enroll: `enrolled` (201) or `waitlisted` (202).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EnrollmentResponse {
    /// `enrolled` or `waitlisted`.
    pub status: String,
    /// Section.
    pub section_id: Uuid,
    /// Student.
    pub student_id: Uuid,
    /// When the seat was taken (enrolled only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrolled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Waitlist position (waitlisted only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
}

/// Answer of a drop.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DropResponse {
    /// Always `dropped`.
    pub status: String,
    /// Whether the freed seat went to the head of the waitlist.
    pub promoted: bool,
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
}

/// A student's registration call, admitted: the caller is a student within the rate limit
/// (checked in that order at extraction, before the path and body), with the
/// `Idempotency-Key` it carried; [`StudentCall::idempotent`] decides once per key.
pub struct StudentCall {
    /// The student.
    student: Uuid,
    /// The raw `Idempotency-Key`, validated when the call is decided.
    key: Option<HeaderValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for StudentCall
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(Role::Student)?;
        let limiter = &AppState::from_ref(state).limiter;
        limiter.check(caller.id).map_err(|wait| {
            ApiError::new(ErrorCode::RateLimited, "too many requests; slow down").retry_after(wait)
        })?;
        let key = parts.headers.get("idempotency-key").cloned();
        Ok(Self {
            student: caller.id,
            key,
        })
    }
}

impl StudentCall {
    /// This student's request about `section`.
    fn seat(&self, section: Uuid, request: RequestId) -> SeatRequest {
        SeatRequest {
            student: self.student,
            section,
            request,
        }
    }

    /// Run `decide` once per idempotency key: replay a stored answer, or decide and store
    /// it. Final answers (successes and 4xx refusals) are stored; 5xx answers are not, so
    /// a retry after one is decided (or replayed by the section actor, which knows the
    /// request id).
    async fn idempotent<F>(&self, state: &AppState, decide: F) -> Result<Response, ApiError>
    where
        F: AsyncFnOnce(RequestId) -> Result<(StatusCode, Value), ApiError>,
    {
        let student = self.student;
        let key = self
            .key
            .as_ref()
            .map(|raw| IdempotencyKey::parse(raw.as_bytes()))
            .transpose()
            .map_err(|e| ApiError::new(ErrorCode::InvalidIdempotencyKey, e.to_string()))?;
        let Some(key) = key else {
            let (status, body) = decide(RequestId::new_v4()).await?;
            return Ok(render(status, body, None));
        };
        if let Some(answer) = idempotency::replay(&state.pool, student, &key).await? {
            return replayed(answer);
        }
        let (status, body) = match decide(key.request_id(StudentId(student))).await {
            Ok(answer) => answer,
            Err(e) if e.status().is_client_error() => (e.status(), e.body()),
            Err(e) => return Err(e),
        };
        let answer = idempotency::Answer {
            status: status.as_u16() as i16,
            body,
        };
        replayed(idempotency::remember(&state.pool, student, &key, answer).await?)
    }
}

/// Render a stored answer (a status that was valid when it was stored).
fn replayed(answer: idempotency::Answer) -> Result<Response, ApiError> {
    let status = u16::try_from(answer.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| {
            ApiError::internal(&format_args!(
                "stored idempotent answer has status {}",
                answer.status
            ))
        })?;
    Ok(render(status, answer.body, None))
}

fn enrollment_answer(section: Uuid, student: Uuid, enrolled: Enrolled) -> (StatusCode, Value) {
    let (status, body) = match enrolled {
        Enrolled::Seat { at } => (
            StatusCode::CREATED,
            EnrollmentResponse {
                status: "enrolled".into(),
                section_id: section,
                student_id: student,
                enrolled_at: Some(at),
                position: None,
            },
        ),
        Enrolled::Waitlist { position } => (
            StatusCode::ACCEPTED,
            EnrollmentResponse {
                status: "waitlisted".into(),
                section_id: section,
                student_id: student,
                enrolled_at: None,
                position: Some(position),
            },
        ),
    };
    (status, json!(body))
}

/// Enroll the calling student (a seat, else a waitlist place).
#[utoipa::path(post, path = "/api/v1/sections/{section_id}/enrollments", tag = "registration",
    params(("section_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = "^[!-~]+$",
        description = "1-255 visible ASCII characters; a retry with the same key gets the first answer. The key belongs to the student, not to the route: a key already used for another request replays that request's answer, whatever its status")),
    responses((status = 201, body = EnrollmentResponse), (status = 202, body = EnrollmentResponse),
        (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem),
        (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 429, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn enroll(
    State(state): State<AppState>,
    call: StudentCall,
    Ids(section): Ids<Uuid>,
) -> Result<Response, ApiError> {
    call.idempotent(&state, async |request| {
        let enrolled = (state.registration)
            .enroll(call.seat(section, request))
            .await?;
        Ok(enrollment_answer(section, call.student, enrolled))
    })
    .await
}

/// Drop the calling student's seat or waitlist place.
#[utoipa::path(delete, path = "/api/v1/sections/{section_id}/enrollments/me", tag = "registration",
    params(("section_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = "^[!-~]+$",
        description = "1-255 visible ASCII characters; a retry with the same key gets the first answer. The key belongs to the student, not to the route: a key already used for another request replays that request's answer, whatever its status")),
    responses((status = 200, body = DropResponse), (status = 404, body = super::error::Problem),
        (status = 429, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn drop_me(
    State(state): State<AppState>,
    call: StudentCall,
    Ids(section): Ids<Uuid>,
) -> Result<Response, ApiError> {
    call.idempotent(&state, async |request| {
        let dropped = state
            .registration
            .drop_enrollment(call.seat(section, request))
            .await?;
        let body = DropResponse {
            status: "dropped".into(),
            promoted: dropped.promoted,
        };
        Ok((StatusCode::OK, json!(body)))
    })
    .await
}

/// Swap: take a seat in `add`, and only then leave `drop`.
#[utoipa::path(post, path = "/api/v1/enrollments/swap", tag = "registration", request_body = SwapRequest,
    params(("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = "^[!-~]+$",
        description = "1-255 visible ASCII characters; a retry with the same key gets the first answer. The key belongs to the student, not to the route: a key already used for another request replays that request's answer, whatever its status")),
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
    call.idempotent(&state, async |request| {
        let (enrolled, dropped) = state
            .registration
            .swap(Swap {
                student,
                drop,
                add,
                request,
            })
            .await?;
        let (_, added) = enrollment_answer(add, student, enrolled);
        let body = json!({
            "status": "swapped",
            "added": added,
            "dropped": {"section_id": drop, "promoted": dropped.promoted},
        });
        Ok((StatusCode::OK, body))
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
