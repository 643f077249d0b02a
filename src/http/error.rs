//! The one place errors become HTTP: every error of every layer converts into an
//! [`ApiError`], which renders as `application/problem+json` (RFC 9457) with a stable
//! [`ErrorCode`]. Each code carries its status, so a code can never be sent with the wrong
//! one. Internal errors (bugs) are logged with their cause and shown to clients as a 500
//! without it.

use crate::cluster::home::NotHome;
use crate::resources::Invalid;
use crate::service::admin::AdminError;
use crate::service::login_guard::LoginRefusal;
use crate::service::registration::RegistrationError;
use crate::store::DbError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use registrar_actors::student_rules::RuleViolation;
use registrar_actors::{CallError, Refusal};
use serde::Serialize;
use utoipa::ToSchema;

/// Declares [`ErrorCode`] with the wire string and status of every code, side by side.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $status:ident;)*) => {
        /// Every stable problem `code` the API answers with. Clients switch on these strings.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order (docs and tests walk it).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The wire string (`code` of the problem document).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $code,)*
                }
            }

            /// The code whose wire string is `code`, if any.
            pub fn from_wire(code: &str) -> Option<ErrorCode> {
                Self::ALL.iter().copied().find(|c| c.as_str() == code)
            }

            /// The HTTP status every answer with this code carries.
            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$name => StatusCode::$status,)*
                }
            }
        }
    };
}

