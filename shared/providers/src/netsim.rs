//! A mobile network simulator, behind the same port as a real network
//! ([`NetworkGateway`]): the embedded default, `demo` and the tests use it.
//!
//! It behaves like a network: it takes the selected cells, "delivers" to
//! the active devices on them (every one when healthy), reports counts,
//! never sends one key twice, and keeps each message's audience for a
//! follow-up. It can be told to be slow, to fail (a number of times, or
//! until told otherwise), to refuse, or to lose a share of the devices.
//! [`router`] serves it over HTTP with the JSON protocol of
//! [`crate::network_http`], so it also stands in for a network's API.

use async_trait::async_trait;
use bealert_app::ports::{
    BroadcastCell, BroadcastMessage, FollowUpMessage, GatewayError, NetworkGateway, NetworkGateways,
};
use bealert_core::broadcast::NetworkReport;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a simulated network behaves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Behaviour {
    /// Time taken per request.
    pub delay: Duration,
    /// Answers this many requests with a temporary failure, then recovers;
    /// `u32::MAX`: down until told otherwise.
    pub failures: u32,
    /// Refuses every message for good.
    pub refuse: bool,
    /// Share of the devices the message does not reach (0 to 1).
    pub drop: f64,
}

impl std::str::FromStr for Behaviour {
    type Err = String;

    /// `healthy`, `slow:MS`, `down`, `fail:N`, `refuse`, `drop:SHARE`,
    /// combined with `+` (`slow:2000+drop:0.1`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut b = Behaviour::default();
        for part in s.split('+').map(str::trim) {
            let (name, arg) = part.split_once(':').unwrap_or((part, ""));
            let bad = || {
                format!(
                    "network behaviour {part:?}: use healthy, slow:MS, down, fail:N, refuse or drop:SHARE (joined with +)"
                )
            };
            match name {
                "healthy" => {}
                "slow" => b.delay = Duration::from_millis(arg.parse().map_err(|_| bad())?),
                "down" => b.failures = u32::MAX,
                "fail" => b.failures = arg.parse().map_err(|_| bad())?,
                "refuse" => b.refuse = true,
                "drop" => {
                    let d: f64 = arg.parse().map_err(|_| bad())?;
                    if !(0.0..=1.0).contains(&d) {
                        return Err(bad());
                    }
                    b.drop = d;
                }
                _ => return Err(bad()),
            }
        }
        Ok(b)
    }
}

#[derive(Default)]
struct State {
    behaviour: HashMap<String, Behaviour>,
    /// Every message handled: its audience and report, by key.
    sent: HashMap<String, (Vec<BroadcastCell>, NetworkReport)>,
    requests: HashMap<String, u64>,
}

/// Every simulated network, by name.
#[derive(Clone, Default)]
pub struct NetworkSimulator {
    state: Arc<Mutex<State>>,
}

impl NetworkSimulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how one network behaves from now on.
    pub fn set(&self, network: &str, behaviour: Behaviour) {
        self.lock().behaviour.insert(network.to_string(), behaviour);
    }

    /// Requests the network received (every attempt, repeats included).
    pub fn requests(&self, network: &str) -> u64 {
        self.lock().requests.get(network).copied().unwrap_or(0)
    }

    /// The report kept for a message key, if it was handled.
    pub fn report(&self, key: &str) -> Option<NetworkReport> {
        self.lock().sent.get(key).map(|(_, r)| *r)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the network does with one request before delivering: its
    /// behaviour's delay, then a failure if one is due.
    async fn gate(&self, network: &str) -> Result<Behaviour, GatewayError> {
        let b = {
            let mut st = self.lock();
            *st.requests.entry(network.to_string()).or_default() += 1;
            st.behaviour.get(network).cloned().unwrap_or_default()
        };
        if !b.delay.is_zero() {
            tokio::time::sleep(b.delay).await;
        }
        if b.refuse {
            return Err(GatewayError::Permanent(format!(
                "{network} refused the message"
            )));
        }
        if b.failures > 0 {
            let mut st = self.lock();
            if let Some(cur) = st.behaviour.get_mut(network)
                && cur.failures > 0
            {
                if cur.failures != u32::MAX {
                    cur.failures -= 1;
                }
                return Err(GatewayError::Retryable(format!(
                    "{network} is unreachable (simulated)"
                )));
            }
        }
        Ok(b)
    }

    fn deliver(&self, key: &str, cells: &[BroadcastCell], drop: f64) -> NetworkReport {
        let mut st = self.lock();
        if let Some((_, r)) = st.sent.get(key) {
            return *r;
        }
        let requested: u64 = cells.iter().map(|c| c.active_devices).sum();
        let delivered = ((requested as f64) * (1.0 - drop)).round() as u64;
        let report = NetworkReport {
            cells: cells.len() as u64,
            requested,
            accepted: requested,
            delivered,
            failed: requested - delivered,
            overshoot_km2: 0.0,
        };
        st.sent.insert(key.to_string(), (cells.to_vec(), report));
        report
    }

    pub async fn broadcast(&self, m: &BroadcastMessage) -> Result<NetworkReport, GatewayError> {
        let b = self.gate(&m.network).await?;
        if let Some(e) = m.too_late(bealert_app::now_ms()) {
            return Err(e);
        }
        Ok(self.deliver(&m.key, &m.cells, b.drop))
    }

    pub async fn follow_up(&self, m: &FollowUpMessage) -> Result<NetworkReport, GatewayError> {
        let b = self.gate(&m.network).await?;
        let audience = self.lock().sent.get(&m.references).map(|(c, _)| c.clone());
        let Some(cells) = audience else {
            return Err(GatewayError::Permanent(format!(
                "{} has no earlier message {:?} to follow up",
                m.network, m.references
            )));
        };
        Ok(self.deliver(&m.key, &cells, b.drop))
    }
}

