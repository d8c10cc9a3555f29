//! The public channels' outlets over HTTP: the production adapter of
//! [`PublicGateway`]. Each outlet has its own URL (and bearer token,
//! `BEALERT_OUTLET_TOKEN_<NAME>`); every request carries an
//! `Idempotency-Key`, so a retry after a timeout never posts, sounds or
//! shows a message twice.
//!
//! * social — `POST {url}` per language with JSON `{key, alert_id,
//!   language, text}` (the post, within the outlet's length) → 2xx,
//!   optionally `{"id": …}`: a generic webhook in front of Mastodon, X or a
//!   Facebook page;
//! * siren — `POST {url}` with JSON `{key, alert_id, group, tone, sirens}`
//!   → 2xx and `{"activated": n, "acknowledged": m}` (the controller's
//!   acknowledgements);
//! * sign — `POST {url}` with the CAP 1.2 message (`application/cap+xml`)
//!   → 2xx, optionally `{"displays": n}`.
//!
//! 429 is a throttle, 408 and 5xx and a broken connection are temporary,
//! any other 4xx is a refusal (its `error` text kept as the reason).

use async_trait::async_trait;
use bealert_app::ports::{GatewayError, PublicGateway, PublicMessage};
use bealert_core::broadcast::NetworkReport;
use bealert_core::outlet::OutletKind;
use std::time::Duration;

/// The environment variable holding an outlet's bearer token.
pub fn token_var(outlet: &str) -> String {
    format!(
        "BEALERT_OUTLET_TOKEN_{}",
        outlet.to_ascii_uppercase().replace('-', "_")
    )
}

/// Whether this build can reach an outlet's URL (`https://` needs TLS).
pub fn reachable(url: &str) -> Result<(), String> {
    if url.starts_with("https://") && !cfg!(feature = "tls") {
        return Err(format!(
            "{url:?} needs TLS, which this build leaves out: build with --features aws \
             (or bealert-providers' tls)"
        ));
    }
    Ok(())
}

/// Every outlet over HTTP; `sim` outlets go to the simulator, where the
/// home has one.
#[derive(Clone)]
pub struct HttpPublic {
    /// An error if no checked client could be built (never an unchecked one).
    client: Result<reqwest::Client, String>,
    sim: Option<crate::publicsim::PublicSimulator>,
    allow_private: bool,
}

impl HttpPublic {
    /// Outlets reached over checked connections
    /// ([`crate::endpoint`]); local ones only under the development switch
    /// in the environment (`BEALERT_ALLOW_PRIVATE_ENDPOINTS`).
    pub fn new(timeout: Duration, sim: Option<crate::publicsim::PublicSimulator>) -> Self {
        Self::with_private_endpoints(timeout, sim, crate::endpoint::private_allowed_by_env())
    }

    /// As [`Self::new`], the development switch given (`true`: `http://`
    /// and local addresses are reachable, for tests against emulators).
    pub fn with_private_endpoints(
        timeout: Duration,
        sim: Option<crate::publicsim::PublicSimulator>,
        allow_private: bool,
    ) -> Self {
        Self {
            client: crate::endpoint::client(timeout, allow_private),
            sim,
            allow_private,
        }
    }

    async fn post(
        &self,
        m: &PublicMessage,
        key: &str,
        body: reqwest::Body,
        content_type: &str,
    ) -> Result<serde_json::Value, GatewayError> {
        let url = &m.outlet.url;
        reachable(url).map_err(GatewayError::Permanent)?;
        // Checked again at every send: the URL's own host here, what its
        // name resolves to in the client's resolver.
        crate::endpoint::check_url(url, self.allow_private).map_err(GatewayError::Permanent)?;
        let client = self
            .client
            .as_ref()
            .map_err(|e| GatewayError::Retryable(e.clone()))?;
        let mut req = client
            .post(url)
            .header("Idempotency-Key", key)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Ok(t) = std::env::var(token_var(&m.outlet.name))
            && !t.is_empty()
        {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| GatewayError::Retryable(format!("{url}: {e}")))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null));
        }
        let hint = if matches!(status.as_u16(), 401 | 403) {
            format!(" (check the token in {})", token_var(&m.outlet.name))
        } else {
            String::new()
        };
        Err(crate::network_http::refusal(
            url,
            status.as_u16(),
            &text,
            &hint,
        ))
    }

    async fn publish_http(&self, m: &PublicMessage) -> Result<NetworkReport, GatewayError> {
        let count = |v: &serde_json::Value, field: &str| v.get(field).and_then(|n| n.as_u64());
        match m.outlet.kind {
            OutletKind::Social => {
                for p in &m.posts {
                    let key = format!("{}:{}", m.key, p.language.code());
                    let body = serde_json::json!({
                        "key": key, "alert_id": m.alert_id,
                        "language": p.language, "text": p.text,
                    });
                    self.post(m, &key, body.to_string().into(), "application/json")
                        .await?;
                }
                let n = m.posts.len() as u64;
                Ok(NetworkReport::reached(n))
            }
            OutletKind::Siren => {
                let tone = m.tone.ok_or_else(|| {
                    GatewayError::Permanent("a siren message without a tone".into())
                })?;
                let body = serde_json::json!({
                    "key": m.key, "alert_id": m.alert_id, "group": m.outlet.name,
                    "tone": tone, "sirens": m.outlet.sirens,
                });
                let v = self
                    .post(m, &m.key, body.to_string().into(), "application/json")
                    .await?;
                let activated = count(&v, "activated").unwrap_or(0);
                let acknowledged = count(&v, "acknowledged").unwrap_or(0);
                let sirens = u64::from(m.outlet.sirens.unwrap_or(0)).max(activated);
                Ok(NetworkReport::sirens(sirens, activated, acknowledged))
            }
            OutletKind::Sign => {
                let cap = m.cap.clone().ok_or_else(|| {
                    GatewayError::Permanent("a sign message without its CAP".into())
                })?;
                let v = self
                    .post(m, &m.key, cap.into(), "application/cap+xml")
                    .await?;
                let displays = count(&v, "displays").unwrap_or(1);
                Ok(NetworkReport::reached(displays))
            }
        }
    }
}

#[async_trait]
impl PublicGateway for HttpPublic {
    async fn reachable(&self, url: &str) -> Result<(), String> {
        reachable(url)?;
        crate::endpoint::vet(url, self.allow_private).await
    }

    async fn publish(&self, m: &PublicMessage) -> Result<NetworkReport, GatewayError> {
        if let Some(e) = m.too_late(bealert_app::now_ms()) {
            return Err(e);
        }
        if m.outlet.url == "sim" {
            return match &self.sim {
                Some(sim) => sim.publish(m).await,
                None => Err(GatewayError::Permanent(format!(
                    "outlet {} uses the simulator, which only the embedded home has; give it its real URL",
                    m.outlet.name
                ))),
            };
        }
        self.publish_http(m).await
    }
}
