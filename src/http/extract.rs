//! Extractors that turn every kind of bad input into a problem+json 4xx: malformed or
//! oversized JSON, wrong types, bad UUIDs in paths, bad query strings, missing or forged
//! tokens. Handlers only ever see validated input.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use crate::resources::Role;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// A JSON object body; any failure is `400 invalid_body` (`413 payload_too_large` when
/// oversized). Every body of the API is an object, and serde would otherwise also read a
/// struct from an array of its fields in order (`[60]` as `{"capacity": 60}`).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::invalid_body("the body must be a JSON object"));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

/// A JSON object body that may be left out: no body at all (whatever the content type), or
/// `null`, is `None`; anything else is read as [`ApiJson`] reads it, with the same
/// refusals.
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|rejection| {
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
                    } else {
                        ApiError::invalid_body(rejection.body_text())
                    }
                })?;
        // No body, or JSON's `null`: nothing asked. Only JSON's own whitespace counts as
        // none (a form feed is ASCII whitespace but not JSON's, so it is a bad body).
        if trim_json_whitespace(&bytes).is_empty() || trim_json_whitespace(&bytes) == b"null" {
            return Ok(OptionalJson(None));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        let ApiJson(v) = ApiJson::from_request(req, state).await?;
        Ok(OptionalJson(Some(v)))
    }
}

/// `bytes` without the whitespace JSON allows around a value (space, tab, LF, CR).
fn trim_json_whitespace(bytes: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// A JSON object body kept as its text (the import reads it itself, to tell each record's
/// line); the same refusals as [`ApiJson`] before it is read: `400 invalid_body` without a
/// JSON content type, not UTF-8 or not an object, `413 payload_too_large` when oversized.
pub struct JsonText(pub String);

impl<S: Send + Sync> FromRequest<S> for JsonText {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::invalid_body("the body is not UTF-8"))?;
        if text.trim_start().as_bytes().first() != Some(&b'{') {
            return Err(ApiError::invalid_body("the body must be a JSON object"));
        }
        Ok(JsonText(text))
    }
}

/// The bytes of a body sent as JSON (by its content type), within the body limit.
async fn json_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    if !json_content_type(req.headers()) {
        return Err(ApiError::invalid_body(
            "expected a JSON body with Content-Type: application/json",
        ));
    }
    let bytes = axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
            } else {
                ApiError::invalid_body(rejection.body_text())
            }
        })?;
    Ok(bytes)
}

/// `application/json` or an `application/...+json` type, parameters aside.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_problem(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large");
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::invalid_body("expected a JSON body with Content-Type: application/json")
        }
        other => ApiError::invalid_body(other.body_text()),
    }
}

/// Path parameters that are UUIDs; anything else is `400 invalid_id`.
pub struct Ids<T>(pub T);

impl<S: Send + Sync> FromRequestParts<S> for Ids<Uuid> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(path_problem)?;
        Ok(Ids(parse_id(&raw)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ids<(Uuid, Uuid)> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path((a, b)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(path_problem)?;
        Ok(Ids((parse_id(&a)?, parse_id(&b)?)))
    }
}

fn path_problem(rejection: PathRejection) -> ApiError {
    ApiError::invalid_id(rejection.body_text())
}

/// Parse a UUID from a path or body, as `400 invalid_id`.
pub fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::invalid_id(format!("`{}` is not a UUID", truncate(raw))))
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A query string; failures are `400 invalid_query`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r: QueryRejection| ApiError::new(ErrorCode::InvalidQuery, r.body_text()))
    }
}

/// The client's address: the TCP peer of the connection (behind a reverse proxy or load
/// balancer, that is the proxy's address). `None` when the server runs without connection
/// info (a router driven directly, as in some tests).
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// The authenticated caller, from `Authorization: Bearer <jwt>`.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// Account id.
    pub id: Uuid,
    /// Role.
    pub role: Role,
}

impl Caller {
    /// Fail with `403 forbidden` unless the caller has `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role == role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {} role",
                role.as_str()
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // Verified once per request: the forwarding layer may have done it already.
        let claims = match parts.extensions.get::<crate::service::auth::Claims>() {
            Some(claims) => claims.clone(),
            None => bearer_claims(&AppState::from_ref(state), &parts.headers)?,
        };
        Ok(Caller {
            id: claims.sub,
            role: claims.role,
        })
    }
}

/// The verified claims of the request's `Authorization: Bearer <jwt>`; `401
/// unauthenticated` when it is missing, malformed, forged or expired.
pub fn bearer_claims(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<crate::service::auth::Claims, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer token"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .ok_or_else(|| {
            ApiError::unauthenticated("the Authorization header must be `Bearer <token>`")
        })?;
    state
        .tokens
        .verify(token.trim())
        .map_err(|_| ApiError::unauthenticated("the token is invalid or expired"))
}
