//! The one place errors become HTTP: every error of every layer converts into an
//! [`ApiError`], which renders as `application/problem+json` (RFC 9457) with a stable
//! `code`. Internal errors are logged with their cause and shown to clients without it.

use crate::domain::Invalid;
use crate::service::registration::RegistrationError;
use crate::store::DbError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use registrar_actors::CallError;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem with a stable `code`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation of this occurrence.
    pub detail: String,
    /// Seconds to wait before retrying (429/503).
    pub retry_after: Option<u32>,
}

/// The problem document (for OpenAPI).
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Stable code clients switch on.
    pub code: String,
    /// This occurrence.
    pub detail: String,
}

impl ApiError {
    /// A problem with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// Ask the client to retry after `secs`.
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 400 `invalid_body`.
    pub fn invalid_body(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_body", detail)
    }

    /// 400 `invalid_id`.
    pub fn invalid_id(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_id", detail)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404 with a specific code.
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    /// 500, with the cause logged but not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    /// The problem document of this error (also stored as an idempotent answer).
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "type": format!("https://registrar.dev/problems/{}", self.code),
            "title": self.title(),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            e.to_string(),
        )
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Duplicate(c) => Self::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("a record with the same key exists ({c})"),
            ),
            DbError::MissingReference(c) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_reference",
                format!("a referenced record does not exist ({c})"),
            ),
            DbError::Check(c) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("a value is out of range ({c})"),
            ),
            DbError::Other(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unreachable; nothing was recorded",
            )
            .retry_after(1),
            DbError::Other(other) => Self::internal(&other),
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Overloaded => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many requests in flight for this section; retry shortly",
            )
            .retry_after(1),
            CallError::NotFound => Self::not_found("section_not_found", "no such section"),
            CallError::Unavailable(why) => {
                tracing::warn!(%why, "decision not recorded");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the decision could not be recorded; nothing was recorded",
                )
                .retry_after(1)
            }
            CallError::NotOwner => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the section is moving between nodes; nothing was recorded",
            )
            .retry_after(1),
            CallError::Pending => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "decision_pending",
                "no decision yet; retry with the same Idempotency-Key to get it",
            )
            .retry_after(1),
        }
    }
}

impl From<RegistrationError> for ApiError {
    fn from(e: RegistrationError) -> Self {
        use RegistrationError as R;
        match e {
            R::SectionNotFound => Self::not_found("section_not_found", "no such section"),
            R::StudentNotFound => Self::unauthenticated("the account no longer exists"),
            R::NotAStudent => Self::forbidden("only students register for sections"),
            R::Rule(v) => {
                let status = match v.code() {
                    "student_on_hold" | "registration_window_closed" => StatusCode::FORBIDDEN,
                    "duplicate_course" | "time_conflict" => StatusCode::CONFLICT,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                Self::new(status, v.code(), v.to_string())
            }
            R::Refused(r) => {
                let status = match r.code() {
                    "not_enrolled" => StatusCode::NOT_FOUND,
                    _ => StatusCode::CONFLICT,
                };
                Self::new(status, r.code(), r.to_string())
            }
            R::Call(c) => c.into(),
            R::Db(d) => d.into(),
        }
    }
}