error_codes! {
    /// The body is not the JSON the route expects.
    InvalidBody = "invalid_body", BAD_REQUEST;
    /// A path identifier is not a UUID.
    InvalidId = "invalid_id", BAD_REQUEST;
    /// A query parameter is malformed.
    InvalidQuery = "invalid_query", BAD_REQUEST;
    /// The `Idempotency-Key` header is malformed.
    InvalidIdempotencyKey = "invalid_idempotency_key", BAD_REQUEST;
    /// Missing, expired or forged token; wrong credentials.
    Unauthenticated = "unauthenticated", UNAUTHORIZED;
    /// The caller's role may not do this.
    Forbidden = "forbidden", FORBIDDEN;
    /// No registration window of the student's standing is open.
    RegistrationWindowClosed = "registration_window_closed", FORBIDDEN;
    /// The student's registration appointment (time ticket) has not come yet.
    RegistrationNotOpenYet = "registration_not_open_yet", FORBIDDEN;
    /// The term's last day to add sections has passed.
    AddDeadlinePassed = "add_deadline_passed", FORBIDDEN;
    /// The term's last day to withdraw has passed: a seat can no longer be dropped (a
    /// waitlist place still can).
    DropDeadlinePassed = "drop_deadline_passed", FORBIDDEN;
    /// The term's `drop_by` has passed: credits and grading basis can no longer change.
    OptionsDeadlinePassed = "options_deadline_passed", FORBIDDEN;
    /// The section is open only to (or closed to) students by major, program, cohort or
    /// standing.
    RestrictedSection = "restricted_section", FORBIDDEN;
    /// The section requires the instructor's consent and the student has no consent
    /// permit for it.
    ConsentRequired = "consent_required", FORBIDDEN;
    /// The student has a hold.
    StudentOnHold = "student_on_hold", FORBIDDEN;
    /// No such route.
    NotFound = "not_found", NOT_FOUND;
    /// No such section.
    SectionNotFound = "section_not_found", NOT_FOUND;
    /// No such term.
    TermNotFound = "term_not_found", NOT_FOUND;
    /// The student has no time ticket in the term.
    TicketNotFound = "ticket_not_found", NOT_FOUND;
    /// No such student.
    StudentNotFound = "student_not_found", NOT_FOUND;
    /// No such hold.
    HoldNotFound = "hold_not_found", NOT_FOUND;
    /// No such permit.
    PermitNotFound = "permit_not_found", NOT_FOUND;
    /// No course with that code.
    CourseNotFound = "course_not_found", NOT_FOUND;
    /// No such cluster node.
    NodeNotFound = "node_not_found", NOT_FOUND;
    /// No such shard.
    ShardNotFound = "shard_not_found", NOT_FOUND;
    /// No such shard move.
    MoveNotFound = "move_not_found", NOT_FOUND;
    /// A drop of a section the student is not in.
    NotEnrolled = "not_enrolled", NOT_FOUND;
    /// The route does not accept that method.
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED;
    /// A record with the same key exists.
    AlreadyExists = "already_exists", CONFLICT;
    /// A change of a course's credit range or bases would leave students' chosen options
    /// outside them.
    OptionsInUse = "options_in_use", CONFLICT;
    /// The student already holds a seat in the section.
    AlreadyEnrolled = "already_enrolled", CONFLICT;
    /// The student is already on the section's waitlist.
    AlreadyWaitlisted = "already_waitlisted", CONFLICT;
    /// No seat and no waitlist place left.
    SectionFull = "section_full", CONFLICT;
    /// The seats left are reserved for students with an attribute this one lacks.
    SeatsReserved = "seats_reserved", CONFLICT;
    /// Reserved pools would set aside more seats than the section has.
    ReservedAboveCapacity = "reserved_above_capacity", CONFLICT;
    /// A pool would have fewer seats than students already seated in it.
    ReservedBelowTaken = "reserved_below_taken", CONFLICT;
    /// A seat of the section is offered to the student: accept or decline it.
    AlreadyOffered = "already_offered", CONFLICT;
    /// No seat of the section is offered to the student (none was, or it expired).
    NoOffer = "no_offer", CONFLICT;
    /// The cart holds as many items as it may.
    CartFull = "cart_full", CONFLICT;
    /// A seat in the section is held for one of the student's decisions under way.
    AlreadyHeld = "already_held", CONFLICT;
    /// No such held seat (a confirm of a hold that is not there).
    NotHeld = "not_held", CONFLICT;
    /// The decision a held seat belonged to has ended.
    DecisionEnded = "decision_ended", CONFLICT;
    /// A held seat was confirmed already.
    AlreadyConfirmed = "already_confirmed", CONFLICT;
    /// The section meets at the same time as one on the schedule.
    TimeConflict = "time_conflict", CONFLICT;
    /// The schedule already has a section of the course.
    DuplicateCourse = "duplicate_course", CONFLICT;
    /// The shard already has a move in progress.
    ShardMoving = "shard_moving", CONFLICT;
    /// The node is not an active member (joining, draining, left or dead).
    NodeNotActive = "node_not_active", CONFLICT;
    /// No other active node could take the shards.
    NoActiveNode = "no_active_node", CONFLICT;
    /// A capacity below the seats already taken.
    CapacityBelowTaken = "capacity_below_taken", CONFLICT;
    /// The body is larger than the server accepts.
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE;
    /// A field is out of range or malformed.
    InvalidField = "invalid_field", UNPROCESSABLE_ENTITY;
    /// A referenced record does not exist.
    UnknownReference = "unknown_reference", UNPROCESSABLE_ENTITY;
    /// Missing prerequisites.
    PrerequisitesNotMet = "prerequisites_not_met", UNPROCESSABLE_ENTITY;
    /// The `Idempotency-Key` was first used for a different request.
    IdempotencyKeyReused = "idempotency_key_reused", UNPROCESSABLE_ENTITY;
    /// The enroll would exceed the student's credit limit.
    CreditLimitExceeded = "credit_limit_exceeded", UNPROCESSABLE_ENTITY;
    /// A course with components would lack a section of one (a lecture without its lab).
    LinkedSetIncomplete = "linked_set_incomplete", UNPROCESSABLE_ENTITY;
    /// Credits outside the course's credit range.
    CreditsOutOfRange = "credits_out_of_range", UNPROCESSABLE_ENTITY;
    /// A grading basis the course does not allow.
    GradingBasisNotAllowed = "grading_basis_not_allowed", UNPROCESSABLE_ENTITY;
    /// A lab or recitation is not linked to the lecture chosen with it.
    NotLinked = "not_linked", UNPROCESSABLE_ENTITY;
    /// A corequisite is neither completed, on the schedule, nor asked for with the course.
    CorequisiteMissing = "corequisite_missing", UNPROCESSABLE_ENTITY;
    /// The drop would leave a course on the schedule without its corequisite.
    CorequisiteRequired = "corequisite_required", CONFLICT;
    /// Too many requests from this caller (with `Retry-After`).
    RateLimited = "rate_limited", TOO_MANY_REQUESTS;
    /// A bug; the cause is logged, never shown.
    Internal = "internal", INTERNAL_SERVER_ERROR;
    /// Too many commands in flight (with `Retry-After`); nothing was recorded.
    Overloaded = "overloaded", SERVICE_UNAVAILABLE;
    /// A dependency is down (with `Retry-After`); nothing was recorded.
    Unavailable = "unavailable", SERVICE_UNAVAILABLE;
    /// No decision within the call timeout; a retry with the same key gets it.
    DecisionPending = "decision_pending", SERVICE_UNAVAILABLE;
    /// The browser pages are not built on this node (`npm run build` in `web/`).
    WebNotBuilt = "web_not_built", SERVICE_UNAVAILABLE;
}