struct SimulatedNetwork {
    sim: NetworkSimulator,
}

#[async_trait]
impl NetworkGateway for SimulatedNetwork {
    async fn broadcast(&self, m: &BroadcastMessage) -> Result<NetworkReport, GatewayError> {
        self.sim.broadcast(m).await
    }

    async fn follow_up(&self, m: &FollowUpMessage) -> Result<NetworkReport, GatewayError> {
        self.sim.follow_up(m).await
    }
}

impl NetworkGateways for NetworkSimulator {
    fn gateway(&self, _network: &str) -> Arc<dyn NetworkGateway> {
        Arc::new(SimulatedNetwork { sim: self.clone() })
    }
}

#[cfg(feature = "routers")]
/// The simulator as a network's HTTP API (see [`crate::network_http`]).
pub fn router(sim: NetworkSimulator) -> axum::Router {
    use axum::Json;
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::routing::post;

    fn answer(r: Result<NetworkReport, GatewayError>) -> (StatusCode, Json<serde_json::Value>) {
        match r {
            Ok(report) => (StatusCode::OK, Json(serde_json::json!(report))),
            Err(GatewayError::Permanent(e)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json::json!({"error": e})),
            ),
            Err(GatewayError::Throttled(e)) => (
                StatusCode::TOO_MANY_REQUESTS,
                Json(serde_json::json!({"error": e})),
            ),
            Err(GatewayError::Retryable(e) | GatewayError::Refused(e)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": e})),
            ),
            Err(e @ GatewayError::Unsure { .. }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": e.to_string()})),
            ),
        }
    }

    axum::Router::new()
        .route(
            "/broadcasts",
            post(
                |State(sim): State<NetworkSimulator>, Json(m): Json<BroadcastMessage>| async move {
                    answer(sim.broadcast(&m).await)
                },
            ),
        )
        .route(
            "/broadcasts/{key}/follow-ups",
            post(
                |State(sim): State<NetworkSimulator>,
                 Path(key): Path<String>,
                 Json(m): Json<FollowUpMessage>| async move {
                    if m.references != key {
                        return answer(Err(GatewayError::Permanent(format!(
                            "the path names {key:?}, the body references {:?}",
                            m.references
                        ))));
                    }
                    answer(sim.follow_up(&m).await)
                },
            ),
        )
        .with_state(sim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bealert_core::AlertId;
    use bealert_core::broadcast::BroadcastMode;

    pub(crate) fn message(network: &str, key: &str) -> BroadcastMessage {
        BroadcastMessage {
            key: key.into(),
            alert_id: AlertId::new(),
            network: network.into(),
            mode: BroadcastMode::Lbsms,
            cells: vec![
                BroadcastCell {
                    cell_id: "a".into(),
                    active_devices: 600,
                },
                BroadcastCell {
                    cell_id: "b".into(),
                    active_devices: 400,
                },
            ],
            texts: Default::default(),
            message_identifier: 4371,
            additional_language_identifier: 4384,
            repetition_period_s: 60,
            not_after: i64::MAX,
        }
    }

    #[tokio::test]
    async fn a_healthy_network_delivers_to_every_device_once_and_keeps_the_audience() {
        let sim = NetworkSimulator::new();
        let r = sim.broadcast(&message("proximus", "k1")).await.unwrap();
        assert_eq!(
            (r.cells, r.requested, r.delivered, r.failed),
            (2, 1000, 1000, 0)
        );
        // A repeat of the key is answered from the record, not sent again.
        sim.set("proximus", "drop:0.5".parse().unwrap());
        assert_eq!(sim.broadcast(&message("proximus", "k1")).await.unwrap(), r);
        let f = FollowUpMessage {
            key: "k2".into(),
            references: "k1".into(),
            network: "proximus".into(),
            texts: Default::default(),
            message_identifier: 4371,
        };
        let r2 = sim.follow_up(&f).await.unwrap();
        assert_eq!((r2.cells, r2.requested, r2.delivered), (2, 1000, 500));
        let unknown = FollowUpMessage {
            references: "nope".into(),
            ..f
        };
        assert!(matches!(
            sim.follow_up(&unknown).await,
            Err(GatewayError::Permanent(_))
        ));
    }

    #[tokio::test]
    async fn failures_are_temporary_or_final_as_told() {
        let sim = NetworkSimulator::new();
        sim.set("orange", "fail:2".parse().unwrap());
        for _ in 0..2 {
            assert!(matches!(
                sim.broadcast(&message("orange", "k")).await,
                Err(GatewayError::Retryable(_))
            ));
        }
        assert!(sim.broadcast(&message("orange", "k")).await.is_ok());
        sim.set("base", "refuse".parse().unwrap());
        assert!(matches!(
            sim.broadcast(&message("base", "k")).await,
            Err(GatewayError::Permanent(_))
        ));
        assert_eq!(sim.requests("orange"), 3);
        assert!("slow:x".parse::<Behaviour>().is_err());
        assert!("drop:2".parse::<Behaviour>().is_err());
        assert_eq!(
            "slow:20+drop:0.25".parse::<Behaviour>().unwrap(),
            Behaviour {
                delay: Duration::from_millis(20),
                drop: 0.25,
                ..Behaviour::default()
            }
        );
    }
}
