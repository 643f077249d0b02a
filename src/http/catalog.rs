//! Public catalog reads: terms, a term's sections (cursor-paginated), one section, and the
//! live seat stream of a section (Server-Sent Events; its own router, mounted outside the
//! request time limit).

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{ApiQuery, Ids};
use crate::mirror::MirrorError;
use crate::resources::{SectionView, Term, normalize_course_code};
use crate::service::feed::SeatCounts;
use crate::store::catalog;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::stream::{self, Stream};
use registrar_actors::{Counts, SectionId};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Routes of this module, except the seat stream ([`stream_router`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/terms",
            get(list_terms).post(super::admin::create_term),
        )
        .route("/api/v1/terms/{term_id}/sections", get(list_sections))
        .route(
            "/api/v1/sections/{section_id}",
            get(get_section).patch(super::admin::patch_section),
        )
}

/// The seat stream, which must not be cut by the request time limit.
pub fn stream_router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/sections/{section_id}/seats/stream",
        get(seat_stream),
    )
}

/// All terms.
#[utoipa::path(get, path = "/api/v1/terms", tag = "catalog", responses((status = 200, body = [Term])))]
pub async fn list_terms(State(state): State<AppState>) -> Result<Json<Vec<Term>>, ApiError> {
    Ok(Json(catalog::list_terms(&state.pool).await?))
}

/// Section list query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SectionQuery {
    /// Only this course, e.g. `CS101` (any form a course code may be sent in).
    #[param(schema_with = crate::resources::schema::course_code)]
    pub course: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<Uuid>)]
    pub cursor: Option<String>,
    /// Page size, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// A page of sections.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SectionPage {
    /// The sections.
    pub items: Vec<SectionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A term's sections, in course and section order.
#[utoipa::path(get, path = "/api/v1/terms/{term_id}/sections", tag = "catalog", params(("term_id" = Uuid, Path), SectionQuery),
    responses((status = 200, body = SectionPage), (status = 404, body = super::error::Problem)))]
pub async fn list_sections(
    State(state): State<AppState>,
    Ids(term): Ids<Uuid>,
    ApiQuery(q): ApiQuery<SectionQuery>,
) -> Result<Json<SectionPage>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "limit must be 1 to 500",
        ));
    }
    let course = q
        .course
        .as_deref()
        .map(|c| {
            normalize_course_code(c).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    "course must be a course code like CS101 or MATH-2413",
                )
            })
        })
        .transpose()?;
    let cursor = q
        .cursor
        .as_deref()
        .map(super::extract::parse_id)
        .transpose()?;
    if !catalog::term_exists(&state.pool, term).await? {
        return Err(ApiError::new(ErrorCode::TermNotFound, "no such term"));
    }
    let items = catalog::list_sections(&state.pool, term, course.as_deref(), cursor, limit).await?;
    let next_cursor =
        (items.len() == limit as usize).then(|| items[items.len() - 1].id.to_string());
    Ok(Json(SectionPage { items, next_cursor }))
}

/// One section with its seat counts (from the Redis mirror when it has them, else from
/// PostgreSQL; a missing mirror entry is written back).
#[utoipa::path(get, path = "/api/v1/sections/{section_id}", tag = "catalog", params(("section_id" = Uuid, Path)),
    responses((status = 200, body = SectionView), (status = 404, body = super::error::Problem), (status = 400, body = super::error::Problem)))]
pub async fn get_section(
    State(state): State<AppState>,
    Ids(id): Ids<Uuid>,
) -> Result<Json<SectionView>, ApiError> {
    let mirror = state.feed.mirror.as_ref();
    let mut heal = false;
    if let Some(mirror) = mirror
        && let Some(view) = state.section_views.get(&id).map(|v| v.clone())
    {
        match mirror.read(SectionId(id)).await {
            Ok(Some(counts)) => return Ok(Json(with_counts(view, counts))),
            Ok(None) => heal = true,
            Err(MirrorError::Bypassed) => {}
            Err(e) => tracing::debug!(error = %e, "redis mirror unavailable; reading PostgreSQL"),
        }
    }
    let view = catalog::section(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::SectionNotFound, "no such section"))?;
    if let Some(mirror) = mirror {
        if heal {
            mirror.heal(SectionId(id));
        }
        state.section_views.insert(id, view.clone());
    }
    Ok(Json(view))
}

fn with_counts(mut view: SectionView, c: Counts) -> SectionView {
    view.seats_taken = c.seats_taken;
    view.capacity = c.capacity;
    view.seats_left = c.capacity.saturating_sub(c.seats_taken);
    view.waitlist_length = c.waitlist_length;
    view.waitlist_capacity = c.waitlist_capacity;
    view
}

/// Live seat counts: one `seats` event now, then one per committed change.
#[utoipa::path(get, path = "/api/v1/sections/{section_id}/seats/stream", tag = "catalog", params(("section_id" = Uuid, Path)),
    responses((status = 200, description = "`seats` events: `{\"seats_taken\",\"capacity\",\"seats_left\",\"waitlist_length\"}`, one now and one per committed change",
            content_type = "text/event-stream"), (status = 404, body = super::error::Problem),
        (status = 503, description = "`overloaded`: the node serves its most streams (`sse_max_subscribers`)", body = super::error::Problem)))]
pub async fn seat_stream(
    State(state): State<AppState>,
    Ids(id): Ids<Uuid>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // The slot under the node's stream cap lives in the stream, so it is given back when
    // the stream is dropped: the client went away, or the server stopped.
    let slot = state
        .feed
        .reserve()
        .map_err(|full| ApiError::new(ErrorCode::Overloaded, full.to_string()).retry_after(5))?;
    // With the version of the read, so that no older counts (a late message from another
    // node) replace them, and a channel already open here moves on to them if they are newer.
    let (section, version, counts) = catalog::section_counts(&state.pool, &[id])
        .await?
        .pop()
        .ok_or_else(|| ApiError::new(ErrorCode::SectionNotFound, "no such section"))?;
    let mut sub = state
        .feed
        .subscribe(slot, section, SeatCounts { version, counts });
    sub.counts.mark_changed();
    let events = stream::unfold(sub, |mut sub| async move {
        sub.counts.changed().await.ok()?;
        let counts = sub.counts.borrow_and_update().counts;
        let data = serde_json::json!({
            "seats_taken": counts.seats_taken,
            "capacity": counts.capacity,
            "seats_left": counts.capacity.saturating_sub(counts.seats_taken),
            "waitlist_length": counts.waitlist_length,
        });
        Some((
            Ok(Event::default().event("seats").data(data.to_string())),
            sub,
        ))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