impl From<&Refusal> for ErrorCode {
    fn from(r: &Refusal) -> Self {
        match r {
            Refusal::SectionFull => ErrorCode::SectionFull,
            Refusal::AlreadyEnrolled => ErrorCode::AlreadyEnrolled,
            Refusal::AlreadyWaitlisted => ErrorCode::AlreadyWaitlisted,
            Refusal::NotEnrolled => ErrorCode::NotEnrolled,
            Refusal::AlreadyHeld => ErrorCode::AlreadyHeld,
            Refusal::NotHeld => ErrorCode::NotHeld,
            Refusal::DecisionEnded => ErrorCode::DecisionEnded,
            Refusal::AlreadyConfirmed => ErrorCode::AlreadyConfirmed,
            Refusal::CapacityBelowTaken { .. } => ErrorCode::CapacityBelowTaken,
            Refusal::SeatsReserved { .. } => ErrorCode::SeatsReserved,
            Refusal::ReservedAboveCapacity { .. } => ErrorCode::ReservedAboveCapacity,
            Refusal::ReservedBelowTaken { .. } => ErrorCode::ReservedBelowTaken,
            Refusal::AlreadyOffered => ErrorCode::AlreadyOffered,
            Refusal::NoOffer => ErrorCode::NoOffer,
            Refusal::DropDeadlinePassed => ErrorCode::DropDeadlinePassed,
        }
    }
}

impl From<&RuleViolation> for ErrorCode {
    fn from(v: &RuleViolation) -> Self {
        match v {
            RuleViolation::OnHold => ErrorCode::StudentOnHold,
            RuleViolation::WindowClosed => ErrorCode::RegistrationWindowClosed,
            RuleViolation::NotOpenYet { .. } => ErrorCode::RegistrationNotOpenYet,
            RuleViolation::AddDeadlinePassed { .. } => ErrorCode::AddDeadlinePassed,
            RuleViolation::DropDeadlinePassed { .. } => ErrorCode::DropDeadlinePassed,
            RuleViolation::RestrictedSection { .. } => ErrorCode::RestrictedSection,
            RuleViolation::ConsentRequired { .. } => ErrorCode::ConsentRequired,
            RuleViolation::DuplicateCourse { .. } => ErrorCode::DuplicateCourse,
            RuleViolation::PrerequisitesNotMet { .. } => ErrorCode::PrerequisitesNotMet,
            RuleViolation::TimeConflict { .. } => ErrorCode::TimeConflict,
            RuleViolation::CreditLimitExceeded { .. } => ErrorCode::CreditLimitExceeded,
            RuleViolation::LinkedSetIncomplete { .. } => ErrorCode::LinkedSetIncomplete,
            RuleViolation::NotLinked { .. } => ErrorCode::NotLinked,
            RuleViolation::CorequisiteMissing { .. } => ErrorCode::CorequisiteMissing,
            RuleViolation::CorequisiteRequired { .. } => ErrorCode::CorequisiteRequired,
            RuleViolation::CreditsOutOfRange { .. } => ErrorCode::CreditsOutOfRange,
            RuleViolation::GradingBasisNotAllowed { .. } => ErrorCode::GradingBasisNotAllowed,
            RuleViolation::OptionsDeadlinePassed { .. } => ErrorCode::OptionsDeadlinePassed,
        }
    }
}

