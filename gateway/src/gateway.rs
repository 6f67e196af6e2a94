//! The app gateway: the relay's stream plus one web page and the JSON endpoints it calls
//! (docs/dashboard.md). Security choices, each enforced here for every response:
//! - Content-Security-Policy: only this origin's own files run; no inline script, no other host,
//!   no framing. The page is plain files embedded in the binary, nothing is built or fetched.
//! - CSRF: cookies are SameSite=Strict, and every state-changing request must be a JSON POST
//!   carrying `X-Requested-With: health-rls` — a header another site cannot send without a CORS
//!   preflight, which this gateway never grants — from this origin (Origin / Sec-Fetch-Site).
//! - Sessions: HttpOnly cookies only (session.rs); the page's script never holds a token.
use crate::db::{json_response, Db};
use crate::relay::{self, Relay};
use crate::{api, session};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use std::sync::Arc;

pub struct Gateway {
    pub relay: Arc<Relay>,
    pub db: Db,
    /// The metric table, quoted for SQL, and as change events name it ("schema.table").
    pub table: String,
    pub table_name: String,
    /// Mark cookies Secure (set when the gateway is reached over TLS, e.g. behind a proxy).
    pub secure_cookies: bool,
    /// The Supabase-compatible APIs (`/auth/v1`), served when a publishable key is set.
    pub api: Option<crate::supabase::ApiConfig>,
    /// `/realtime/v1/websocket` over the relay.
    pub realtime: Arc<crate::realtime_v1::Realtime>,
    /// `/rest/v1`'s look-ups of tables in the catalog, kept for a second.
    pub relations: crate::rest_v1::RelationCache,
}

impl Gateway {
    /// `table` is "schema.name" or "name" (schema public), as given to health.create_metric_table.
    pub fn new(relay: Arc<Relay>, dsn: &str, table: &str, secure_cookies: bool) -> Arc<Gateway> {
        Gateway::with_api(relay, dsn, table, secure_cookies, None)
    }

    /// `new`, and the Supabase-compatible APIs when `api` is given.
    pub fn with_api(
        relay: Arc<Relay>,
        dsn: &str,
        table: &str,
        secure_cookies: bool,
        api: Option<crate::supabase::ApiConfig>,
    ) -> Arc<Gateway> {
        let (schema, name) = table.split_once('.').unwrap_or(("public", table));
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        Arc::new(Gateway {
            realtime: crate::realtime_v1::Realtime::new(relay.clone()),
            relations: crate::rest_v1::RelationCache::default(),
            relay,
            db: Db::new(dsn, 8),
            table: format!("{}.{}", quote(schema), quote(name)),
            table_name: format!("{schema}.{name}"),
            secure_cookies,
            api,
        })
    }
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page's files, embedded: what was reviewed is what is served.
const FILES: &[(&str, &str, &str)] = &[
    ("/", "text/html; charset=utf-8", include_str!("web/index.html")),
    ("/style.css", "text/css; charset=utf-8", include_str!("web/style.css")),
    ("/app.js", "text/javascript; charset=utf-8", include_str!("web/app.js")),
    ("/api.js", "text/javascript; charset=utf-8", include_str!("web/api.js")),
    ("/chart.js", "text/javascript; charset=utf-8", include_str!("web/chart.js")),
    ("/live.js", "text/javascript; charset=utf-8", include_str!("web/live.js")),
    ("/shares.js", "text/javascript; charset=utf-8", include_str!("web/shares.js")),
    ("/trends.js", "text/javascript; charset=utf-8", include_str!("web/trends.js")),
    ("/units.js", "text/javascript; charset=utf-8", include_str!("web/units.js")),
];

fn file(path: &'static str) -> axum::routing::MethodRouter<Arc<Gateway>> {
    let (_, kind, body) = FILES.iter().find(|f| f.0 == path).copied().expect("embedded file");
    get(move || async move { ([(header::CONTENT_TYPE, kind)], body) })
}

/// Every response: the CSP and the usual hardening headers; nothing is cached (tokens never
/// appear in bodies, but personal health data does).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Whether a state-changing request comes from this gateway's own page.
fn same_origin_json(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let json = value("content-type").is_some_and(|c| c.starts_with("application/json"));
    let marked = value("x-requested-with") == Some("health-rls");
    let site = value("sec-fetch-site").is_none_or(|s| s == "same-origin");
    // Browsers send Origin with every POST; it must name the host the request was sent to.
    let origin = match (value("origin"), value("host")) {
        (None, _) => true,
        (Some(o), Some(host)) => o.split_once("://").is_some_and(|(_, rest)| rest == host),
        (Some(_), None) => false,
    };
    json && marked && site && origin
}

async fn csrf_guard(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD && !same_origin_json(req.headers()) {
        let why = "This request was refused: changes are accepted only from the dashboard page itself.";
        return json_response(StatusCode::FORBIDDEN, &json!({"error": why, "code": "cross_site"}));
    }
    next.run(req).await
}

async fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({"error": "No such page.", "code": "not_found"})).into_response()
}

/// The page, its API, the cookie-authenticated stream, the relay's own `/events` (bearer token)
/// and `/healthz`, and — with a publishable key — the Supabase-compatible APIs (`supabase.rs`),
/// which take bearer tokens only and so are outside the page's CSRF guard.
pub fn router(g: Arc<Gateway>) -> Router {
    let page = page_router(g.clone());
    match g.api {
        Some(_) => crate::supabase::router(g).merge(page),
        None => page,
    }
    .layer(from_fn(security_headers))
}

fn page_router(g: Arc<Gateway>) -> Router {
    let mut r = Router::<Arc<Gateway>>::new();
    for (path, _, _) in FILES {
        r = r.route(path, file(path));
    }
    r.route("/api/me", get(api::me))
        .route("/api/dashboard", get(api::dashboard))
        .route("/api/samples", get(api::samples))
        .route("/api/kinds", get(api::kinds))
        .route("/api/summary", get(api::summary))
        .route("/api/stream", get(api::stream))
        .route("/api/shares", get(api::shares).post(api::share))
        .route("/api/shares/revoke", post(api::revoke))
        .route("/api/shared", post(api::shared))
        .route("/api/invitations", get(api::invitations).post(api::invite))
        .route("/api/invitations/accept", post(api::accept_invitation))
        .route("/api/invitations/decline", post(api::decline_invitation))
        .route("/api/invitations/revoke", post(api::revoke_invitation))
        .route("/api/access-log", get(api::access_log))
        .route("/api/session/signup", post(session::sign_up))
        .route("/api/session/signin", post(session::sign_in))
        .route("/api/session/refresh", post(session::refresh))
        .route("/api/session/signout", post(session::sign_out))
        .fallback(not_found)
        .with_state(g.clone())
        .merge(relay::router(g.relay.clone()))
        .layer(from_fn(csrf_guard))
}
