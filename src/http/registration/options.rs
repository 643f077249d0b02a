//! A student's choice of credits and grading basis: the optional body of an enroll, and
//! `PATCH /api/v1/sections/{section_id}/enrollments/me` to change them on a place held
//! (see `service::enrollment_options`).

use super::StudentCall;
use super::call::Fresh;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, Ids};
use crate::resources::{invalid, optional_whole_number, schema};
use crate::service::enrollment_options::AskedOptions;
use crate::service::idempotency::Decided;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use registrar_actors::student_rules::GradingBasis;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Credits and grading basis asked for (the optional body of an enroll, the body of a
/// change); each one left out is chosen for the student: on an enroll, the course's
/// `credits` and `letter` (else the course's first basis), or what the student already
/// takes the course for; on a change, what the place has now.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionsBody {
    /// Credits within the course's `min_credits`..`max_credits`.
    #[serde(default, deserialize_with = "optional_whole_number")]
    #[schema(value_type = Option<u32>, maximum = 12)]
    pub credits: Option<u32>,
    /// One of the course's `grading_bases`: `letter`, `pass_fail` or `audit`. Audited
    /// credits count toward neither the credit limit nor the schedule's credits.
    #[serde(default)]
    #[schema(schema_with = schema::optional_grading_basis)]
    pub grading_basis: Option<String>,
}

impl OptionsBody {
    /// What the body asks for; an unknown basis is 422 `invalid_field`.
    pub fn asked(&self) -> Result<AskedOptions, ApiError> {
        let basis = self
            .grading_basis
            .as_deref()
            .map(|b| b.parse::<GradingBasis>())
            .transpose()
            .map_err(|e| invalid("grading_basis", e))?;
        Ok(AskedOptions {
            credits: self.credits,
            basis,
        })
    }
}

/// The options of a place, as answered.
#[derive(serde::Serialize, ToSchema)]
pub struct OptionsResponse {
    /// The section asked about.
    pub section_id: Uuid,
    /// Credits the course is taken for.
    pub credits: u32,
    /// `letter`, `pass_fail` or `audit`.
    #[schema(schema_with = schema::grading_basis)]
    pub grading_basis: String,
    /// Every section of the course on the schedule (a lecture and its lab share them).
    pub sections: Vec<Uuid>,
    /// Whether anything changed (false when the place already had these options).
    pub changed: bool,
}

/// Change the credits or grading basis of the calling student's place in a section (a
/// seat, a waitlist place or an offer), and of the other sections of its course on the
/// schedule; checked against the course and the credit limit again, until the term's
/// `drop_by`.
#[utoipa::path(patch, path = "/api/v1/sections/{section_id}/enrollments/me", tag = "registration",
    request_body = OptionsBody,
    params(("section_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = "^[!-~]+$",
        description = "1-255 visible ASCII characters; a retry of the same request with the same key gets the first answer; a key first used for a different request gets 422 idempotency_key_reused")),
    responses((status = 200, body = OptionsResponse),
        (status = 403, description = "`options_deadline_passed`", body = crate::http::error::Problem),
        (status = 404, description = "`section_not_found`, `not_enrolled`", body = crate::http::error::Problem),
        (status = 422, description = "`credits_out_of_range`, `grading_basis_not_allowed`, `credit_limit_exceeded`, `invalid_field`", body = crate::http::error::Problem),
        (status = 429, body = crate::http::error::Problem), (status = 503, body = crate::http::error::Problem)),
    security(("bearer" = [])))]
pub async fn change_options(
    State(state): State<AppState>,
    call: StudentCall,
    Ids(section): Ids<Uuid>,
    ApiJson(body): ApiJson<OptionsBody>,
) -> Result<Response, ApiError> {
    let asked = body.asked()?;
    let rebuild = |_: &[Decided], _| None;
    let section_text = section.to_string();
    let mut what = vec!["options".to_string(), section_text];
    what.extend(asked.fingerprint());
    let what: Vec<&str> = what.iter().map(String::as_str).collect();
    call.idempotent(&state, &what, &[""], rebuild, async |request| {
        let changed = state
            .registration
            .change_options(call.home(), call.seat(section, request), asked)
            .await?;
        let c = changed.value;
        let answer = OptionsResponse {
            section_id: section,
            credits: c.options.credits,
            grading_basis: c.options.basis.as_str().to_string(),
            sections: c.sections,
            changed: c.at.is_some(),
        };
        let body = serde_json::to_value(answer).map_err(|e| ApiError::internal(&e))?;
        Ok(Fresh::from((StatusCode::OK, body)).decided_by(changed.by))
    })
    .await
}