/// An RFC 9457 problem with a stable `code`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Stable machine-readable code; decides the HTTP status.
    pub code: ErrorCode,
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
    /// A problem with `code` (and so its status) and `detail`.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
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
        Self::new(ErrorCode::InvalidBody, detail)
    }

    /// 400 `invalid_id`.
    pub fn invalid_id(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidId, detail)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, detail)
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    /// 503 `unavailable` with `Retry-After: 1`: nothing was recorded.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, detail).retry_after(1)
    }

    /// 500 `internal`, with the cause logged but not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorCode::Internal,
            "an internal error occurred; it has been logged",
        )
    }

    /// The HTTP status of this problem.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The problem document of this error (also stored as an idempotent answer).
    pub fn body(&self) -> serde_json::Value {
        let status = self.status();
        serde_json::json!({
            "type": format!("https://registrar.dev/problems/{}", self.code.as_str()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "code": self.code.as_str(),
            "detail": self.detail,
        })
    }
}

/// Render a JSON answer: problem+json for 4xx/5xx, plain JSON otherwise. The only place a
/// response body is built from a status and a document, so a stored idempotent answer
/// replays exactly as the first one was sent.
pub fn render(status: StatusCode, body: serde_json::Value, retry_after: Option<u32>) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    if status.is_client_error() || status.is_server_error() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
    }
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = render(self.status(), self.body(), self.retry_after);
        // The request metrics (`http::measure`) count answers by code without parsing bodies.
        response.extensions_mut().insert(self.code);
        response
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        Self::new(ErrorCode::InvalidField, e.to_string())
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Duplicate(c) => Self::new(
                ErrorCode::AlreadyExists,
                format!("a record with the same key exists ({c})"),
            ),
            DbError::MissingReference(c) => Self::new(
                ErrorCode::UnknownReference,
                format!("a referenced record does not exist ({c})"),
            ),
            DbError::Check(c) => Self::new(
                ErrorCode::InvalidField,
                format!("a value is out of range ({c})"),
            ),
            DbError::Unavailable(why) => {
                tracing::warn!(%why, "database unavailable");
                Self::unavailable("the database is unreachable; nothing was recorded")
            }
            DbError::Other(other) => Self::internal(&other),
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Overloaded => Self::new(
                ErrorCode::Overloaded,
                "too many requests in flight for this section; retry shortly",
            )
            .retry_after(1),
            CallError::NotFound => Self::new(ErrorCode::SectionNotFound, "no such section"),
            CallError::Unavailable(why) => {
                tracing::warn!(%why, "decision not recorded");
                Self::unavailable("the decision could not be recorded; nothing was recorded")
            }
            CallError::NotOwner => {
                Self::unavailable("the section is moving between nodes; nothing was recorded")
            }
            CallError::Pending => Self::new(
                ErrorCode::DecisionPending,
                "no decision yet; retry with the same Idempotency-Key to get it",
            )
            .retry_after(1),
        }
    }
}

