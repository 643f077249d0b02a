//! The machine-readable contract, generated from the handlers' annotations and served at
//! `GET /api/v1/openapi.json`.
//!
//! The annotations name each operation's own answers (201, 409 `section_full`, ...); the
//! problems many operations share (a bad body or id, a missing token, a role that may not,
//! the request time limit) are added here by [`ProblemAnswers`] from the operation's shape,
//! and every problem answer is declared as `application/problem+json`, so no annotation
//! can forget one. `deploy/local/fuzz.sh` checks the server against this document.

use super::AppState;
use super::error::ErrorCode;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "registrar", description = "Course registration that does not fall over on registration day."),
    paths(
        super::auth::login,
        super::catalog::list_terms, super::catalog::get_deadlines, super::catalog::list_sections, super::catalog::get_section, super::catalog::seat_stream, super::catalog::seats_stream,
        super::registration::enroll, super::registration::drop_me, super::registration::swap, super::registration::enroll_set, super::registration::schedule,
        super::registration::accept_offer, super::registration::decline_offer, super::registration::options::change_options,
        super::registration::cart::get_cart, super::registration::cart::put_item, super::registration::cart::delete_item,
        super::registration::cart::preview, super::registration::cart::submit,
        super::admin::create_term, super::admin::create_window, super::admin::create_course, super::admin::patch_course_grading, super::admin::create_section, super::admin::set_links,
        super::admin::patch_section, super::admin::create_student, super::admin::get_student, super::admin::add_hold, super::admin::list_holds, super::admin::list_windows, super::admin::find_student,
        super::admin::remove_hold, super::admin::set_deadlines,
        super::policy::patch_student, super::policy::set_reserved, super::policy::set_ticket,
        super::policy::remove_ticket, super::policy::student_tickets, super::policy::my_tickets,
        super::policy::assign_tickets,
        super::permits::grant, super::permits::list, super::permits::revoke, super::permits::mine,
        super::imports::import_catalog,
        super::reports::my_notifications, super::reports::term_analytics,
        super::ops::healthz, super::ops::readyz, super::ops::metrics,
        super::cluster::overview, super::cluster::shards, super::cluster::section,
        super::cluster::hot_sections, super::cluster::one_move, super::cluster::list_moves,
        super::cluster::move_shard, super::cluster::drain_node, super::cluster::rebalance,
        document,
    ),
    components(schemas(super::error::Problem, crate::resources::MeetingDto, crate::resources::Standing, crate::resources::Role)),
    modifiers(&BearerAuth, &ProblemAnswers),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The media type of every problem answer (RFC 9457).
const PROBLEM_JSON: &str = "application/problem+json";

/// Adds the problem answers an operation can give because of its shape, and declares every
/// problem answer as `application/problem+json` with the `Problem` schema.
struct ProblemAnswers;

impl Modify for ProblemAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_shared_problems(path, operation);
                declare_problem_json(operation);
            }
        }
    }
}

/// The problems `operation` at `path` can answer whatever its handler does: each with the
/// codes that cause it.
fn add_shared_problems(path: &str, operation: &mut Operation) {
    let mut add = |status: &str, why: &str| {
        let response = operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(Response::new("")));
        if let RefOr::T(response) = response
            && !response.description.contains(why)
        {
            response.description = if response.description.is_empty() {
                format!("Problem: {why}")
            } else {
                format!("{}; {why}", response.description)
            };
        }
    };
    let code = |c: ErrorCode| format!("`{}`", c.as_str());
    if operation.request_body.is_some() {
        add("400", &code(ErrorCode::InvalidBody));
        add("413", &code(ErrorCode::PayloadTooLarge));
    }
    if path.contains('{') {
        add("400", &code(ErrorCode::InvalidId));
        add(
            "404",
            "no such record for an id of the path (`*_not_found`)",
        );
    }
    let query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Query);
    if query {
        add("400", &code(ErrorCode::InvalidQuery));
    }
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        add("401", &code(ErrorCode::Unauthenticated));
        add("403", &code(ErrorCode::Forbidden));
    }
    // A dependency down, or the request time limit (every route but the seat stream).
    add("503", &code(ErrorCode::Unavailable));
}

/// Problem answers (4xx/5xx) carry `application/problem+json`: a `Problem` the annotation
/// declared in `application/json` moves there, and every 4xx/5xx answer gets it (a body of
/// another type stays beside it: `/readyz`'s 503, which the time limit may also answer).
fn declare_problem_json(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        let declared_problem = response.content.get("application/json").is_some_and(
            |c| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem")),
        );
        if declared_problem {
            response.content.shift_remove("application/json");
        }
        if !response.content.contains_key(PROBLEM_JSON) {
            response.content.insert(
                PROBLEM_JSON.to_string(),
                Content::new(Some(Ref::from_schema_name("Problem"))),
            );
        }
        if response.description.is_empty() {
            response.description = "Problem: `code` says which".to_string();
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "ops",
    responses((status = 200, description = "The OpenAPI document of this API", content_type = "application/json")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(document))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_built_and_shared_problems_are_declared() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let hold = &doc["paths"]["/api/v1/students/{student_id}/holds"]["post"]["responses"];
        for status in ["400", "401", "403", "404", "413", "422", "503"] {
            let content = &hold[status]["content"];
            assert!(content[PROBLEM_JSON].is_object(), "{status}: {content}");
            assert!(content["application/json"].is_null(), "{status}: {content}");
        }
        assert!(
            hold["400"]["description"]
                .as_str()
                .unwrap()
                .contains("`invalid_id`")
        );
    }
}
