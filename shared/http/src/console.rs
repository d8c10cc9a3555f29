//! The operator console: `/console` (one page, its script and styles,
//! Leaflet, the map's outlines) and the JSON routes it reads besides the
//! alert API (`/v1/operator`, `GET /v1/alerts`, `/v1/alerts/{id}/area`,
//! `/v1/messages:measure`). The page is static: the operator's key stays
//! in the browser's `sessionStorage` and goes with each API call as a
//! Bearer token (no cookies), so the page itself needs no sign-in.

use super::extract::{Authed, JsonBytes};
use super::problem::Problem;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bealert_app::App;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};

/// The console's files: name, type, content.
const FILES: [(&str, &str, &str); 6] = [
    (
        "",
        "text/html; charset=utf-8",
        include_str!("../static/console/console.html"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/console/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../static/console/console.css"),
    ),
    (
        "leaflet.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/console/vendor/leaflet.js"),
    ),
    (
        "leaflet.css",
        "text/css; charset=utf-8",
        include_str!("../static/console/vendor/leaflet.css"),
    ),
    (
        "LICENSE-leaflet.txt",
        "text/plain; charset=utf-8",
        include_str!("../static/console/vendor/LICENSE-leaflet.txt"),
    ),
];

/// No third-party request unless a tile server is configured
/// (`BEALERT_CONSOLE_TILES`): then its origin is allowed for images.
fn csp(tiles: Option<&str>) -> String {
    let img = match tiles.and_then(origin) {
        Some(o) => format!("'self' data: {o}"),
        None => "'self' data:".into(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src {img}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// `https://tile.example:8443` of a tile URL template.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    (matches!(scheme, "http" | "https") && !host.is_empty() && !host.contains(['{', '}']))
        .then(|| format!("{scheme}://{host}"))
}

/// The console's page and files (no key): public routes, served apart from
/// the operators' API in the AWS home (the api-public function).
pub fn files() -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/outlines.geojson", get(outlines))
        .route("/console/{file}", get(file))
}

/// The JSON routes the console reads besides the alert API (a key each).
pub fn routes() -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route("/v1/operator", get(whoami))
        .route("/v1/alerts/{id}/area", get(area))
        .route("/v1/messages:measure", post(measure))
}

/// The page, with the configured tile server (if any) in its `data-tiles`.
async fn page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let tiles = app.config.console_tiles.as_deref();
    let html = FILES[0].2.replace(
        "data-tiles=\"\"",
        &format!(
            "data-tiles=\"{}\"",
            tiles.map(html_attr).unwrap_or_default()
        ),
    );
    let body = if tiles.is_none() {
        compressed(0)
    } else {
        Arc::new((gzip(html.as_bytes()), html.into_bytes()))
    };
    let mut res = send(
        app.config.compress_assets,
        &headers,
        FILES[0].1,
        &body,
        "no-cache",
    );
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp(tiles)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

fn html_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

async fn file(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let gzip = app.config.compress_assets;
    match FILES.iter().position(|(n, ..)| !n.is_empty() && *n == name) {
        Some(i) => send(
            gzip,
            &headers,
            FILES[i].1,
            &compressed(i),
            "public, max-age=3600",
        ),
        None => Problem::new(
            StatusCode::NOT_FOUND,
            format!("the console has no file {name:?}; open /console"),
        )
        .into_response(),
    }
}

async fn outlines(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Problem> {
    let json = app.outlines().await?;
    let gz = if app.config.compress_assets {
        gzip(&json)
    } else {
        Vec::new()
    };
    let body = Arc::new((gz, json.to_vec()));
    Ok(send(
        app.config.compress_assets,
        &headers,
        "application/geo+json",
        &body,
        "public, max-age=3600",
    ))
}

/// A file's bytes, gzip-compressed and plain.
type Body = Arc<(Vec<u8>, Vec<u8>)>;

/// Each file's (gzip, plain) bytes, made once.
fn compressed(i: usize) -> Body {
    static DONE: [OnceLock<Body>; FILES.len()] = [const { OnceLock::new() }; FILES.len()];
    DONE[i]
        .get_or_init(|| {
            let plain = FILES[i].2.as_bytes();
            Arc::new((gzip(plain), plain.to_vec()))
        })
        .clone()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

/// The gzip form when the browser takes it, else the plain one.
fn send(
    compress: bool,
    headers: &HeaderMap,
    content_type: &'static str,
    body: &Body,
    cache: &'static str,
) -> Response {
    let gz = compress
        && headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let bytes = if gz { body.0.clone() } else { body.1.clone() };
    let mut res = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::VARY, "Accept-Encoding"),
        ],
        bytes,
    )
        .into_response();
    if gz {
        res.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    res
}

async fn whoami(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
) -> Result<impl IntoResponse, Problem> {
    Ok(Json(app.operator_view(&op).await?))
}

/// `GET /v1/alerts[?state=]`.
pub(super) async fn list(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, Problem> {
    if let Some(k) = q.keys().find(|k| *k != "state") {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("unknown query parameter {k:?}; GET /v1/alerts takes only state"),
        ));
    }
    let items = app
        .list_alerts(&op, q.get("state").map(String::as_str))
        .await?;
    Ok(Json(serde_json::json!({ "items": items })))
}

async fn area(
    State(app): State<Arc<App>>,
    Authed(op): Authed,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let geojson = app.alert_area(&op, &id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        Json(geojson),
    )
        .into_response())
}

async fn measure(
    State(app): State<Arc<App>>,
    Authed(_op): Authed,
    JsonBytes(body): JsonBytes,
) -> Result<impl IntoResponse, Problem> {
    Ok(Json(app.measure_messages(&body)?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_configured_tile_server_is_allowed() {
        assert!(!super::csp(None).contains("http"));
        let c = super::csp(Some("https://tile.openstreetmap.org/{z}/{x}/{y}.png"));
        assert!(
            c.contains("img-src 'self' data: https://tile.openstreetmap.org;"),
            "{c}"
        );
        assert_eq!(super::origin("javascript:alert(1)"), None);
    }
}