impl From<LoginRefusal> for ApiError {
    fn from(r: LoginRefusal) -> Self {
        match r {
            LoginRefusal::RateLimited(secs) => {
                ApiError::new(ErrorCode::RateLimited, r.to_string()).retry_after(secs)
            }
            LoginRefusal::Overloaded => ApiError::new(
                ErrorCode::Overloaded,
                "too many logins in progress; retry shortly",
            )
            .retry_after(1),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::StudentNotFound => Self::new(ErrorCode::StudentNotFound, e.to_string()),
            AdminError::HoldNotFound => Self::new(ErrorCode::HoldNotFound, e.to_string()),
            AdminError::PermitNotFound => Self::new(ErrorCode::PermitNotFound, e.to_string()),
            AdminError::TermNotFound => Self::new(ErrorCode::TermNotFound, e.to_string()),
            AdminError::TicketNotFound => Self::new(ErrorCode::TicketNotFound, e.to_string()),
            AdminError::SectionNotFound => Self::new(ErrorCode::SectionNotFound, e.to_string()),
            AdminError::CourseNotFound => Self::new(ErrorCode::CourseNotFound, e.to_string()),
            AdminError::OptionsInUse(_) => Self::new(ErrorCode::OptionsInUse, e.to_string()),
            AdminError::UnknownCourse(_) | AdminError::UnknownSection(_) => {
                Self::new(ErrorCode::UnknownReference, e.to_string())
            }
            AdminError::Invalid(invalid) => invalid.into(),
            AdminError::Db(d) => d.into(),
        }
    }
}

impl From<crate::import::ImportError> for ApiError {
    fn from(e: crate::import::ImportError) -> Self {
        use crate::import::ImportError as I;
        match e {
            I::File(e) => Self::invalid_body(e.to_string()),
            I::Db(e) => e.into(),
        }
    }
}

impl From<NotHome> for ApiError {
    fn from(e: NotHome) -> Self {
        match e {
            NotHome::Elsewhere => Self::unavailable(
                "this student's requests are moving to another node; nothing was recorded",
            ),
            NotHome::NoLease => Self::unavailable(
                "this node cannot reach the cluster's database to renew its lease; \
                 nothing was recorded",
            ),
        }
    }
}

impl From<RegistrationError> for ApiError {
    fn from(e: RegistrationError) -> Self {
        use RegistrationError as R;
        match e {
            R::SectionNotFound => Self::new(ErrorCode::SectionNotFound, "no such section"),
            R::StudentNotFound => Self::unauthenticated("the account no longer exists"),
            R::NotAStudent => Self::forbidden("only students register for sections"),
            R::Rule(v) => Self::new(ErrorCode::from(&v), v.to_string()),
            R::Refused(r) => Self::new(ErrorCode::from(&r), r.to_string()),
            R::PartRefused { section, refusal } => Self::new(
                ErrorCode::from(&refusal),
                format!("section {section}: {refusal}; nothing was taken"),
            ),
            R::SetCancelled { code, section } => {
                let detail = match section {
                    Some(s) => format!("section {s} refused ({code}); nothing was taken"),
                    None => format!("nothing was taken ({code})"),
                };
                match ErrorCode::from_wire(&code) {
                    Some(code) if code.status().is_client_error() => Self::new(code, detail),
                    _ => Self::unavailable(detail),
                }
            }
            R::DecisionUnderWay => Self::new(
                ErrorCode::DecisionPending,
                "your decision is made and is being carried out in every section; retry with \
                 the same Idempotency-Key to get its answer",
            )
            .retry_after(1),
            R::Call(c) => c.into(),
            R::Db(d) => d.into(),
            R::NotHome(n) => n.into(),
            R::SwapUnderWay => Self::new(
                ErrorCode::DecisionPending,
                "your swap is under way and will be completed, in exactly one of its two \
                 sections; retry with the same Idempotency-Key to get its answer",
            )
            .retry_after(1),
            R::Bug(why) => Self::internal(&why),
        }
    }
}

impl From<crate::service::cart::CartError> for ApiError {
    fn from(e: crate::service::cart::CartError) -> Self {
        use crate::service::cart::CartError as C;
        match e {
            C::SectionNotFound => Self::new(ErrorCode::SectionNotFound, "no such section"),
            C::Full => Self::new(ErrorCode::CartFull, e.to_string()),
            C::Options(v) => Self::new(ErrorCode::from(&v), v.to_string()),
            C::Db(d) => d.into(),
        }
    }
}

