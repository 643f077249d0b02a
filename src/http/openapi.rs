//! The machine-readable contract, generated from the handlers' annotations and served at
//! `GET /api/v1/openapi.json`.

use super::AppState;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "registrar", description = "Course registration that does not fall over on registration day."),
    paths(
        super::auth::login,
        super::catalog::list_terms, super::catalog::list_sections, super::catalog::get_section, super::catalog::seat_stream,
        super::registration::enroll, super::registration::drop_me, super::registration::swap, super::registration::schedule,
        super::admin::create_term, super::admin::create_window, super::admin::create_course, super::admin::create_section,
        super::admin::patch_section, super::admin::create_student, super::admin::get_student, super::admin::add_hold,
        super::admin::remove_hold,
        super::reports::my_notifications, super::reports::term_analytics,
        super::ops::healthz, super::ops::readyz, super::ops::metrics,
    ),
    components(schemas(super::error::Problem, crate::resources::MeetingDto, crate::resources::Standing, crate::resources::Role)),
    modifiers(&BearerAuth),
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

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
