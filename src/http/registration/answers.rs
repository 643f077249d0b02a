//! The answers of the registration routes: their bodies, and how the first answer to a
//! keyed request is rebuilt from the decisions on record when its stored copy was lost.

use crate::http::error::{ApiError, ErrorCode};
use crate::service::idempotency::Decided;
use crate::service::registration::Enrolled;
use crate::store::audit::AttemptOutcome;
use axum::http::StatusCode;
use registrar_actors::RequestId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

/// What an accepted enroll got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnrollStatus {
    /// A seat (201).
    Enrolled,
    /// A waitlist place (202).
    Waitlisted,
}

/// What an accepted drop did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DropStatus {
    /// The seat or waitlist place was left.
    Dropped,
}

/// Answer of an enroll: `enrolled` (201) or `waitlisted` (202).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EnrollmentResponse {
    /// A seat or a waitlist place.
    pub status: EnrollStatus,
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
    pub status: DropStatus,
    /// Whether the freed seat went to the head of the waitlist.
    pub promoted: bool,
    /// `true` for a withdrawal: a seat left after the term's drop deadline, which keeps a
    /// W on the record (the seat is freed all the same). Left out for a plain drop, whose
    /// answer is as it always was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
}

/// What an accepted decision over several sections did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SetStatus {
    /// A seat in every section asked for (201).
    Enrolled,
    /// Every section of the set left (200).
    Dropped,
}

/// Answer of a decision over several sections (a linked set taken, swapped inside, or
/// dropped whole).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SetResponse {
    /// `enrolled` or `dropped`.
    pub status: SetStatus,
    /// The decision: every event of its changes carries this id.
    pub decision_id: Uuid,
    /// Sections now enrolled in.
    pub sections: Vec<Uuid>,
    /// Sections left.
    pub dropped: Vec<Uuid>,
    /// `true` when the sections left were withdrawn from (a set dropped after the term's
    /// drop deadline: each keeps a W on the record); left out otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
}

/// The answer to a decision over several sections carried out.
pub(super) fn set_answer(taken: crate::service::bundle::SetTaken) -> (StatusCode, Value) {
    let (status, code) = if taken.taken.is_empty() {
        (SetStatus::Dropped, StatusCode::OK)
    } else {
        (SetStatus::Enrolled, StatusCode::CREATED)
    };
    let body = SetResponse {
        status,
        decision_id: taken.decision,
        sections: taken.taken,
        dropped: taken.left,
        withdrawn: taken.withdrawn,
    };
    (code, json!(body))
}

/// The decision on record for `request`, if any.
pub(super) fn decided_for(decided: &[Decided], request: RequestId) -> Option<&Decided> {
    decided.iter().find(|d| d.request_id == request.0)
}

/// The problem a recorded refusal was answered with (its detail is not on record).
pub(super) fn refusal_answer(d: &Decided) -> Option<(StatusCode, Value)> {
    let code = ErrorCode::from_wire(d.code.as_deref()?)?;
    let e = ApiError::new(code, format!("refused: {}", code.as_str()));
    Some((e.status(), e.body()))
}

/// The first answer to an enroll, from its decision on record.
pub(super) fn rebuilt_enroll(
    section: Uuid,
    student: Uuid,
    d: &Decided,
) -> Option<(StatusCode, Value)> {
    let enrolled = match d.outcome {
        AttemptOutcome::Enrolled => Enrolled::Seat { at: d.at },
        AttemptOutcome::Waitlisted => Enrolled::Waitlist {
            position: u32::try_from(d.position?).ok()?,
        },
        AttemptOutcome::Refused => return refusal_answer(d),
        AttemptOutcome::Dropped
        | AttemptOutcome::CapacityChanged
        | AttemptOutcome::ReservesChanged
        | AttemptOutcome::OffersExpired
        | AttemptOutcome::BlockChanged
        | AttemptOutcome::Held
        | AttemptOutcome::Confirmed
        | AttemptOutcome::Released => return None,
    };
    Some(enrollment_answer(section, student, enrolled))
}

/// The answer to an accepted enroll: 201 with a seat, 202 with a waitlist place.
pub(super) fn enrollment_answer(
    section: Uuid,
    student: Uuid,
    enrolled: Enrolled,
) -> (StatusCode, Value) {
    let (status, body) = match enrolled {
        Enrolled::Seat { at } => (
            StatusCode::CREATED,
            EnrollmentResponse {
                status: EnrollStatus::Enrolled,
                section_id: section,
                student_id: student,
                enrolled_at: Some(at),
                position: None,
            },
        ),
        Enrolled::Waitlist { position } => (
            StatusCode::ACCEPTED,
            EnrollmentResponse {
                status: EnrollStatus::Waitlisted,
                section_id: section,
                student_id: student,
                enrolled_at: None,
                position: Some(position),
            },
        ),
    };
    (status, json!(body))
}

/// The answer to an accepted drop.
pub(super) fn drop_answer(promoted: bool, withdrawn: bool) -> (StatusCode, Value) {
    let body = DropResponse {
        status: DropStatus::Dropped,
        promoted,
        withdrawn,
    };
    (StatusCode::OK, json!(body))
}

/// The body of an accepted swap.
pub(super) fn swap_answer(
    add: Uuid,
    student: Uuid,
    enrolled: Enrolled,
    drop: Uuid,
    promoted: bool,
) -> Value {
    let (_, added) = enrollment_answer(add, student, enrolled);
    json!({
        "status": "swapped",
        "added": added,
        "dropped": {"section_id": drop, "promoted": promoted},
    })
}