impl From<crate::cluster::ops::OpsError> for ApiError {
    fn from(e: crate::cluster::ops::OpsError) -> Self {
        use crate::cluster::ops::OpsError as O;
        let detail = e.to_string();
        let code = match e {
            O::ShardNotFound { .. } => ErrorCode::ShardNotFound,
            O::NodeNotFound => ErrorCode::NodeNotFound,
            O::NodeNotActive { .. } | O::StoppedBeingActive { .. } => ErrorCode::NodeNotActive,
            O::NoOtherActive => ErrorCode::NoActiveNode,
            O::NoOwner => return Self::unavailable(detail),
            O::AlreadyThere { .. } => ErrorCode::InvalidField,
            O::ShardMoving | O::ChangedHands => ErrorCode::ShardMoving,
            O::SectionNotFound => ErrorCode::SectionNotFound,
            O::MoveNotFound => ErrorCode::MoveNotFound,
            O::Db(db) => return db.into(),
        };
        Self::new(code, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registrar_actors::SectionId;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_and_errors() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} declared twice");
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            let status = code.status();
            assert!(status.is_client_error() || status.is_server_error(), "{s}");
        }
    }

    #[test]
    fn refusal_and_rule_codes_match_the_audit_codes() {
        // The actors write these codes into the audit trail; the API must say the same.
        let refusals = [
            Refusal::SectionFull,
            Refusal::AlreadyEnrolled,
            Refusal::AlreadyWaitlisted,
            Refusal::NotEnrolled,
            Refusal::AlreadyHeld,
            Refusal::NotHeld,
            Refusal::DecisionEnded,
            Refusal::AlreadyConfirmed,
            Refusal::CapacityBelowTaken {
                requested: 1,
                seats_taken: 2,
            },
            Refusal::DropDeadlinePassed,
        ];
        for r in &refusals {
            assert_eq!(ErrorCode::from(r).as_str(), r.code());
        }
        let rules = [
            RuleViolation::OnHold,
            RuleViolation::WindowClosed,
            RuleViolation::AddDeadlinePassed {
                add_by: chrono::DateTime::UNIX_EPOCH,
            },
            RuleViolation::DropDeadlinePassed {
                withdraw_by: chrono::DateTime::UNIX_EPOCH,
            },
            RuleViolation::DuplicateCourse {
                course: "CS1".into(),
            },
            RuleViolation::PrerequisitesNotMet { missing: vec![] },
            RuleViolation::TimeConflict {
                with: SectionId::new_v4(),
            },
            RuleViolation::CreditLimitExceeded {
                limit: 1,
                would_be: 2,
            },
            RuleViolation::LinkedSetIncomplete {
                course: "CS1".into(),
                missing: vec![],
            },
            RuleViolation::NotLinked {
                section: SectionId::new_v4(),
                primary: SectionId::new_v4(),
            },
            RuleViolation::CorequisiteMissing {
                course: "CS1".into(),
                missing: vec![],
            },
            RuleViolation::CorequisiteRequired {
                course: "CS1".into(),
                by: "CS2".into(),
            },
            RuleViolation::CreditsOutOfRange {
                credits: 5,
                min: 1,
                max: 4,
            },
            RuleViolation::GradingBasisNotAllowed {
                basis: registrar_actors::student_rules::GradingBasis::Audit,
                allowed: vec![],
            },
            RuleViolation::OptionsDeadlinePassed {
                drop_by: chrono::DateTime::UNIX_EPOCH,
            },
        ];
        for v in &rules {
            assert_eq!(ErrorCode::from(v).as_str(), v.code());
        }
    }

    #[test]
    fn a_problem_carries_its_codes_status() {
        let e = ApiError::new(ErrorCode::SectionFull, "full");
        let body = e.body();
        assert_eq!(body["status"], 409);
        assert_eq!(body["code"], "section_full");
        assert_eq!(body["title"], "Conflict");
        assert_eq!(
            ApiError::new(ErrorCode::NotEnrolled, "").status(),
            StatusCode::NOT_FOUND
        );
    }
}
