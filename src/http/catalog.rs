//! Public catalog reads: terms (with their add/drop deadlines), a term's sections
//! (cursor-paginated), one section, and the
//! live seat streams (Server-Sent Events; their own router, mounted outside the request
//! time limit): one section's, or one stream for many sections, which is what a browser
//! needs (it opens at most six HTTP/1.1 connections to a host). The term list and the
//! section lists may be served by a read replica (`database_read_url`); nothing else here is.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{ApiQuery, Ids};
use crate::redis::{MirrorError, SeatCounts};
use crate::resources::{SectionView, Term, TermDeadlines, normalize_course_code};
use crate::store::{DbError, catalog};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use registrar_actors::{Counts, SectionId};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::convert::Infallible;
use std::future::Future;
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
            "/api/v1/terms/{term_id}/deadlines",
            get(get_deadlines).put(super::admin::set_deadlines),
        )
        .route(
            "/api/v1/sections/{section_id}",
            get(get_section).patch(super::admin::patch_section),
        )
}

/// The seat streams, which must not be cut by the request time limit.
pub fn stream_router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/sections/{section_id}/seats/stream",
            get(seat_stream),
        )
        .route("/api/v1/seats/stream", get(seats_stream))
}

/// Most sections one multi-section stream follows (a page of search results).
pub const MAX_STREAM_SECTIONS: usize = 100;

/// All terms.
#[utoipa::path(get, path = "/api/v1/terms", tag = "catalog", responses((status = 200, body = [Term])))]
pub async fn list_terms(State(state): State<AppState>) -> Result<Json<Vec<Term>>, ApiError> {
    Ok(Json(
        browse(
            &state,
            |pool| async move { catalog::list_terms(&pool).await },
        )
        .await?,
    ))
}

/// Run a browsing read on the read replica if one is configured (`database_read_url`),
/// and on the primary if there is none or it is unavailable (down, or every standby gone
/// during a failover). Only for reads whose answer may be as old as the replica's lag.
async fn browse<T, F, Fut>(state: &AppState, read: F) -> Result<T, DbError>
where
    F: Fn(PgPool) -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    if let Some(replica) = &state.browse_pool {
        match read(replica.clone()).await {
            Err(DbError::Unavailable(why)) => {
                tracing::debug!(%why, "read replica unavailable; browsing on the primary");
            }
            answer => return answer,
        }
    }
    read(state.pool.clone()).await
}

/// A term's add/drop deadlines (each null while unset).
#[utoipa::path(get, path = "/api/v1/terms/{term_id}/deadlines", tag = "catalog",
    params(("term_id" = Uuid, Path)),
    responses((status = 200, body = TermDeadlines), (status = 404, description = "`term_not_found`", body = super::error::Problem)))]
pub async fn get_deadlines(
    State(state): State<AppState>,
    Ids(term): Ids<Uuid>,
) -> Result<Json<TermDeadlines>, ApiError> {
    catalog::deadlines(&state.pool, term)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::TermNotFound, "no such term"))
}

/// Section list query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SectionQuery {
    /// Only this course, e.g. `CS101` (any form a course code may be sent in).
    #[param(schema_with = crate::resources::schema::course_code)]
    pub course: Option<String>,
    /// Search: a course code prefix (`cs1`, `MATH-24`) or words of the title (`linear alg`),
    /// case-insensitive, 1-60 characters.
    #[param(schema_with = crate::resources::schema::search_60)]
    pub q: Option<String>,
    /// Only sections that meet on this day: `mon` .. `sun`.
    #[param(schema_with = crate::resources::schema::meeting_day)]
    pub day: Option<String>,
    /// Only sections whose every meeting starts at or after this time (`HH:MM`).
    #[param(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub starts_after: Option<String>,
    /// Only sections whose every meeting ends at or before this time (`HH:MM`).
    #[param(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub ends_before: Option<String>,
    /// `true`: only sections with a free seat (counts as committed in PostgreSQL).
    pub open: Option<bool>,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<Uuid>)]
    pub cursor: Option<String>,
    /// Page size, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

