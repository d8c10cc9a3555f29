//! RFC 9457 problem details: every error answer of the API.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bealert_app::AppError;
use bealert_core::FieldError;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For server errors: the id under which the cause was logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            request_id: None,
        }
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        let status = match &e {
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::NotNow(m) => return Problem::new(StatusCode::SERVICE_UNAVAILABLE, m.clone()),
        };
        if status.is_server_error() {
            // The cause stays in the log; the answer carries only its id.
            let id = uuid::Uuid::now_v7().to_string();
            tracing::error!(request_id = %id, error = %e, "request failed");
            let detail = if status == StatusCode::SERVICE_UNAVAILABLE {
                format!(
                    "bealert cannot reach its storage or queues right now; try again shortly (request id {id})"
                )
            } else {
                format!("an internal error occurred; quote request id {id} when reporting it")
            };
            let mut p = Problem::new(status, detail);
            p.request_id = Some(id);
            return p;
        }
        let mut p = Problem::new(status, e.to_string());
        if let AppError::Invalid(v) = e {
            p.errors = v.0;
        }
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_carry_a_request_id_and_no_internal_text() {
        for e in [
            AppError::Internal("storage error: table bealert-prod-subscribers is gone".into()),
            AppError::Unavailable("ThrottlingException: arn:aws:dynamodb:eu-west-1:1234".into()),
        ] {
            let p = Problem::from(e);
            let body = serde_json::to_string(&p).unwrap_or_default();
            assert!(
                !body.contains("bealert-prod") && !body.contains("arn:aws"),
                "{body}"
            );
            let id = p.request_id.clone().unwrap_or_default();
            assert!(!id.is_empty() && p.detail.contains(&id), "{body}");
        }
    }

    #[test]
    fn client_errors_keep_their_detail() {
        let p = Problem::from(AppError::NotFound("no alert has id \"x\"".into()));
        assert_eq!(
            (p.status, p.detail.as_str(), p.request_id),
            (404, "no alert has id \"x\"", None)
        );
    }
}
