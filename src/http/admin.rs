//! Administration (admin role): terms, windows, add/drop deadlines, courses, sections,
//! capacity changes, students and holds. Edits of student rule inputs (holds, windows) go through
//! `service::admin`, which commits each with its notice to the other nodes.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{ApiJson, Caller, Ids};
use crate::resources::{
    Course, CourseGradingPatch, Hold, NewHold, NewSection, NewStudent, NewTerm, NewWindow,
    RegistrationWindow, Role, SectionLinks, SectionPatch, SectionView, StudentView, Term,
    TermDeadlines, normalize_course_code,
};
use crate::service::auth::hash_password;
use crate::store::{catalog, students};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use uuid::Uuid;

/// Routes of this module (plus `POST /terms`, `PUT /terms/{id}/deadlines` and
/// `PATCH /sections/{id}`, mounted with their GET twins in `catalog`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/terms/{term_id}/windows",
            get(list_windows).post(create_window),
        )
        .route("/api/v1/courses", post(create_course))
        .route(
            "/api/v1/courses/{code}",
            axum::routing::patch(patch_course_grading),
        )
        .route("/api/v1/sections", post(create_section))
        .route("/api/v1/sections/{section_id}/links", put(set_links))
        .route("/api/v1/students", get(find_student).post(create_student))
        .route("/api/v1/students/{student_id}", get(get_student))
        .route(
            "/api/v1/students/{student_id}/holds",
            get(list_holds).post(add_hold),
        )
        .route(
            "/api/v1/students/{student_id}/holds/{hold_id}",
            delete(remove_hold),
        )
}

fn admin(caller: &Caller) -> Result<(), ApiError> {
    caller.require(Role::Admin)
}

