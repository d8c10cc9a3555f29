//! `Idempotency-Key` on `POST /v1/alerts` and its follow-ups
//! (draft-ietf-httpapi-idempotency-key-header): the same key from the same
//! person within 24 h returns the first answer and creates nothing new; the
//! same key with another request is a 422; a retry while the first is still
//! being answered is a 409. The rules live here; stores only claim.

use super::App;
use crate::AppError;
use crate::ports::StoredAnswer;
use bealert_core::ValidationErrors;
use bealert_core::operator::Operator;
use sha2::{Digest, Sha256};
use std::future::Future;

/// How long a key's first answer is kept.
pub const KEY_TTL_MS: i64 = 24 * 3600 * 1000;
/// The longest key accepted.
pub const MAX_KEY_CHARS: usize = 255;

/// A request's fingerprint: what must be equal for a key's reuse to be a retry.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

/// The header's value as a key: a structured-field string (`"…"`) or a
/// bare token, 1 to 255 visible ASCII characters.
pub fn parse_key(raw: &str) -> Result<String, AppError> {
    let raw = raw.trim();
    let key = raw
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(raw);
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_CHARS
        && key.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
    if ok {
        Ok(key.to_string())
    } else {
        Err(ValidationErrors::single(
            "Idempotency-Key",
            format!(
                "give 1 to {MAX_KEY_CHARS} visible ASCII characters, e.g. a UUID: Idempotency-Key: \"8e03978e-40d5-43e8-bc93-6894a57f9324\""
            ),
        )
        .into())
    }
}

impl App {
    /// Runs `request` once per person and key: a retry gets the stored
    /// answer (`true`: replayed). Without a key, it simply runs. A failed
    /// request keeps nothing, so its retry runs again.
    pub async fn idempotent<F, Fut>(
        &self,
        operator: &Operator,
        key: Option<&str>,
        fingerprint: &str,
        request: F,
    ) -> Result<(StoredAnswer, bool), AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<StoredAnswer, AppError>>,
    {
        let Some(key) = key else {
            return Ok((request().await?, false));
        };
        let key = parse_key(key)?;
        let scope = format!("{}/{}", operator.name, operator.user);
        let store = &self.ports.idempotency;
        let now = self.now_ms();
        if let Some(found) = store
            .claim_key(&scope, &key, fingerprint, now, now + KEY_TTL_MS)
            .await?
        {
            if found.fingerprint != fingerprint {
                return Err(ValidationErrors::single(
                    "Idempotency-Key",
                    "this key was used within 24 h for another request (another body or path); use a new key for a new request",
                )
                .into());
            }
            return match found.answer {
                Some(answer) => {
                    tracing::info!(operator = %operator.name, user = %operator.user, "idempotent retry answered from the first request");
                    Ok((answer, true))
                }
                None => Err(AppError::Conflict(
                    "a request with this Idempotency-Key is still being answered; retry in a moment"
                        .into(),
                )),
            };
        }
        match request().await {
            Ok(answer) => {
                store.complete_key(&scope, &key, &answer).await?;
                Ok((answer, false))
            }
            Err(e) => {
                if let Err(release) = store.release_key(&scope, &key).await {
                    tracing::warn!(error = %release, "an idempotency key stays claimed until it expires");
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_visible_ascii_quoted_or_not() {
        assert_eq!(parse_key("\"abc-1\"").unwrap(), "abc-1");
        assert_eq!(parse_key(" abc-1 ").unwrap(), "abc-1");
        for bad in ["", "\"\"", "a b", "é", &"x".repeat(256), "\"a\"b\""] {
            assert!(parse_key(bad).is_err(), "{bad:?}");
        }
        assert!(parse_key(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn the_fingerprint_tells_bodies_and_paths_apart() {
        let a = fingerprint("POST", "/v1/alerts", b"{}");
        assert_eq!(a, fingerprint("POST", "/v1/alerts", b"{}"));
        assert_ne!(a, fingerprint("POST", "/v1/alerts", b"{ }"));
        assert_ne!(a, fingerprint("POST", "/v1/alerts/x:cancel", b"{}"));
    }
}