impl SectionQuery {
    /// The filters, checked: `400 invalid_query` naming the first bad one.
    fn filter(&self) -> Result<catalog::SectionFilter, ApiError> {
        let bad = |message: String| ApiError::new(ErrorCode::InvalidQuery, message);
        let course = self
            .course
            .as_deref()
            .map(|c| {
                normalize_course_code(c).ok_or_else(|| {
                    bad("course must be a course code like CS101 or MATH-2413".into())
                })
            })
            .transpose()?;
        let search = self
            .q
            .as_deref()
            .map(|q| {
                let q = q.trim();
                let fine =
                    !q.is_empty() && q.chars().count() <= 60 && !q.chars().any(char::is_control);
                fine.then(|| q.to_string()).ok_or_else(|| {
                    bad("q must be 1 to 60 characters, without control characters".into())
                })
            })
            .transpose()?;
        let day = self
            .day
            .as_deref()
            .map(|d| {
                serde_json::from_value::<registrar_actors::student_rules::Day>(serde_json::json!(d))
                    .map(|day| day.as_str().to_string())
                    .map_err(|_| {
                        bad(format!(
                            "day must be one of mon, tue, wed, thu, fri, sat, sun, not {d:?}"
                        ))
                    })
            })
            .transpose()?;
        let time = |name: &str, v: &Option<String>| {
            v.as_deref()
                .map(|t| {
                    t.parse::<registrar_actors::student_rules::ClockTime>()
                        .map(|t| t.to_string())
                        .map_err(|e| bad(format!("{name}: {e}")))
                })
                .transpose()
        };
        let starts_after = time("starts_after", &self.starts_after)?;
        let ends_before = time("ends_before", &self.ends_before)?;
        let limit = self.limit.unwrap_or(100);
        if !(1..=500).contains(&limit) {
            return Err(bad("limit must be 1 to 500".into()));
        }
        let cursor = self
            .cursor
            .as_deref()
            .map(super::extract::parse_id)
            .transpose()?;
        Ok(catalog::SectionFilter {
            course,
            search,
            day,
            starts_after,
            ends_before,
            open_only: self.open.unwrap_or(false),
            cursor,
            limit,
        })
    }
}

/// A page of sections.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SectionPage {
    /// The sections.
    pub items: Vec<SectionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A term's sections, in course and section order, optionally searched and filtered (every
/// filter given must hold).
#[utoipa::path(get, path = "/api/v1/terms/{term_id}/sections", tag = "catalog", params(("term_id" = Uuid, Path), SectionQuery),
    responses((status = 200, body = SectionPage), (status = 404, body = super::error::Problem)))]
pub async fn list_sections(
    State(state): State<AppState>,
    Ids(term): Ids<Uuid>,
    ApiQuery(q): ApiQuery<SectionQuery>,
) -> Result<Json<SectionPage>, ApiError> {
    let filter = q.filter()?;
    let filter = &filter;
    // Both reads on one server, so a list never misses the term it was found in.
    let found = browse(&state, |pool| async move {
        if !catalog::term_exists(&pool, term).await? {
            return Ok(None);
        }
        catalog::list_sections(&pool, term, filter).await.map(Some)
    })
    .await?;
    let Some(items) = found else {
        return Err(ApiError::new(ErrorCode::TermNotFound, "no such term"));
    };
    let limit = filter.limit;
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
    // A section with reserved pools is read from PostgreSQL: the mirror has its total of
    // reserved seats left, not each pool's.
    if let Some(mirror) = mirror
        && let Some(view) = state.section_views.get(&id).map(|v| v.clone())
        && view.reserved.is_empty()
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
    // Only sections without pools are read this way: every free seat is a general one.
    view.general_seats_left = view.seats_left;
    view.waitlist_length = c.waitlist_length;
    view.waitlist_capacity = c.waitlist_capacity;
    view
}