/// Create a term.
#[utoipa::path(post, path = "/api/v1/terms", tag = "admin", request_body = NewTerm,
    responses((status = 201, body = Term), (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn create_term(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewTerm>,
) -> Result<(StatusCode, Json<Term>), ApiError> {
    admin(&caller)?;
    body.validate()?;
    Ok((
        StatusCode::CREATED,
        Json(catalog::create_term(&state.pool, &body).await?),
    ))
}

/// Create or replace a term's window for one standing.
#[utoipa::path(post, path = "/api/v1/terms/{term_id}/windows", tag = "admin", request_body = NewWindow,
    params(("term_id" = Uuid, Path)),
    responses((status = 201, body = RegistrationWindow), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn create_window(
    State(state): State<AppState>,
    caller: Caller,
    Ids(term): Ids<Uuid>,
    ApiJson(body): ApiJson<NewWindow>,
) -> Result<(StatusCode, Json<RegistrationWindow>), ApiError> {
    admin(&caller)?;
    body.validate()?;
    let window = state.registration.set_window(term, &body).await?;
    Ok((StatusCode::CREATED, Json(window)))
}

/// Set a term's add/drop deadlines: all three are replaced (one left out or null is
/// unset). Each is inclusive and judged by the database clock; the ones given must come in
/// order (add, drop, withdraw).
#[utoipa::path(put, path = "/api/v1/terms/{term_id}/deadlines", tag = "admin", request_body = TermDeadlines,
    params(("term_id" = Uuid, Path)),
    responses((status = 200, body = TermDeadlines), (status = 404, description = "`term_not_found`", body = super::error::Problem),
        (status = 422, description = "`invalid_field`: deadlines out of order", body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_deadlines(
    State(state): State<AppState>,
    caller: Caller,
    Ids(term): Ids<Uuid>,
    ApiJson(body): ApiJson<TermDeadlines>,
) -> Result<Json<TermDeadlines>, ApiError> {
    admin(&caller)?;
    body.validate()?;
    Ok(Json(state.registration.set_deadlines(term, &body).await?))
}

/// Create a course.
#[utoipa::path(post, path = "/api/v1/courses", tag = "admin", request_body = Course,
    responses((status = 201, body = Course), (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn create_course(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(mut body): ApiJson<Course>,
) -> Result<(StatusCode, Json<Course>), ApiError> {
    admin(&caller)?;
    body.validate()?;
    catalog::create_course(&state.pool, &body).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

/// Change a course's credit range or grading bases (what the body leaves out stays);
/// refused while students' places would fall outside them.
#[utoipa::path(patch, path = "/api/v1/courses/{code}", tag = "admin", request_body = CourseGradingPatch,
    params(("code" = String, Path, description = "a course code in any accepted form")),
    responses((status = 200, body = Course),
        (status = 404, description = "`course_not_found`", body = super::error::Problem),
        (status = 409, description = "`options_in_use`", body = super::error::Problem),
        (status = 422, description = "`invalid_field`", body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn patch_course_grading(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(code): axum::extract::Path<String>,
    ApiJson(body): ApiJson<CourseGradingPatch>,
) -> Result<Json<Course>, ApiError> {
    admin(&caller)?;
    let code = normalize_course_code(&code)
        .ok_or_else(|| ApiError::new(ErrorCode::CourseNotFound, "no such course"))?;
    let (course, sections) = state.registration.set_course_grading(&code, &body).await?;
    for s in sections {
        state.section_views.remove(&s);
    }
    Ok(Json(course))
}

/// Create a section.
#[utoipa::path(post, path = "/api/v1/sections", tag = "admin", request_body = NewSection,
    responses((status = 201, body = SectionView), (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn create_section(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(mut body): ApiJson<NewSection>,
) -> Result<(StatusCode, Json<SectionView>), ApiError> {
    admin(&caller)?;
    let meetings = body.validate()?;
    let id = state
        .registration
        .create_section(&body, &meetings, state.settings.cluster.shards)
        .await?;
    for linked in &body.links {
        state.section_views.remove(linked);
    }
    let view = catalog::section(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::internal(&"created section vanished"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Replace the links of a section (a lecture's labs, or a lab's lectures): every link it
/// has, on either side, gives way to links to the sections named. Each must be a section
/// of the same course and term, of another component, one of the two the course's primary.
#[utoipa::path(put, path = "/api/v1/sections/{section_id}/links", tag = "admin", request_body = SectionLinks,
    params(("section_id" = Uuid, Path)),
    responses((status = 200, description = "The section, with its new links", body = SectionView),
        (status = 404, description = "`section_not_found`", body = super::error::Problem),
        (status = 422, description = "`unknown_reference`: a linked section does not exist; `invalid_field`: a link the rules refuse", body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_links(
    State(state): State<AppState>,
    caller: Caller,
    Ids(section): Ids<Uuid>,
    ApiJson(body): ApiJson<SectionLinks>,
) -> Result<Json<SectionView>, ApiError> {
    admin(&caller)?;
    for touched in state.registration.set_links(section, &body.links).await? {
        state.section_views.remove(&touched);
    }
    let view = catalog::section(&state.pool, section)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::SectionNotFound, "no such section"))?;
    Ok(Json(view))
}

/// Change a section's capacity (through its actor: never below the seats taken; raising
/// promotes from the waitlist in the same commit).
#[utoipa::path(patch, path = "/api/v1/sections/{section_id}", tag = "admin", request_body = SectionPatch,
    params(("section_id" = Uuid, Path)),
    responses((status = 200, body = SectionView), (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn patch_section(
    State(state): State<AppState>,
    caller: Caller,
    Ids(section): Ids<Uuid>,
    ApiJson(body): ApiJson<SectionPatch>,
) -> Result<Json<SectionView>, ApiError> {
    admin(&caller)?;
    if body.capacity > 100_000 {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "capacity: 0 to 100000",
        ));
    }
    state
        .registration
        .set_capacity(section, body.capacity)
        .await?;
    let view = catalog::section(&state.pool, section)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::SectionNotFound, "no such section"))?;
    Ok(Json(view))
}

/// Create an account (student by default).
#[utoipa::path(post, path = "/api/v1/students", tag = "admin", request_body = NewStudent,
    responses((status = 201, body = StudentView), (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn create_student(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(mut body): ApiJson<NewStudent>,
) -> Result<(StatusCode, Json<StudentView>), ApiError> {
    admin(&caller)?;
    body.validate()?;
    let password = body.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok((
        StatusCode::CREATED,
        Json(students::create(&state.pool, &body, &hash).await?),
    ))
}

/// One account.
#[utoipa::path(get, path = "/api/v1/students/{student_id}", tag = "admin", params(("student_id" = Uuid, Path)),
    responses((status = 200, body = StudentView), (status = 404, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn get_student(
    State(state): State<AppState>,
    caller: Caller,
    Ids(id): Ids<Uuid>,
) -> Result<Json<StudentView>, ApiError> {
    admin(&caller)?;
    students::get(&state.pool, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::StudentNotFound, "no such student"))
}

/// The windows of a term, freshman first.
#[utoipa::path(get, path = "/api/v1/terms/{term_id}/windows", tag = "admin",
    params(("term_id" = Uuid, Path)),
    responses((status = 200, body = [RegistrationWindow]), (status = 404, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn list_windows(
    State(state): State<AppState>,
    caller: Caller,
    Ids(term): Ids<Uuid>,
) -> Result<Json<Vec<RegistrationWindow>>, ApiError> {
    admin(&caller)?;
    if !catalog::term_exists(&state.pool, term).await? {
        return Err(ApiError::new(ErrorCode::TermNotFound, "no such term"));
    }
    Ok(Json(catalog::windows(&state.pool, term).await?))
}

/// Which account to find.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FindStudent {
    /// The exact username, e.g. `s000123`: 1-64 of `a-z 0-9 _ . -`.
    #[param(pattern = "^[a-z0-9_.-]{1,64}$")]
    pub username: String,
}

/// The account with a username.
#[utoipa::path(get, path = "/api/v1/students", tag = "admin", params(FindStudent),
    responses((status = 200, body = StudentView), (status = 400, body = super::error::Problem), (status = 404, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn find_student(
    State(state): State<AppState>,
    caller: Caller,
    super::extract::ApiQuery(q): super::extract::ApiQuery<FindStudent>,
) -> Result<Json<StudentView>, ApiError> {
    admin(&caller)?;
    let fine = (1..=64).contains(&q.username.len())
        && q.username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if !fine {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "username must be 1-64 of a-z, 0-9, _, . and -",
        ));
    }
    students::by_username(&state.pool, &q.username)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::StudentNotFound, "no account has that username"))
}

/// The holds on a student, oldest first.
#[utoipa::path(get, path = "/api/v1/students/{student_id}/holds", tag = "admin",
    params(("student_id" = Uuid, Path)),
    responses((status = 200, body = [Hold]), (status = 404, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn list_holds(
    State(state): State<AppState>,
    caller: Caller,
    Ids(student): Ids<Uuid>,
) -> Result<Json<Vec<Hold>>, ApiError> {
    admin(&caller)?;
    if students::get(&state.pool, student).await?.is_none() {
        return Err(ApiError::new(ErrorCode::StudentNotFound, "no such student"));
    }
    Ok(Json(students::holds(&state.pool, student).await?))
}

/// Put a hold on a student.
#[utoipa::path(post, path = "/api/v1/students/{student_id}/holds", tag = "admin", request_body = NewHold,
    params(("student_id" = Uuid, Path)),
    responses((status = 201, body = Hold), (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn add_hold(
    State(state): State<AppState>,
    caller: Caller,
    Ids(student): Ids<Uuid>,
    ApiJson(body): ApiJson<NewHold>,
) -> Result<(StatusCode, Json<Hold>), ApiError> {
    admin(&caller)?;
    body.validate()?;
    let hold = state.registration.add_hold(student, &body.reason).await?;
    Ok((StatusCode::CREATED, Json(hold)))
}

/// Lift a hold.
#[utoipa::path(delete, path = "/api/v1/students/{student_id}/holds/{hold_id}", tag = "admin",
    params(("student_id" = Uuid, Path), ("hold_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = super::error::Problem)), security(("bearer" = [])))]
pub async fn remove_hold(
    State(state): State<AppState>,
    caller: Caller,
    Ids((student, hold)): Ids<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    admin(&caller)?;
    state.registration.remove_hold(student, hold).await?;
    Ok(StatusCode::NO_CONTENT)
}
