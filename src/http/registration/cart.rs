//! The student's cart: stage sections, preview them, submit them in one request (see
//! `service::cart`).

use super::StudentCall;
use super::call::Fresh;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Caller, Ids, OptionalJson};
use crate::resources::Role;
use crate::service::cart::{Preview, Submitted, Verdict, groups};
use crate::service::idempotency::Decided;
use crate::service::registration::Enrolled;
use crate::store::cart::CartRow;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// One staged section.
#[derive(Serialize, ToSchema)]
pub struct CartItem {
    /// The section.
    pub section_id: Uuid,
    /// Its course.
    pub course_code: String,
    /// Its code within the course.
    pub section_code: String,
    /// `lecture`, `lab`, ...
    pub component: String,
    /// The course's title.
    pub title: String,
    /// The course's credits.
    pub credits: u32,
    /// The decision it is submitted in with other items (a linked set, with its
    /// corequisites in the cart), named by the first item's course; none when it is
    /// decided alone.
    pub group: Option<String>,
    /// Seats free now.
    pub seats_left: u32,
    /// When it was staged.
    pub added_at: DateTime<Utc>,
    /// The credits and grading basis it is to be enrolled with, if chosen when staged
    /// (`null`: chosen at the submit, as for an enroll that names none).
    pub options: Option<StagedOptions>,
}

/// The options staged with a cart item.
#[derive(Serialize, ToSchema)]
pub struct StagedOptions {
    /// Credits within the course's range.
    pub credits: u32,
    /// `letter`, `pass_fail` or `audit`.
    #[schema(schema_with = crate::resources::schema::grading_basis)]
    pub grading_basis: String,
}

/// The cart.
#[derive(Serialize, ToSchema)]
pub struct Cart {
    /// Staged sections, oldest first.
    pub items: Vec<CartItem>,
}

fn cart_of(rows: Vec<CartRow>) -> Cart {
    let groups = groups(&rows);
    Cart {
        items: rows
            .into_iter()
            .zip(groups)
            .map(|(r, group)| CartItem {
                options: r.options().map(|o| StagedOptions {
                    credits: o.credits,
                    grading_basis: o.basis.as_str().to_string(),
                }),
                group,
                seats_left: (r.capacity - r.seats_taken).max(0) as u32,
                section_id: r.section_id,
                course_code: r.course_code,
                section_code: r.section_code,
                component: r.component,
                title: r.title,
                credits: r.credits as u32,
                added_at: r.added_at,
            })
            .collect(),
    }
}

