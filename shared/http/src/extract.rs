//! Request extractors whose failures are problem details: JSON bodies and operator keys.

use super::problem::Problem;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bealert_app::App;
use bealert_core::operator::Operator;
use std::sync::Arc;

/// A request body that must be JSON (no content type is taken as JSON).
pub struct JsonBytes(pub Bytes);

fn essence(req: &Request) -> Option<String> {
    req.headers().get(header::CONTENT_TYPE).map(|ct| {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        ct.split(';').next().unwrap_or("").trim().to_string()
    })
}

fn is_json(essence: &str) -> bool {
    essence == "application/json" || essence.ends_with("+json")
}

/// The body, not empty; too large is a 413 that says the limit.
async fn read_body(req: Request, state: &Arc<App>, what: &str) -> Result<Bytes, Problem> {
    let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(inner)
            if inner.status() == StatusCode::PAYLOAD_TOO_LARGE =>
        {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is larger than this route accepts (1 MiB; imports 64 MiB; network cells 128 MiB): send less per request",
            )
        }
        other => Problem::new(other.status(), format!("could not read the body: {other}")),
    })?;
    if bytes.is_empty() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is empty; send {what}"),
        ));
    }
    Ok(bytes)
}

impl FromRequest<Arc<App>> for JsonBytes {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &Arc<App>) -> Result<Self, Self::Rejection> {
        if let Some(essence) = essence(&req)
            && !is_json(&essence)
        {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "the body must be JSON: send Content-Type: application/json (got {essence:?})"
                ),
            ));
        }
        Ok(JsonBytes(read_body(req, state, "a JSON document").await?))
    }
}

/// An alert as JSON, or as a CAP 1.2 message (`application/cap+xml`).
pub enum AlertBody {
    Json(Bytes),
    Cap(Bytes),
}

impl FromRequest<Arc<App>> for AlertBody {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &Arc<App>) -> Result<Self, Self::Rejection> {
        match essence(&req) {
            None => Ok(AlertBody::Json(
                read_body(req, state, "a JSON document").await?,
            )),
            Some(e) if is_json(&e) => Ok(AlertBody::Json(
                read_body(req, state, "a JSON document").await?,
            )),
            Some(e) if e == "application/cap+xml" || e == "application/xml" || e == "text/xml" => {
                Ok(AlertBody::Cap(
                    read_body(req, state, "a CAP 1.2 message").await?,
                ))
            }
            Some(e) => Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "an alert is JSON (send Content-Type: application/json) or CAP 1.2 (Content-Type: application/cap+xml), not {e:?}"
                ),
            )),
        }
    }
}

/// Who sent a request, for the audit log: `http <address> <user agent>`
/// (each part cut to 120 characters). The address is the one the request
/// limiter decided on: the peer, or what a trusted proxy forwarded. Without
/// one (a Lambda behind API Gateway) it is the last `X-Forwarded-For`
/// entry, the one API Gateway itself appends; never the first, which the
/// caller writes.
pub struct Client(pub String);

impl FromRequestParts<Arc<App>> for Client {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        _app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client(client_of(
            &parts.headers,
            parts
                .extensions
                .get::<super::limit::ClientIp>()
                .map(|c| c.0),
        )))
    }
}

fn client_of(headers: &axum::http::HeaderMap, decided: Option<std::net::IpAddr>) -> String {
    let cut = |v: &str| -> String { v.trim().chars().take(120).collect() };
    let address = match decided {
        Some(ip) => ip.to_string(),
        None => headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').map(str::trim).find(|a| !a.is_empty()))
            .map_or_else(|| "-".to_string(), cut),
    };
    let agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .map_or_else(|| "-".to_string(), cut);
    format!("http {address} {agent}")
}

/// The operator behind `Authorization: Bearer <key>`.
pub struct Authed(pub Operator);

impl FromRequestParts<Arc<App>> for Authed {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        app.authenticate(header)
            .await
            .map(Authed)
            .map_err(Problem::from)
    }
}

#[cfg(test)]
mod client_tests {
    use super::*;

    #[test]
    fn the_audit_names_the_address_the_limiter_decided_not_what_the_caller_wrote() {
        let mut h = axum::http::HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        h.insert("user-agent", "curl/8".parse().unwrap());
        let decided = Some(std::net::IpAddr::from([198, 51, 100, 7]));
        assert_eq!(client_of(&h, decided), "http 198.51.100.7 curl/8");
        // Behind API Gateway: the entry it appended, not the spoofable first.
        assert_eq!(client_of(&h, None), "http 203.0.113.9 curl/8");
        assert_eq!(client_of(&axum::http::HeaderMap::new(), None), "http - -");
    }
}
