//! `POST /api/v1/auth/login`: username + password → bearer token with the account's role.
//! Every attempt passes the node's [`LoginGuard`](crate::service::login_guard::LoginGuard)
//! first (failure allowances per username and client address, bounded hashing), and an
//! unknown username is verified against a dummy hash with the account parameters, so it
//! costs what a wrong password costs. A student's token comes with `X-Registrar-Home`,
//! the address of the student's home node (see [`super::forward`]).

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ClientAddr};
use crate::resources::{Role, is_username};
use crate::service::auth::{dummy_hash, verify_password};
use crate::store::students;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Login body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username, e.g. `s000001`.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A bearer token.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/auth/login", post(login))
}

/// Log in.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = super::error::Problem), (status = 400, body = super::error::Problem),
        (status = 429, body = super::error::Problem), (status = 503, body = super::error::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    // No account has such a name or password (and a NUL must not reach PostgreSQL).
    if !is_username(&body.username) || body.password.chars().count() > 256 {
        return Err(ApiError::unauthenticated("wrong username or password"));
    }
    let guard = &state.login_guard;
    guard.check(&body.username, address)?;
    let account = students::credentials(&state.pool, &body.username).await?;
    let slot = guard.slot().await?;
    let attempt = guard.attempt(&body.username, address)?;
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    let password = body.password;
    // The slot moves into the blocking task: it stays taken until the hash is done, even
    // if this request is abandoned meanwhile.
    let ok = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let hash = match &hash {
            Some(hash) => hash.as_str(),
            None => dummy_hash(),
        };
        verify_password(&password, hash)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let account = account
        .filter(|_| ok)
        .ok_or_else(|| ApiError::unauthenticated("wrong username or password"))?;
    attempt.succeeded();
    let (access_token, expires_in) = state.tokens.issue(account.id, account.role);
    let mut answer = Json(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in,
    })
    .into_response();
    // A student learns where its home node is (see `forward`'s module docs).
    if account.role == Role::Student
        && let Some(hint) = super::forward::home_hint(&state, account.id)
    {
        answer
            .headers_mut()
            .insert(super::forward::HOME_HEADER, hint);
    }
    Ok(answer)
}
