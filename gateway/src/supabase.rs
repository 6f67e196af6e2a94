//! The Supabase-compatible APIs (docs/supabase-js.md): the publishable key every request must
//! carry, and CORS for browser apps on the origins given with `--cors-origin`. Served only when the
//! gateway has a publishable key; the dashboard's own cookie and CSRF rules are not touched (these
//! routes take no cookie: they answer bearer tokens only).
use crate::db::json_response;
use crate::gateway::Gateway;
use crate::{auth_v1, realtime_v1, rest_v1};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;
use std::sync::Arc;

/// How the Supabase-compatible APIs are served.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// The opaque key apps send in `apikey` (e.g. `sb_publishable_…`). It grants nothing by
    /// itself: without a user's bearer token a request runs as `anon`.
    pub publishable_key: String,
    /// Browser origins allowed to call the APIs (exact `scheme://host[:port]`); none by default.
    pub cors_origins: Vec<String>,
}

/// `/auth/v1`, `/rest/v1` and `/realtime/v1/websocket` behind the publishable key and CORS.
pub fn router(g: Arc<Gateway>) -> Router {
    auth_v1::routes()
        .merge(rest_v1::routes())
        .route("/realtime/v1/websocket", axum::routing::get(realtime_v1::websocket))
        .layer(from_fn_with_state(g.clone(), require_api_key))
        .layer(from_fn_with_state(g.clone(), cors))
        .with_state(g)
}

/// The request's `apikey` header, or its `apikey` query parameter (WebSockets cannot set headers).
fn api_key(req: &Request) -> Option<String> {
    if let Some(v) = req.headers().get("apikey").and_then(|v| v.to_str().ok()) {
        return Some(v.to_string());
    }
    req.uri().query()?.split('&').find_map(|kv| kv.strip_prefix("apikey=")).map(str::to_string)
}

/// 401 without the publishable key (Supabase's answer and wording).
async fn require_api_key(State(g): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let Some(config) = g.api.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match api_key(&req) {
        None => json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"message": "No API key found in request", "hint": "No `apikey` request header or url param was found."}),
        ),
        Some(k) if !constant_time_eq(k.as_bytes(), config.publishable_key.as_bytes()) => json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"message": "Invalid API key", "hint": "Double check the publishable key the app was given."}),
        ),
        Some(_) => next.run(req).await,
    }
}

/// Equal without revealing where the first difference is (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The allowed origin of a request, if it names one of `--cors-origin`.
fn allowed_origin<'a>(headers: &'a HeaderMap, config: Option<&crate::supabase::ApiConfig>) -> Option<&'a str> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    config?.cors_origins.iter().any(|o| o == origin).then_some(origin)
}

/// CORS: a preflight from an allowed origin is answered here (before the key check: browsers send
/// no custom header in it); every answer to an allowed origin says so. Other origins get no CORS
/// header at all, so their browsers keep the answer from the page.
async fn cors(State(g): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let origin = allowed_origin(req.headers(), g.api.as_ref()).map(str::to_string);
    if req.method() == Method::OPTIONS {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if let Some(o) = &origin {
            let h = resp.headers_mut();
            let requested = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_str(o).expect("an origin from a header"));
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, PATCH, PUT, DELETE, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                requested.unwrap_or(HeaderValue::from_static("authorization, apikey, content-type, x-client-info")),
            );
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        return resp;
    }
    let mut resp = next.run(req).await;
    if let Some(o) = origin {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_str(&o).expect("an origin from a header"));
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("content-range, x-supabase-api-version"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole() {
        assert!(constant_time_eq(b"sb_publishable_abc", b"sb_publishable_abc"));
        assert!(!constant_time_eq(b"sb_publishable_abc", b"sb_publishable_abd"));
        assert!(!constant_time_eq(b"sb_publishable_ab", b"sb_publishable_abc"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn only_listed_origins_are_allowed() {
        let config = ApiConfig { publishable_key: "k".into(), cors_origins: vec!["https://app.example".into()] };
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_static("https://app.example"));
        assert_eq!(allowed_origin(&h, Some(&config)), Some("https://app.example"));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert_eq!(allowed_origin(&h, Some(&config)), None);
        h.insert(header::ORIGIN, HeaderValue::from_static("https://app.example.evil"));
        assert_eq!(allowed_origin(&h, Some(&config)), None);
        assert_eq!(allowed_origin(&HeaderMap::new(), Some(&config)), None);
        assert_eq!(allowed_origin(&h, None), None);
    }
}
