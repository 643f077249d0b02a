//! Student registration: enroll, drop, swap and the student's own schedule.
//!
//! Enroll, drop and swap accept an `Idempotency-Key` header (see `service::idempotency`):
//! the first final answer is stored and returned again for the same key.

use super::AppState;
use super::error::{ApiError, ErrorCode, render};
use super::extract::{ApiJson, Caller, Ids, parse_id};
use crate::resources::Role;
use crate::service::idempotency::{self, Decided, IdempotencyKey, Prior, part_of};
use crate::service::registration::{Enrolled, SeatRequest};
use crate::service::schedule::Schedule;
use crate::service::swap::Swap;
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

    /// Run `decide` once per idempotency key: replay the stored first answer, rebuild it
    /// from decisions on record under the request's ids (`parts`: the request id's part
    /// names, `""` for the request itself), or decide and store it. `what` names the
    /// request (operation and arguments): a key first used for another request is 422
    /// `idempotency_key_reused`. Final answers (successes and 4xx refusals) are stored; 5xx
    /// answers are not, so a retry after one is decided again (or replayed by the section
    /// actor, which knows the request id).
    async fn idempotent<F>(
        &self,
        state: &AppState,
        what: &[&str],
        parts: &[&str],
        rebuild: impl Fn(&[Decided], RequestId) -> Option<(StatusCode, Value)>,
        decide: F,
    ) -> Result<Response, ApiError>
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
        let request = key.request_id(StudentId(student));
        let fingerprint = idempotency::fingerprint(what);
        let ids: Vec<RequestId> = parts
            .iter()
            .map(|p| {
                if p.is_empty() {
                    request
                } else {
                    part_of(request, p)
                }
            })
            .collect();
        let retention =
            idempotency::retention(state.settings.retention.idempotency_retention_hours);
        let prior = idempotency::prior(&state.pool, student, &key, fingerprint, &ids, retention);
        let (status, body) = match prior.await? {
            Prior::Answered(answer) => return replayed(answer),
            Prior::Reused => return Err(key_reused()),
            Prior::Decided(decided) => match rebuild(&decided, request) {
                Some(answer) => answer,
                None => decided_now(decide(request).await)?,
            },
            Prior::Fresh => decided_now(decide(request).await)?,
        };
        let answer = idempotency::Answer {
            status: status.as_u16() as i16,
            body,
        };
        let stored =
            idempotency::remember(&state.pool, student, &key, fingerprint, answer, retention);
        match stored.await? {
            Ok(answer) => replayed(answer),
            Err(_) => Err(key_reused()),
        }
    }
}

fn key_reused() -> ApiError {
    ApiError::new(
        ErrorCode::IdempotencyKeyReused,
        "this Idempotency-Key was first used for a different request; use a new key",
    )
}

/// A decision made now, as an answer to store: 4xx refusals are final answers too.
fn decided_now(
    result: Result<(StatusCode, Value), ApiError>,
) -> Result<(StatusCode, Value), ApiError> {
    match result {
        Ok(answer) => Ok(answer),
        Err(e) if e.status().is_client_error() => Ok((e.status(), e.body())),
        Err(e) => Err(e),
    }
}

/// The decision on record for `request`, if any.
fn decided_for(decided: &[Decided], request: RequestId) -> Option<&Decided> {
    decided.iter().find(|d| d.request_id == request.0)
}

/// The problem a recorded refusal was answered with (its detail is not on record).
fn refusal_answer(d: &Decided) -> Option<(StatusCode, Value)> {
    let code = ErrorCode::from_wire(d.code.as_deref()?)?;
    let e = ApiError::new(code, format!("refused: {}", code.as_str()));
    Some((e.status(), e.body()))
}

/// The first answer to an enroll, from its decision on record.
fn rebuilt_enroll(section: Uuid, student: Uuid, d: &Decided) -> Option<(StatusCode, Value)> {
    let enrolled = match d.outcome.as_str() {
        "enrolled" => Enrolled::Seat { at: d.at },
        "waitlisted" => Enrolled::Waitlist {
            position: u32::try_from(d.position?).ok()?,
        },
        "refused" => return refusal_answer(d),
        _ => return None,
    };
    Some(enrollment_answer(section, student, enrolled))
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
) -> Result<Response, ApiError> {
    let rebuild = |decided: &[Decided], request| {
        rebuilt_enroll(section, call.student, decided_for(decided, request)?)
    };
    let what = ["enroll", &section.to_string()];
    call.idempotent(&state, &what, &[""], rebuild, async |request| {
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
        match d.outcome.as_str() {
            "dropped" => Some(drop_answer(d.promoted?)),
            "refused" => refusal_answer(d),
            _ => None,
        }
    };
    let what = ["drop", &section.to_string()];
    call.idempotent(&state, &what, &[""], rebuild, async |request| {
        let dropped = state
            .registration
            .drop_enrollment(call.seat(section, request))
            .await?;
        Ok(drop_answer(dropped.promoted))
    })
    .await
}

fn drop_answer(promoted: bool) -> (StatusCode, Value) {
    let body = DropResponse {
        status: "dropped".into(),
        promoted,
    };
    (StatusCode::OK, json!(body))
}

fn swap_answer(add: Uuid, student: Uuid, enrolled: Enrolled, drop: Uuid, promoted: bool) -> Value {
    let (_, added) = enrollment_answer(add, student, enrolled);
    json!({
        "status": "swapped",
        "added": added,
        "dropped": {"section_id": drop, "promoted": promoted},
    })
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
        let enrolled = match added.outcome.as_str() {
            "enrolled" => Enrolled::Seat { at: added.at },
            "refused" => return refusal_answer(added),
            _ => return None,
        };
        let dropped = decided_for(decided, part_of(request, "drop"))?;
        let promoted = (dropped.outcome == "dropped").then_some(dropped.promoted?)?;
        Some((
            StatusCode::OK,
            swap_answer(add, student, enrolled, drop, promoted),
        ))
    };
    let what = ["swap", &drop.to_string(), &add.to_string()];
    let parts = ["", "add", "drop"];
    call.idempotent(&state, &what, &parts, rebuild, async |request| {
        let swap = Swap {
            student,
            drop,
            add,
            request,
        };
        let (enrolled, dropped) = state.registration.swap(swap).await?;
        let body = swap_answer(add, student, enrolled, drop, dropped.promoted);
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
