//! An SMS aggregator reached over HTTP: a second SMS route beside SNS (or
//! the outbox), with a configurable base URL and credentials.
//!
//! The contract (what bealert asks of an aggregator, and what
//! [`simulator`] serves):
//!
//! `POST {base}/messages` with `Authorization: Bearer <token>`,
//! `Idempotency-Key: <key>` and `{"to", "text", "language", "reference"}`;
//! * 200/201/202 `{"id": "..."}`: taken, under the aggregator's id (its
//!   delivery receipts name it);
//! * 409: this key was taken before (nothing sent again);
//! * 400/422 `{"error": "..."}`: refused for good (an invalid number, an
//!   opted-out recipient): the delivery fails with the reason;
//! * 429: throttled; 401/403/503 and a refused connection: certainly not
//!   taken, so the next provider may send it;
//! * any other answer, or none in time: it may have been sent; only this
//!   aggregator is asked again (with the same key).
//!
//! Its delivery receipts come back to `POST /v1/receipts/{name}` (see
//! [`bealert_core::receipt::from_webhook`]), with the token bealert gave it
//! (`BEALERT_RECEIPT_TOKEN_<NAME>`).

use async_trait::async_trait;
use bealert_app::ports::{Gateway, GatewayError, OutboundMessage, Sent};
use futures::StreamExt;
use std::time::Duration;

/// Requests in flight at once per batch.
const PARALLEL: usize = 16;

pub struct HttpSms {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl HttpSms {
    /// An aggregator at `base`: `https` to a public address
    /// ([`crate::endpoint`]); `http` and local addresses only under the
    /// development switch in the environment (`BEALERT_ALLOW_PRIVATE_ENDPOINTS`).
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> Result<Self, String> {
        Self::with_private_endpoints(
            base,
            token,
            timeout,
            crate::endpoint::private_allowed_by_env(),
        )
    }

    /// As [`Self::new`], the development switch given.
    pub fn with_private_endpoints(
        base: &str,
        token: Option<String>,
        timeout: Duration,
        allow_private: bool,
    ) -> Result<Self, String> {
        crate::endpoint::check_url(base, allow_private)
            .map_err(|e| format!("SMS aggregator URL: {e}"))?;
        let client = crate::endpoint::builder(allow_private)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .build()
            .map_err(|e| format!("an HTTP client for {base}: {e}"))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            client,
        })
    }

    async fn send_one(&self, m: &OutboundMessage) -> Result<Sent, GatewayError> {
        if let Some(late) = m.too_late(bealert_app::now_ms()) {
            return Err(late);
        }
        let mut req = self
            .client
            .post(format!("{}/messages", self.base))
            .header("Idempotency-Key", &m.key)
            .json(&serde_json::json!({
                "to": m.to,
                "text": m.body(),
                "language": m.language,
                "reference": m.key,
            }));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            // Never connected: nothing can have been sent.
            Err(e) if e.is_connect() => {
                return Err(GatewayError::Refused(format!("{}: {e}", self.base)));
            }
            Err(e) => return Err(GatewayError::Retryable(format!("{}: {e}", self.base))),
        };
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        let said = |fallback: &str| {
            body.get("error").and_then(|e| e.as_str()).map_or_else(
                || format!("{status} {fallback}"),
                |e| format!("{status}: {e}"),
            )
        };
        match status {
            200..=202 => Ok(match body.get("id").and_then(|i| i.as_str()) {
                Some(id) => Sent::accepted_as(id),
                None => Sent::accepted(),
            }),
            409 => Ok(Sent::AlreadySent),
            400 | 422 => Err(GatewayError::Permanent(said("refused"))),
            429 => Err(GatewayError::Throttled(said("too many requests"))),
            401 | 403 | 503 => Err(GatewayError::Refused(said("not taken"))),
            _ => Err(GatewayError::Retryable(said("unexpected answer"))),
        }
    }
}

