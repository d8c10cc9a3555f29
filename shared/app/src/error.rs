//! Errors of the use cases, each mapping to one HTTP status.

use crate::ports::{QueueError, StoreError};
use bealert_core::ValidationErrors;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input is well-formed JSON but breaks a rule (422).
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The input cannot be read at all (400).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// A limit of the caller's (429).
    #[error("{0}")]
    TooManyRequests(String),
    /// A dependency is down; try again (503). Its text names internals
    /// (tables, ARNs), so callers get a generic answer and a request id.
    #[error("{0}")]
    Unavailable(String),
    /// A 503 whose reason is the caller's to read: a part this home does not
    /// offer (Alert-SMS, public channels), a message that could not leave
    /// just now. Its text is shown as it is.
    #[error("{0}")]
    NotNow(String),
    #[error("{0}")]
    Internal(String),
}

impl From<ValidationErrors> for AppError {
    fn from(e: ValidationErrors) -> Self {
        AppError::Invalid(e)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => AppError::Conflict(m),
            StoreError::Transient(m) | StoreError::Busy(m) => {
                AppError::Unavailable(format!("storage is busy: {m}"))
            }
            StoreError::Permanent(m) => AppError::Internal(format!("storage error: {m}")),
        }
    }
}

impl From<QueueError> for AppError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Transient(_) => AppError::Unavailable(e.to_string()),
            QueueError::Permanent(_) => AppError::Internal(e.to_string()),
        }
    }
}

/// Parses a JSON request body: broken JSON is a 400 that says where it
/// broke; JSON of the wrong shape is a 422 that names the field.
pub fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        use serde_json::error::Category;
        match e.inner().classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                AppError::BadRequest(format!("the body is not valid JSON: {}", e.inner()))
            }
            Category::Data => AppError::Invalid(ValidationErrors::from_json(e)),
        }
    })
}
