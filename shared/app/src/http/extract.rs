//! Request extractors whose failures are problem details: JSON bodies and operator keys.

use super::problem::Problem;
use crate::App;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bealert_core::operator::Operator;
use std::sync::Arc;

/// A request body that must be JSON (no content type is taken as JSON).
pub struct JsonBytes(pub Bytes);

impl FromRequest<Arc<App>> for JsonBytes {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &Arc<App>) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or("").trim().to_string();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "the body must be JSON: send Content-Type: application/json (got {essence:?})"
                    ),
                ));
            }
        }
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
                "the body is empty; send a JSON document",
            ));
        }
        Ok(JsonBytes(bytes))
    }
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
