//! A mobile network's alerting API over HTTP with JSON: the production
//! adapter of [`NetworkGateway`], configured per network with a base URL
//! and a bearer token.
//!
//! * `POST {base}/broadcasts` with a [`BroadcastMessage`] → 200 and a
//!   [`NetworkReport`]; the network answers a repeated `key` with the
//!   report it already has (nothing is sent twice).
//! * `POST {base}/broadcasts/{key}/follow-ups` with a [`FollowUpMessage`]
//!   (same audience as the message `key`) → 200 and a report.
//!
//! 429 is a throttle, 408 and 5xx and a broken connection are temporary,
//! any other 4xx is a refusal (its `error` text kept as the reason).

use async_trait::async_trait;
use bealert_app::ports::{BroadcastMessage, FollowUpMessage, GatewayError, NetworkGateway};
use bealert_core::broadcast::NetworkReport;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct HttpNetworkGateway {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl HttpNetworkGateway {
    /// `base` without a trailing slash (`https://lbsms.example.net/v1`):
    /// `https` to a public address ([`crate::endpoint`]); `http` and local
    /// addresses only under the development switch in the environment
    /// (`BEALERT_ALLOW_PRIVATE_ENDPOINTS`).
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
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "network gateway URL {base:?} must start with https://"
            ));
        }
        if base.starts_with("https://") && !cfg!(feature = "tls") {
            return Err(format!(
                "network gateway URL {base:?} needs TLS, which this build leaves out: \
                 build with --features aws (or bealert-providers' tls)"
            ));
        }
        // The URL's own host now; what a name resolves to at each connection.
        crate::endpoint::check_url(base, allow_private)
            .map_err(|e| format!("network gateway URL: {e}"))?;
        let client = crate::endpoint::client(timeout, allow_private)?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    async fn post<T: serde::Serialize + Sync>(
        &self,
        url: String,
        body: &T,
    ) -> Result<NetworkReport, GatewayError> {
        let mut req = self.client.post(&url).json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| GatewayError::Retryable(format!("{url}: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return resp
                .json::<NetworkReport>()
                .await
                .map_err(|e| GatewayError::Retryable(format!("{url}: unreadable report: {e}")));
        }
        let text = resp.text().await.unwrap_or_default();
        Err(refusal(&url, status.as_u16(), &text, ""))
    }
}

/// What an endpoint's error answer means: 429 a throttle, 408 and 5xx
/// temporary, any other status a refusal; the reason is the answer's
/// `error` text (or its body), then `hint`.
pub(crate) fn refusal(url: &str, status: u16, body: &str, hint: &str) -> GatewayError {
    let why = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.to_string());
    let why = format!("{url} answered {status}: {why}{hint}");
    match status {
        429 => GatewayError::Throttled(why),
        408 | 500.. => GatewayError::Retryable(why),
        _ => GatewayError::Permanent(why),
    }
}

#[async_trait]
impl NetworkGateway for HttpNetworkGateway {
    async fn broadcast(&self, m: &BroadcastMessage) -> Result<NetworkReport, GatewayError> {
        if let Some(e) = m.too_late(bealert_app::now_ms()) {
            return Err(e);
        }
        self.post(format!("{}/broadcasts", self.base), m).await
    }

    async fn follow_up(&self, m: &FollowUpMessage) -> Result<NetworkReport, GatewayError> {
        self.post(
            format!("{}/broadcasts/{}/follow-ups", self.base, m.references),
            m,
        )
        .await
    }
}

/// Each network's gateway: an HTTP one where configured, otherwise the
/// fallback (the simulator in the embedded home).
pub struct GatewayRoutes {
    pub http: std::collections::HashMap<String, Arc<dyn NetworkGateway>>,
    pub fallback: Arc<dyn bealert_app::ports::NetworkGateways>,
}

impl bealert_app::ports::NetworkGateways for GatewayRoutes {
    fn gateway(&self, network: &str) -> Arc<dyn NetworkGateway> {
        self.http
            .get(network)
            .cloned()
            .unwrap_or_else(|| self.fallback.gateway(network))
    }
}

