//! Validation errors that tell the sender which field is wrong and how to fix it.

use std::fmt;

/// One problem with one field of an input, located by a dotted path
/// (`addresses[1].lat`, `area.circles[0].radius_km`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one input; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn single(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError {
            path: path.into(),
            message: message.into(),
        }])
    }

    /// Errors from deserialising JSON, located by the path serde reached.
    pub fn from_json(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        // serde_json appends " at line L column C", which is noise once we have a path.
        let inner = err.into_inner().to_string();
        let message = match inner.rfind(" at line ") {
            Some(i) => inner[..i].to_string(),
            None => inner,
        };
        Self::single(path, message)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects field errors while a validator walks an input.
#[derive(Debug, Default)]
pub struct Collector {
    errors: Vec<FieldError>,
}

impl Collector {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Adds an error only when there is none yet (a catch-all reason).
    pub fn push_if_empty(&mut self, path: impl Into<String>, message: impl Into<String>) {
        if self.errors.is_empty() {
            self.push(path, message);
        }
    }

    /// The errors so far (call when there is at least one).
    pub fn into_errors(self) -> ValidationErrors {
        ValidationErrors(self.errors)
    }

    pub fn extend(&mut self, other: ValidationErrors) {
        self.errors.extend(other.0);
    }

    /// `Ok(value)` when nothing was pushed, otherwise every error pushed.
    pub fn finish<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ValidationErrors(self.errors))
        }
    }
}

/// Parses JSON into `T`, reporting the path of the first mismatch.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ValidationErrors> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(ValidationErrors::from_json)
}

/// Converts an already-parsed JSON value into `T`, reporting the path of the first mismatch.
pub fn from_value<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
) -> Result<T, ValidationErrors> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ValidationErrors::single(path, e.into_inner().to_string())
    })
}

/// For optional fields: absent is `None`, but an explicit `null` is read as
/// the field's type would read it (so `"channels": null` is refused, as the
/// OpenAPI document says, instead of meaning "absent").
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}
