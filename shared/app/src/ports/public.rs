//! Public channels: what an outlet gets and its gateway.

use super::{Counters, GatewayError};
use async_trait::async_trait;
use bealert_core::AlertId;
use bealert_core::Language;
use std::sync::Arc;

/// What one public channel outlet gets for one alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PublicMessage {
    /// `alert:kind:name`: an outlet never publishes one key twice (each
    /// social post's key adds `:language`).
    pub key: String,
    pub alert_id: AlertId,
    pub outlet: bealert_core::outlet::Outlet,
    /// Social: one post per language, each within the outlet's length.
    pub posts: Vec<Post>,
    /// Siren: the tone to sound.
    pub tone: Option<bealert_core::outlet::Tone>,
    /// Sign: the CAP 1.2 message.
    pub cap: Option<String>,
    /// Unix ms after which the message must not be handed over.
    pub not_after: i64,
}

/// One social post.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Post {
    pub language: Language,
    pub text: String,
}

impl PublicMessage {
    /// What an outlet answers for a message whose claim may have run out.
    pub fn too_late(&self, now_ms: i64) -> Option<GatewayError> {
        (now_ms > self.not_after).then(|| {
            GatewayError::Retryable("not sent: the claim's lease ran out before its turn".into())
        })
    }
}

/// The public channels' outlets: a webhook per social account, a siren
/// controller, a sign network's CAP endpoint (HTTP), or the simulator.
/// The answer counts what was reached, in a network's terms
/// ([`bealert_core::broadcast::NetworkReport`]).
#[async_trait]
pub trait PublicGateway: Send + Sync {
    async fn publish(
        &self,
        message: &PublicMessage,
    ) -> Result<bealert_core::broadcast::NetworkReport, GatewayError>;

    /// Whether this gateway can and may reach an outlet's URL (an
    /// `https://` one needs a build with TLS; no private, loopback or
    /// link-local address, [`bealert_core::endpoint`]): asked when an
    /// outlet is registered, so a URL it cannot reach is refused then, not
    /// at the first alert. A gateway that reaches no URL (a simulator)
    /// accepts all.
    async fn reachable(&self, _url: &str) -> Result<(), String> {
        Ok(())
    }
}

/// The public channels, when a home sets them up ([`crate::App::with_public`]):
/// their outlets' gateway, and the counters of each outlet's rate limit.
/// Their deliveries are target deliveries ([`TargetStore`]).
#[derive(Clone)]
pub struct PublicPorts {
    pub gateway: Arc<dyn PublicGateway>,
    pub counters: Arc<dyn Counters>,
}