/// Parses `NAME=URL` (a network's gateway), the token taken from the
/// environment variable `BEALERT_NETWORK_TOKEN_<NAME>` if set.
pub fn parse_gateway(
    spec: &str,
    timeout: Duration,
) -> Result<(String, HttpNetworkGateway), String> {
    let (name, url) = spec.split_once('=').ok_or_else(|| {
        format!("network gateway {spec:?}: write NAME=URL, e.g. proximus=https://lbsms.example/v1")
    })?;
    bealert_core::network::validate_network_name(name)?;
    let var = format!(
        "BEALERT_NETWORK_TOKEN_{}",
        name.to_ascii_uppercase().replace('-', "_")
    );
    let token = std::env::var(var).ok().filter(|t| !t.is_empty());
    Ok((
        name.to_string(),
        HttpNetworkGateway::new(url, token, timeout)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netsim::NetworkSimulator;
    use bealert_app::ports::BroadcastCell;
    use bealert_core::AlertId;
    use bealert_core::broadcast::BroadcastMode;

    #[tokio::test]
    async fn the_http_adapter_speaks_to_a_network_api_and_maps_its_errors() {
        let sim = NetworkSimulator::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = crate::netsim::router(sim.clone());
        tokio::spawn(async move { axum::serve(listener, server).await });
        // Local addresses and http are for development only.
        let e = HttpNetworkGateway::with_private_endpoints(
            &format!("http://{addr}/"),
            None,
            Duration::from_secs(5),
            false,
        )
        .err()
        .unwrap();
        assert!(e.contains("https://"), "{e}");
        for refused in [
            "https://127.0.0.1/v1",
            "https://169.254.169.254/",
            "https://[fd00::1]/",
        ] {
            assert!(
                HttpNetworkGateway::with_private_endpoints(
                    refused,
                    None,
                    Duration::from_secs(1),
                    false
                )
                .is_err(),
                "{refused}"
            );
        }
        let gw = HttpNetworkGateway::with_private_endpoints(
            &format!("http://{addr}/"),
            Some("t0ken".into()),
            Duration::from_secs(5),
            true,
        )
        .unwrap();
        let m = BroadcastMessage {
            key: "a1:network:proximus".into(),
            alert_id: AlertId::new(),
            network: "proximus".into(),
            mode: BroadcastMode::CellBroadcast,
            cells: vec![BroadcastCell {
                cell_id: "c1".into(),
                active_devices: 42,
            }],
            texts: [(bealert_core::Language::Nl, "Sluit ramen".to_string())].into(),
            message_identifier: 4371,
            additional_language_identifier: 4384,
            repetition_period_s: 60,
            not_after: i64::MAX,
        };
        let r = gw.broadcast(&m).await.unwrap();
        assert_eq!((r.cells, r.requested, r.delivered), (1, 42, 42));
        assert_eq!(sim.report(&m.key), Some(r));
        let f = FollowUpMessage {
            key: "a2:network:proximus".into(),
            references: m.key.clone(),
            network: "proximus".into(),
            texts: Default::default(),
            message_identifier: 4371,
        };
        assert_eq!(gw.follow_up(&f).await.unwrap().requested, 42);
        sim.set("proximus", "down".parse().unwrap());
        let m2 = BroadcastMessage {
            key: "other".into(),
            ..m.clone()
        };
        assert!(matches!(
            gw.broadcast(&m2).await,
            Err(GatewayError::Retryable(_))
        ));
        sim.set("proximus", "refuse".parse().unwrap());
        match gw.broadcast(&m2).await {
            Err(GatewayError::Permanent(why)) => assert!(why.contains("refused"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Nobody listening: temporary.
        let gone = HttpNetworkGateway::with_private_endpoints(
            "http://127.0.0.1:9",
            None,
            Duration::from_secs(2),
            true,
        )
        .unwrap();
        assert!(matches!(
            gone.broadcast(&m2).await,
            Err(GatewayError::Retryable(_))
        ));
        assert!(HttpNetworkGateway::new("ftp://x", None, Duration::from_secs(1)).is_err());
    }
}
