//! An in-process home on a temporary directory, for handler tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::Embedded;
use bealert_app::App;
use bealert_app::ports::{AlertRecord, RecipientPlan};
use bealert_app::usecases::AppConfig;
use bealert_core::alert::{AlertRequest, AlertState};
use bealert_core::delivery::PlannedDelivery;
use bealert_core::operator::{Jurisdiction, Operator, hash_key};
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use std::sync::Arc;

/// The operator key the sample API events in `events/` carry.
pub const SAMPLE_KEY: &str = "bea_sample-operator-key-of-the-events-folder";

pub struct TestHome {
    pub dir: tempfile::TempDir,
    pub embedded: Embedded,
    pub app: Arc<App>,
}

impl TestHome {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let embedded = Embedded::open(dir.path()).expect("an embedded home");
        let app = Arc::new(App::new(embedded.ports(), AppConfig::default()));
        let op = Operator {
            name: "sample".into(),
            jurisdiction: Jurisdiction::National,
            key_hash: hash_key(SAMPLE_KEY),
        };
        app.ports.operators.insert_operator(&op).await.unwrap();
        Self { dir, embedded, app }
    }

    /// An alert from a request body, with a chosen id and state.
    pub async fn insert_alert(&self, id: AlertId, state: AlertState, request: serde_json::Value) {
        let spec = serde_json::from_value::<AlertRequest>(request)
            .unwrap()
            .validate()
            .unwrap();
        let record = AlertRecord {
            id,
            operator: "sample".into(),
            spec,
            state,
            created_at: bealert_app::now_ms(),
            completed_at: None,
            shards_total: None,
            shards_done: 0,
        };
        self.app.ports.alerts.insert_alert(&record).await.unwrap();
    }

    /// An alert with this id, being sent, with these deliveries planned on `channel`.
    pub async fn alert_with(
        &self,
        id: AlertId,
        channel: Channel,
        recipients: &[(SubscriberId, &str, Language)],
    ) {
        let spec = serde_json::from_value::<AlertRequest>(serde_json::json!({
            "status": "Exercise", "event": "Sample", "severity": "Minor", "urgency": "Future",
            "certainty": "Possible", "messages": {"nl": "Oefening", "fr": "Exercice", "en": "Exercise"},
            "area": {"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 1}]}
        }))
        .unwrap()
        .validate()
        .unwrap();
        let record = AlertRecord {
            id,
            operator: "sample".into(),
            spec,
            state: AlertState::Sending,
            created_at: bealert_app::now_ms(),
            completed_at: None,
            shards_total: Some(1),
            shards_done: 1,
        };
        self.app.ports.alerts.insert_alert(&record).await.unwrap();
        let plans: Vec<RecipientPlan> = recipients
            .iter()
            .map(|(sub, to, language)| RecipientPlan {
                subscriber_id: *sub,
                external_id: None,
                deliveries: vec![PlannedDelivery {
                    subscriber_id: *sub,
                    channel,
                    to: to.to_string(),
                    language: *language,
                }],
            })
            .collect();
        self.app
            .ports
            .deliveries
            .plan_deliveries(id, 0, &plans)
            .await
            .unwrap();
    }

    /// The lines of one channel's outbox.
    pub fn outbox(&self, channel: Channel) -> Vec<serde_json::Value> {
        std::fs::read_to_string(
            self.dir
                .path()
                .join("outbox")
                .join(format!("{channel}.jsonl")),
        )
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
    }
}