/// The calling student's cart.
#[utoipa::path(get, path = "/api/v1/students/me/cart", tag = "registration",
    responses((status = 200, body = Cart), (status = 401, body = crate::http::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_cart(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Cart>, ApiError> {
    caller.require(Role::Student)?;
    Ok(Json(cart_of(state.registration.cart(caller.id).await?)))
}

/// Stage a section in the calling student's cart, optionally with the credits and grading
/// basis to enroll with (again: no change but the options, when given).
#[utoipa::path(put, path = "/api/v1/students/me/cart/{section_id}", tag = "registration",
    request_body = Option<super::options::OptionsBody>,
    params(("section_id" = Uuid, Path)),
    responses((status = 200, body = Cart), (status = 404, body = crate::http::error::Problem),
        (status = 409, body = crate::http::error::Problem),
        (status = 422, description = "`credits_out_of_range`, `grading_basis_not_allowed`, `invalid_field`", body = crate::http::error::Problem)),
    security(("bearer" = [])))]
pub async fn put_item(
    State(state): State<AppState>,
    caller: Caller,
    Ids(section): Ids<Uuid>,
    OptionalJson(body): OptionalJson<super::options::OptionsBody>,
) -> Result<Json<Cart>, ApiError> {
    caller.require(Role::Student)?;
    let asked = body.unwrap_or_default().asked()?;
    state
        .registration
        .add_to_cart(caller.id, section, asked)
        .await?;
    Ok(Json(cart_of(state.registration.cart(caller.id).await?)))
}

/// Take a section out of the calling student's cart.
#[utoipa::path(delete, path = "/api/v1/students/me/cart/{section_id}", tag = "registration",
    params(("section_id" = Uuid, Path)),
    responses((status = 200, body = Cart), (status = 401, body = crate::http::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete_item(
    State(state): State<AppState>,
    caller: Caller,
    Ids(section): Ids<Uuid>,
) -> Result<Json<Cart>, ApiError> {
    caller.require(Role::Student)?;
    state
        .registration
        .remove_from_cart(caller.id, section)
        .await?;
    Ok(Json(cart_of(state.registration.cart(caller.id).await?)))
}

/// What submitting would do with one item.
#[derive(Serialize, ToSchema)]
pub struct PreviewItem {
    /// The section.
    pub section_id: Uuid,
    /// Its linked set, if any.
    pub group: Option<String>,
    /// `would_enroll`, `would_waitlist` or `would_fail`.
    pub verdict: String,
    /// Why it would fail (a problem code).
    pub code: Option<&'static str>,
    /// A sentence for the student.
    pub detail: String,
}

/// The preview of the cart.
#[derive(Serialize, ToSchema)]
pub struct CartPreview {
    /// One verdict per item: linked sets first, then the rest, in cart order.
    pub items: Vec<PreviewItem>,
}

fn preview_item(p: Preview) -> PreviewItem {
    PreviewItem {
        section_id: p.section,
        group: p.group,
        verdict: match p.verdict {
            Verdict::WouldEnroll => "would_enroll",
            Verdict::WouldWaitlist => "would_waitlist",
            Verdict::WouldFail => "would_fail",
        }
        .into(),
        code: p.code,
        detail: p.detail,
    }
}

/// Check the cart: the student rules against the schedule and the seats free now; nothing
/// is taken or recorded.
#[utoipa::path(post, path = "/api/v1/students/me/cart/preview", tag = "registration",
    responses((status = 200, body = CartPreview), (status = 401, body = crate::http::error::Problem)),
    security(("bearer" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CartPreview>, ApiError> {
    caller.require(Role::Student)?;
    let items = state.registration.preview_cart(caller.id).await?;
    Ok(Json(CartPreview {
        items: items.into_iter().map(preview_item).collect(),
    }))
}

/// How one submitted item ended.
#[derive(Serialize, ToSchema)]
pub struct SubmittedItem {
    /// The section.
    pub section_id: Uuid,
    /// Its linked set, if any.
    pub group: Option<String>,
    /// `enrolled`, `waitlisted` or `refused`.
    pub status: &'static str,
    /// Why it was refused (a problem code).
    pub code: Option<String>,
    /// A sentence for the student.
    pub detail: Option<String>,
    /// The decision of its linked set (every event of the set carries it).
    pub decision_id: Option<Uuid>,
    /// Waitlist position (waitlisted only).
    pub position: Option<u32>,
}

/// The answer of a submitted cart.
#[derive(Serialize, ToSchema)]
pub struct SubmittedCart {
    /// One outcome per item: linked sets first, then the rest, in cart order.
    pub items: Vec<SubmittedItem>,
}

fn refused(section: Uuid, group: Option<String>, e: ApiError) -> SubmittedItem {
    SubmittedItem {
        section_id: section,
        group,
        status: "refused",
        code: Some(e.code.as_str().into()),
        detail: Some(e.detail),
        decision_id: None,
        position: None,
    }
}

fn submitted_cart(s: Submitted) -> SubmittedCart {
    let mut items = Vec::new();
    for set in s.sets {
        match set.result {
            Ok(decision) => items.extend(set.sections.iter().map(|&section| SubmittedItem {
                section_id: section,
                group: Some(set.course.clone()),
                status: "enrolled",
                code: None,
                detail: None,
                decision_id: Some(decision),
                position: None,
            })),
            Err(e) => {
                let e = ApiError::from(e);
                items.extend(
                    set.sections
                        .iter()
                        .map(|&section| refused(section, Some(set.course.clone()), e.clone())),
                );
            }
        }
    }
    for item in s.items {
        items.push(match item.result {
            Ok(Enrolled::Seat { .. }) => SubmittedItem {
                section_id: item.section,
                group: None,
                status: "enrolled",
                code: None,
                detail: None,
                decision_id: None,
                position: None,
            },
            Ok(Enrolled::Waitlist { position }) => SubmittedItem {
                section_id: item.section,
                group: None,
                status: "waitlisted",
                code: None,
                detail: None,
                decision_id: None,
                position: Some(position),
            },
            Err(e) => refused(item.section, None, ApiError::from(e)),
        });
    }
    SubmittedCart { items }
}

/// Submit the cart when the window opens: every linked set all or nothing, the other
/// items one by one; each item's outcome. Items that got a seat or a waitlist place leave
/// the cart. An item that got no decision (a section's owner could not answer) makes the
/// whole answer 503 `decision_pending`: retry with the same `Idempotency-Key`, which
/// replays what was decided and decides the rest.
#[utoipa::path(post, path = "/api/v1/students/me/cart/submit", tag = "registration",
    params(("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = "^[!-~]+$",
        description = "1-255 visible ASCII characters; a retry of the same request with the same key gets the first answer; a key first used for a different request gets 422 idempotency_key_reused")),
    responses((status = 200, body = SubmittedCart), (status = 400, body = crate::http::error::Problem),
        (status = 401, body = crate::http::error::Problem), (status = 403, body = crate::http::error::Problem),
        (status = 422, body = crate::http::error::Problem), (status = 429, body = crate::http::error::Problem),
        (status = 503, body = crate::http::error::Problem)),
    security(("bearer" = [])))]
pub async fn submit(
    State(state): State<AppState>,
    call: StudentCall,
) -> Result<Response, ApiError> {
    let rebuild = |_: &[Decided], _| None;
    call.idempotent(&state, &["cart-submit"], &[""], rebuild, async |request| {
        let submitted = state
            .registration
            .submit_cart(call.home(), call.student, request)
            .await?;
        if submitted.undecided() {
            return Err(ApiError::from(
                crate::service::registration::RegistrationError::DecisionUnderWay,
            ));
        }
        Ok(Fresh::from((
            StatusCode::OK,
            json!(submitted_cart(submitted)),
        )))
    })
    .await
}
