//! The browser pages, built by Vite into `REGISTRAR_WEB_DIR` (`web/dist`): the student
//! page at `/`, the operator console at `/console`, the API docs at `/docs`. Hashed assets
//! (`/assets/...`) are cached for a year; the HTML is revalidated on every load, so a new
//! build is picked up at once. Any other `GET` from a browser (an HTML `Accept`) outside
//! `/api/` gets the app's `index.html`, whose router shows the page or sends it home. When
//! the pages are not built, a browser gets a page saying how to build them and an API
//! client gets 503 `web_not_built`, instead of a bare 404.
//!
//! The pages keep a bearer token in sessionStorage, so [`security_headers`] puts a strict
//! Content Security Policy (and no sniffing, no referrer, no framing) on every answer:
//! only this origin's script files run, never inline script or a script from elsewhere.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::path::{Path, PathBuf};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// How long browsers keep a hashed asset: its name changes when its content does.
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

/// The Content Security Policy of every answer. The built pages have no inline script or
/// style (Vite emits files); Swagger UI's stylesheet draws its icons as `data:` images,
/// and its validator badge (an image from elsewhere) is switched off in `web/src/docs.ts`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// `router` with the security headers (see module docs) on every answer that does not set
/// them itself: the pages, the assets, the API's answers and its problems alike.
pub fn security_headers(router: Router) -> Router {
    let set = |name, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
}

/// Routes of the pages; `dir` is the build output.
pub fn router(dir: &str) -> Router<AppState> {
    let assets = ServeDir::new(Path::new(dir).join("assets"));
    Router::new()
        .route("/", get(app_page))
        .route("/console", get(app_page))
        .route("/console/{*rest}", get(app_page))
        .route("/docs", get(docs_page))
        .nest_service("/assets", assets)
        .layer(axum::middleware::map_response(cache_assets))
}

/// Long caching for what `/assets` found; the pages say `no-cache` themselves.
async fn cache_assets(mut response: Response) -> Response {
    let is_asset_hit = response.status() == StatusCode::OK
        && !response.headers().contains_key(header::CACHE_CONTROL);
    if is_asset_hit {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(ASSET_CACHE));
    }
    response
}

async fn app_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state.settings.http.web_dir, "index.html", &headers).await
}

async fn docs_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state.settings.http.web_dir, "docs.html", &headers).await
}

/// One HTML page of the build, read per request (small, and a rebuild needs no restart).
async fn page(dir: &str, name: &str, headers: &HeaderMap) -> Response {
    let path: PathBuf = Path::new(dir).join(name);
    match tokio::fs::read(&path).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        Err(_) if wants_html(headers) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CACHE_CONTROL, "no-store")],
            Html(not_built_page(dir)),
        )
            .into_response(),
        Err(_) => ApiError::new(
            ErrorCode::WebNotBuilt,
            format!(
                "the browser pages are not built in {dir}: run `npm ci && npm run build` in web/"
            ),
        )
        .into_response(),
    }
}

/// The single-page app for a browser's `GET` of a path no route serves; `None` otherwise.
pub async fn fallback(
    state: &AppState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    let browser_get = method == Method::GET
        && wants_html(headers)
        && !path.starts_with("/api/")
        && !path.starts_with("/internal/");
    if !browser_get {
        return None;
    }
    Some(page(&state.settings.http.web_dir, "index.html", headers).await)
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn not_built_page(dir: &str) -> String {
    let dir = dir
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>registrar: pages not built</title></head>\
<body>\
<h1>The browser pages are not built</h1>\
<p>This node serves the student page, the operator console and the API docs from <code>{dir}</code>, which has no build.</p>\
<p>Build them with <code>deploy/local/web.sh</code> (or <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>) and reload; \
<code>deploy/local/up.sh</code> does it for you. Set <code>REGISTRAR_WEB_DIR</code> if the build lives elsewhere.</p>\
<p>The API works without them: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p></body></html>"
    )
}
