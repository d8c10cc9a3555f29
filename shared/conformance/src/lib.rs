//! bealert-conformance: the behaviour every adapter of a port must show,
//! one suite per port, for the adapters' tests (a dev-dependency only).
//!
//! Each adapter's tests build fresh instances and call these; they panic on
//! the first broken promise, naming it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod budget;
mod documents;
mod gateway;
mod geography;
mod idempotency;
mod networks;
mod queue;
mod race;
mod signup;
mod store;

pub use budget::{limits as budget_limits, send_budget};
pub use documents::document_store;
pub use gateway::gateway;
pub use geography::geo_store;
pub use idempotency::idempotency_store;
pub use networks::{network_store, target_store};
pub use queue::job_queue;
pub use race::racing_senders;
pub use signup::{counters, invitations, registration_store};
pub use store::{
    address_units, alert_store, delivery_providers, delivery_receipts, delivery_store,
    forget_subscriber, import_keeps_everyone, large_record as large_alert, operator_store, plan,
    subscriber_store, subscriber_store_races,
};

use bealert_core::alert::{AlertRequest, AlertSpec};
use bealert_core::subscriber::{SubscriberInput, SubscriberProfile};

/// A valid subscriber profile living at the given points.
pub fn profile(
    external_id: Option<&str>,
    language: &str,
    points: &[(f64, f64)],
    groups: &[&str],
) -> SubscriberProfile {
    SubscriberInput {
        external_id: external_id.map(str::to_string),
        language: language.to_string(),
        phone: Some("+32470123456".into()),
        email: Some("someone@example.be".into()),
        channels: vec!["sms".into(), "email".into()],
        addresses: points
            .iter()
            .map(|&(lat, lon)| bealert_core::subscriber::AddressInput {
                label: None,
                lat,
                lon,
            })
            .collect(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
    .validate()
    .expect("a valid fixture")
}

/// A valid alert on a 2 km circle in Brussels.
pub fn alert_spec() -> AlertSpec {
    let body = serde_json::json!({
        "status": "Exercise", "event": "Conformance", "severity": "Minor",
        "urgency": "Future", "certainty": "Possible",
        "messages": {"nl": "Test", "fr": "Test", "en": "Test"},
        "area": {"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 2}]}
    });
    serde_json::from_value::<AlertRequest>(body)
        .unwrap()
        .validate()
        .unwrap()
}