/// Live seat counts: one `seats` event now, then one per committed change.
#[utoipa::path(get, path = "/api/v1/sections/{section_id}/seats/stream", tag = "catalog", params(("section_id" = Uuid, Path)),
    responses((status = 200, description = "`seats` events: `{\"seats_taken\",\"capacity\",\"seats_left\",\"reserved_seats_left\",\"waitlist_length\"}`, one now and one per committed change",
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
        Some((
            Ok(Event::default()
                .event("seats")
                .data(seats_data(None, counts))),
            sub,
        ))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The JSON of one `seats` event; `section_id` only in a multi-section stream.
fn seats_data(section: Option<SectionId>, counts: Counts) -> String {
    let mut data = serde_json::json!({
        "seats_taken": counts.seats_taken,
        "capacity": counts.capacity,
        "seats_left": counts.capacity.saturating_sub(counts.seats_taken),
        "reserved_seats_left": counts.reserved_seats_left,
        "waitlist_length": counts.waitlist_length,
    });
    if let Some(SectionId(id)) = section {
        data["section_id"] = serde_json::json!(id);
    }
    data.to_string()
}

/// Multi-section stream query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Section ids, comma-separated (1 to 100; repeats count once).
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(,[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}){0,99}$"
    )]
    pub sections: String,
}

/// Live seat counts of several sections in one stream: one `seats` event per section now,
/// then one per committed change, each naming its `section_id`. One place under the node's
/// stream cap, however many sections.
#[utoipa::path(get, path = "/api/v1/seats/stream", tag = "catalog", params(StreamQuery),
    responses((status = 200, description = "`seats` events: `{\"section_id\",\"seats_taken\",\"capacity\",\"seats_left\",\"reserved_seats_left\",\"waitlist_length\"}`, one per section now and one per committed change",
            content_type = "text/event-stream"),
        (status = 400, description = "`invalid_query`: no id, a malformed id or more than 100", body = super::error::Problem),
        (status = 404, description = "`section_not_found`: an id names no section", body = super::error::Problem),
        (status = 503, description = "`overloaded`: the node serves its most streams (`sse_max_subscribers`)", body = super::error::Problem)))]
pub async fn seats_stream(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let mut ids: Vec<Uuid> = Vec::new();
    for raw in query.sections.split(',') {
        let id = Uuid::try_parse(raw.trim()).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                format!("`sections` holds {raw:?}, which is not a section id"),
            )
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > MAX_STREAM_SECTIONS {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("a stream follows at most {MAX_STREAM_SECTIONS} sections"),
        ));
    }
    let slot = state
        .feed
        .reserve()
        .map_err(|full| ApiError::new(ErrorCode::Overloaded, full.to_string()).retry_after(5))?;
    let found = catalog::section_counts(&state.pool, &ids).await?;
    if found.len() != ids.len() {
        let missing = ids
            .iter()
            .find(|id| !found.iter().any(|(s, _, _)| s.0 == **id))
            .copied()
            .unwrap_or_default();
        return Err(ApiError::new(
            ErrorCode::SectionNotFound,
            format!("no section {missing}"),
        ));
    }
    let receivers = found.into_iter().map(|(section, version, counts)| {
        let mut rx = state.feed.watch(section, SeatCounts { version, counts });
        rx.mark_changed();
        stream::unfold(rx, move |mut rx| async move {
            rx.changed().await.ok()?;
            let counts = rx.borrow_and_update().counts;
            let event = Event::default()
                .event("seats")
                .data(seats_data(Some(section), counts));
            Some((Ok(event), rx))
        })
        .boxed()
    });
    // The slot rides along with the merged stream and is given back when it is dropped.
    let merged = stream::select_all(receivers).map(move |event| {
        let _held = &slot;
        event
    });
    Ok(Sse::new(merged).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
