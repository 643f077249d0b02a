//! A student's registration call: the extractor that admits it (a student, within the
//! rate limit, with the home pass the edge took for it) and runs it once per
//! `Idempotency-Key`.

use crate::cluster::home::HomePass;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorCode, render};
use crate::http::extract::Caller;
use crate::http::forward::{AtHome, NODE_HEADER};
use crate::resources::Role;
use crate::service::idempotency::{self, Decided, IdempotencyKey, Prior, part_of};
use crate::service::registration::SeatRequest;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use registrar_actors::{RequestId, StudentId};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// A student's registration call, admitted: the caller is a student within the rate limit
/// (checked in that order at extraction, before the path and body), with the
/// `Idempotency-Key` it carried; [`StudentCall::idempotent`] decides once per key.
pub struct StudentCall {
    /// The student.
    pub(super) student: Uuid,
    /// The raw `Idempotency-Key`, validated when the call is decided.
    key: Option<HeaderValue>,
    /// This node admitted the call as the student's home.
    home: Arc<HomePass>,
}

/// An answer decided now: status, body, and the node whose section actor decided it
/// (for `X-Registrar-Node`), if one did.
pub(super) struct Fresh {
    /// The answer's status.
    pub status: StatusCode,
    /// Its body.
    pub body: Value,
    /// The deciding node.
    pub decided_by: Option<Arc<str>>,
}

impl Fresh {
    /// The same answer, decided by `node`.
    pub fn decided_by(self, node: Option<Arc<str>>) -> Self {
        Self {
            decided_by: node,
            ..self
        }
    }
}

impl From<(StatusCode, Value)> for Fresh {
    fn from((status, body): (StatusCode, Value)) -> Self {
        Self {
            status,
            body,
            decided_by: None,
        }
    }
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
        // Every student's call on these routes passes `forward::to_home` first.
        let Some(AtHome(home)) = parts.extensions.get::<AtHome>().cloned() else {
            return Err(ApiError::internal(
                &"a student's call reached its handler without a home pass",
            ));
        };
        Ok(Self {
            student: caller.id,
            key,
            home,
        })
    }
}

impl StudentCall {
    /// The pass this call was admitted with, for the service.
    pub(super) fn home(&self) -> Arc<HomePass> {
        self.home.clone()
    }

    /// This student's request about `section`.
    pub(super) fn seat(&self, section: Uuid, request: RequestId) -> SeatRequest {
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
    pub(super) async fn idempotent<F>(
        &self,
        state: &AppState,
        what: &[&str],
        parts: &[&str],
        rebuild: impl Fn(&[Decided], RequestId) -> Option<(StatusCode, Value)>,
        decide: F,
    ) -> Result<Response, ApiError>
    where
        F: AsyncFnOnce(RequestId) -> Result<Fresh, ApiError>,
    {
        let student = self.student;
        let key = self
            .key
            .as_ref()
            .map(|raw| IdempotencyKey::parse(raw.as_bytes()))
            .transpose()
            .map_err(|e| ApiError::new(ErrorCode::InvalidIdempotencyKey, e.to_string()))?;
        let Some(key) = key else {
            let fresh = decide(RequestId::new_v4()).await?;
            return Ok(named(
                render(fresh.status, fresh.body, None),
                fresh.decided_by,
            ));
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
        let fresh = match prior.await? {
            Prior::Answered(answer) => return replayed(answer),
            Prior::Reused => return Err(key_reused()),
            Prior::Decided(decided) => match rebuild(&decided, request) {
                Some(answer) => Fresh::from(answer),
                None => decided_now(decide(request).await)?,
            },
            Prior::Fresh => decided_now(decide(request).await)?,
        };
        let answer = idempotency::Answer {
            status: fresh.status.as_u16() as i16,
            body: fresh.body,
        };
        let stored =
            idempotency::remember(&state.pool, student, &key, fingerprint, answer, retention);
        match stored.await? {
            Ok(answer) => Ok(named(replayed(answer)?, fresh.decided_by)),
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
fn decided_now(result: Result<Fresh, ApiError>) -> Result<Fresh, ApiError> {
    match result {
        Ok(answer) => Ok(answer),
        Err(e) if e.status().is_client_error() => Ok(Fresh::from((e.status(), e.body()))),
        Err(e) => Err(e),
    }
}

/// `response`, naming the node that decided it, if one did now.
fn named(mut response: Response, decided_by: Option<Arc<str>>) -> Response {
    if let Some(value) = decided_by.and_then(|n| HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert(NODE_HEADER, value);
    }
    response
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
