//! `POST /api/v1/imports` (admin): the catalog and roster import of `crate::import` over
//! HTTP, for a body in the import's JSON format. It is bounded by the body limit
//! (`REGISTRAR_MAX_BODY_BYTES`, 16 KiB by default) and the request time limit: big files go
//! through `registrar import`, which has neither.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiQuery, Caller, JsonText};
use crate::import::{self, Options, Quiet, Report};
use crate::resources::Role;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/imports", post(import_catalog))
}

/// How to import.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Answer what would change, write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Apply the rows without errors even when some rows have errors (otherwise nothing).
    #[serde(default)]
    pub skip_errors: bool,
}

/// The import's JSON format: an array of records per kind, each with the fields the
/// import guide lists (docs/operations.md, "Importing a catalog"). Every key is optional;
/// no other key is accepted.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// `{"code","name"}`
    #[schema(nullable = false)]
    pub terms: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    /// `{"term","standing","opens_at","closes_at"}`
    #[schema(nullable = false)]
    pub windows: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    /// `{"code","title","credits","prerequisites","components","corequisites"}`
    #[schema(nullable = false)]
    pub courses: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    /// `{"term","course_code","section_code","capacity","waitlist_capacity","meetings",
    /// "component","links","reserved","restrictions","waitlist_mode","offer_window_minutes"}`
    #[schema(nullable = false)]
    pub sections: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    /// `{"username","password" or "password_hash","standing","max_credits",
    /// "completed_courses","majors","program","cohort"}`
    #[schema(nullable = false)]
    pub students: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    /// `{"term","username","opens_at","closes_at"}`
    #[schema(nullable = false)]
    pub tickets: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
}

/// Import terms, windows, courses, sections, students and time tickets, keyed by the codes
/// the SIS uses (re-sending the same body changes nothing). Rows with errors are answered
/// in the report with their index and line; with any, nothing is applied unless
/// `skip_errors=true`. Changes of an existing section's capacity, waitlist capacity, pools,
/// waitlist mode or offer window are answered as `api_changes`, not made.
#[utoipa::path(post, path = "/api/v1/imports", tag = "admin",
    request_body(content = ImportBody, description = "Records by kind"),
    params(ImportQuery),
    responses((status = 200, description = "What changed (or would, in a dry run), and the rows that failed", body = Report)),
    security(("bearer" = [])))]
pub async fn import_catalog(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ImportQuery>,
    JsonText(body): JsonText,
) -> Result<Json<Report>, ApiError> {
    caller.require(Role::Admin)?;
    records_are_objects(&body)?;
    let parsed = import::parse::json("body", &body).map_err(import::ImportError::from)?;
    let options = Options {
        dry_run: query.dry_run,
        skip_errors: query.skip_errors,
        shards: state.settings.cluster.shards,
        default_password: None,
    };
    let report = import::run(&state.pool, vec![parsed], &options, &Quiet).await?;
    Ok(Json(report))
}

/// The endpoint's body is the JSON object format, whose records are objects (the document
/// says so): an array item of another type is a malformed body, 400 `invalid_body`, not a
/// row error (as a line of a JSON Lines file is).
fn records_are_objects(body: &str) -> Result<(), ApiError> {
    let Ok(serde_json::Value::Object(kinds)) = serde_json::from_str::<serde_json::Value>(body)
    else {
        // Not an object at all: the import's own parser says what is wrong.
        return Ok(());
    };
    for (kind, records) in &kinds {
        if let serde_json::Value::Array(items) = records
            && let Some(i) = items.iter().position(|r| !r.is_object())
        {
            return Err(ApiError::invalid_body(format!(
                "{kind}[{i}]: a record is an object of fields"
            )));
        }
    }
    Ok(())
}