#[async_trait]
impl Gateway for HttpSms {
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        // Owned messages: a stream of borrowed ones trips the compiler's
        // Send check across async_trait (higher-ranked lifetimes).
        futures::stream::iter(messages.to_vec())
            .map(|m| async move { self.send_one(&m).await })
            .buffered(PARALLEL)
            .collect()
            .await
    }
}

/// A message an aggregator simulator took.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Taken {
    pub id: String,
    pub to: String,
    pub text: String,
    pub key: String,
}

/// The state of an aggregator simulator: what it took, and whether it is up.
#[derive(Clone, Default)]
pub struct Simulator {
    inner: std::sync::Arc<std::sync::Mutex<SimState>>,
}

#[derive(Default)]
struct SimState {
    taken: Vec<Taken>,
    down: bool,
    token: Option<String>,
    /// Where receipts go (bealert's webhook URL) and the token they carry.
    receipts: Option<(String, String)>,
    /// Numbers the simulated network reports as not existing, or opted out.
    fates: std::collections::HashMap<String, &'static str>,
}

impl Simulator {
    /// One that asks for this bearer token (none: any request is taken).
    pub fn with_token(token: Option<&str>) -> Self {
        let s = Self::default();
        s.lock().token = token.map(str::to_string);
        s
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn taken(&self) -> Vec<Taken> {
        self.lock().taken.clone()
    }

    /// Posts a delivery receipt for every message taken to `url` (bealert's
    /// `/v1/receipts/{name}`), with `token` as its bearer token.
    pub fn send_receipts_to(&self, url: &str, token: &str) {
        self.lock().receipts = Some((url.to_string(), token.to_string()));
    }

    /// The receipt a number's messages get: `undeliverable` or `opted_out`
    /// (every other number's are `delivered`).
    pub fn set_fate(&self, number: &str, status: &'static str) {
        self.lock().fates.insert(number.to_string(), status);
    }

    /// While down it answers 503 to everything.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }
}

/// An aggregator as [`HttpSms`] expects one, for tests and demos: numbers
/// that do not start with `+` are refused for good.
#[cfg(feature = "routers")]
pub fn simulator(sim: Simulator) -> axum::Router {
    use axum::Json;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    async fn take(
        State(sim): State<Simulator>,
        headers: HeaderMap,
        Json(body): Json<serde_json::Value>,
    ) -> (StatusCode, Json<serde_json::Value>) {
        let mut s = sim.lock();
        if s.down {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": "down for maintenance"})),
            );
        }
        if let Some(t) = &s.token {
            let given = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if given != Some(t.as_str()) {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(serde_json::json!({"error": "unknown token"})),
                );
            }
        }
        let field = |k: &str| body.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if key.is_empty() || s.taken.iter().any(|t| t.key == key) {
            return (
                StatusCode::CONFLICT,
                Json(serde_json::json!({"error": "this key was taken before"})),
            );
        }
        if !field("to").starts_with('+') {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json::json!({"error": "not an international number"})),
            );
        }
        let id = format!("agg-{}", s.taken.len() + 1);
        s.taken.push(Taken {
            id: id.clone(),
            to: field("to").to_string(),
            text: field("text").to_string(),
            key,
        });
        if let Some((url, token)) = s.receipts.clone() {
            let status = s.fates.get(field("to")).copied().unwrap_or("delivered");
            let receipt = serde_json::json!({"id": id, "status": status});
            // As a network would: a moment after the answer, not in it.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let client = reqwest::Client::new();
                for _ in 0..5 {
                    let sent = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&receipt)
                        .send()
                        .await;
                    if sent.is_ok_and(|r| r.status().is_success()) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                tracing::warn!(%url, "simulator: a receipt was not taken");
            });
        }
        (StatusCode::ACCEPTED, Json(serde_json::json!({"id": id})))
    }

    axum::Router::new()
        .route("/messages", post(take))
        .with_state(sim)
}
