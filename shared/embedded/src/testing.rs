//! An in-process home on a temporary directory, for handler tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::Embedded;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
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
        Self::build(true).await
    }

    /// A home with every part but Alert-SMS (no mobile networks).
    pub async fn without_networks() -> Self {
        Self::build(false).await
    }

    async fn build(networks: bool) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let embedded = Embedded::open(dir.path()).expect("an embedded home");
        // The public signup too, on the embedded ports (a fixed test key).
        let signup = bealert_app::usecases::signup::SignupConfig::with_secret(vec![7; 32]);
        let mut app = App::new(embedded.ports(), AppConfig::default())
            .with_signup(embedded.signup_ports(), signup)
            .with_public(embedded.public_ports(std::time::Duration::from_secs(10)));
        if networks {
            // Alert-SMS too, every network simulated.
            app = app.with_broadcast(
                embedded.broadcast_ports(Arc::new(embedded.simulator.clone())),
                bealert_app::usecases::networks::BroadcastConfig::default(),
            );
        }
        let app = Arc::new(app);
        let op = Operator {
            name: "sample".into(),
            jurisdiction: Jurisdiction::National,
            user: "sample".into(),
            groups: Vec::new(),
            rights: Default::default(),
            key_expires_at_ms: None,
        };
        app.ports
            .operators
            .insert_operator(
                &op,
                &bealert_core::operator::KeyGrant {
                    hash: hash_key(SAMPLE_KEY),
                    expires_at_ms: None,
                },
            )
            .await
            .unwrap();
        Self { dir, embedded, app }
    }

    /// An alert from a request body, with a chosen id and state.
    pub async fn insert_alert(&self, id: AlertId, state: AlertState, request: serde_json::Value) {
        self.insert_record(id, state, request, None).await;
    }

    async fn insert_record(
        &self,
        id: AlertId,
        state: AlertState,
        request: serde_json::Value,
        shards_total: Option<u32>,
    ) {
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
            approved_at: None,
            shards_total,
            shards_done: shards_total.unwrap_or(0),
        };
        let entry =
            bealert_app::ports::AuditEntry::system("create", None, record.state, record.created_at);
        self.app
            .ports
            .alerts
            .insert_alert(&record, &entry)
            .await
            .unwrap();
    }

    /// An alert with this id, being sent, with these deliveries planned on `channel`.
    pub async fn alert_with(
        &self,
        id: AlertId,
        channel: Channel,
        recipients: &[(SubscriberId, &str, Language)],
    ) {
        let request = serde_json::json!({
            "status": "Exercise", "event": "Sample", "severity": "Minor", "urgency": "Future",
            "certainty": "Possible", "messages": {"nl": "Oefening", "fr": "Exercice", "en": "Exercise"},
            "area": {"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 1}]}
        });
        self.insert_record(id, AlertState::Sending, request, Some(1))
            .await;
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

    /// A network with a 3 × 3 grid of 0.01° cells around Brussels (100
    /// active devices each); returns its key.
    pub async fn network_with_cells(&self, name: &str) -> String {
        let networks = self.app.networks().expect("Alert-SMS is set up");
        let (_, key) = networks.create_network(name).await.unwrap();
        let mut features = Vec::new();
        for i in 0..3 {
            for j in 0..3 {
                let (x, y) = (4.34 + 0.01 * f64::from(i), 50.84 + 0.01 * f64::from(j));
                features.push(serde_json::json!({"type": "Feature",
                    "properties": {"cell_id": format!("{i}-{j}"), "active_devices": 100},
                    "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]]}}));
            }
        }
        let body = serde_json::json!({"type": "FeatureCollection", "features": features});
        networks
            .replace_cells(
                Some(&format!("Bearer {key}")),
                name,
                body.to_string().into(),
            )
            .await
            .unwrap();
        key
    }

    /// An alert with this id, resolved and broadcast through `network`
    /// (the sample event's job), its delivery to the network planned.
    pub async fn broadcast_alert(&self, id: AlertId, network: &str) {
        let request = serde_json::json!({
            "status": "Exercise", "event": "Sample", "severity": "Minor", "urgency": "Future",
            "certainty": "Possible", "messages": {"nl": "Oefening", "fr": "Exercice"},
            "area": {"circles": [{"lat": 50.855, "lon": 4.355, "radius_km": 0.5}]},
            "channels": [], "broadcast": {"mode": "lbsms", "networks": [network]}
        });
        self.insert_record(id, AlertState::Sending, request, Some(1))
            .await;
        self.embedded
            .networks
            .as_ref()
            .plan_targets_for_test(id, network)
            .await;
    }

    /// Registers an outlet (its JSON, with `name`) as the sample operator.
    pub async fn outlet(&self, outlet: serde_json::Value) {
        let op = self
            .app
            .authenticate(Some(&format!("Bearer {SAMPLE_KEY}")))
            .await
            .unwrap();
        let name = outlet["name"].as_str().unwrap().to_string();
        self.app
            .put_outlet(&op, &name, outlet.to_string().as_bytes())
            .await
            .unwrap();
    }

    /// An alert with this id, resolved, to the public channels `public`
    /// (an alert request's `"public"`, every outlet named), their
    /// deliveries planned.
    pub async fn public_alert(&self, id: AlertId, public: serde_json::Value) {
        let request = serde_json::json!({
            "status": "Exercise", "event": "Sample", "severity": "Minor", "urgency": "Future",
            "certainty": "Possible", "messages": {"nl": "Oefening", "fr": "Exercice"},
            "area": {"circles": [{"lat": 50.855, "lon": 4.355, "radius_km": 0.5}]},
            "channels": [], "public": public
        });
        self.insert_record(id, AlertState::Sending, request, Some(1))
            .await;
        let alert = self.app.ports.alerts.get_alert(id).await.unwrap().unwrap();
        let targets = alert.spec.public.unwrap().targets();
        bealert_app::ports::TargetStore::plan_targets(
            self.embedded.networks.as_ref(),
            id,
            &targets,
            0,
        )
        .await
        .unwrap();
    }

    /// Imports subscribers (an import request body) as the sample operator.
    pub async fn import(&self, body: serde_json::Value) {
        let op = self
            .app
            .authenticate(Some(&format!("Bearer {SAMPLE_KEY}")))
            .await
            .unwrap();
        self.app
            .import_subscribers(&op, body.to_string().as_bytes())
            .await
            .unwrap();
    }

    /// An API Gateway event (JSON) through a function's router: status and JSON body.
    pub async fn call_http(router: axum::Router, event: &str) -> (u16, serde_json::Value) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let request = lambda_http::request::from_str(event).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// The contract of a sender function (send-sms, send-voice, send-email) on
    /// its sample SQS event: the batch is sent once, to `recipients` (the two
    /// the sample's job names), in their languages; a redelivered batch sends
    /// nothing again; an unreadable record is a batch item failure.
    pub async fn check_sender<H>(
        handler: H,
        sample_event: &str,
        channel: Channel,
        recipients: [(&str, &str, Language); 2],
    ) where
        H: AsyncFn(
            &App,
            lambda_runtime::LambdaEvent<SqsEvent>,
        ) -> Result<SqsBatchResponse, lambda_runtime::Error>,
    {
        let event = || serde_json::from_str::<SqsEvent>(sample_event).unwrap();
        let run = async |home: &TestHome, e: SqsEvent| {
            handler(
                &home.app,
                lambda_runtime::LambdaEvent::new(e, lambda_runtime::Context::default()),
            )
            .await
            .unwrap()
        };
        let body: serde_json::Value =
            serde_json::from_str(event().records[0].body.as_deref().unwrap()).unwrap();
        let alert_id: AlertId = body["alert_id"].as_str().unwrap().parse().unwrap();

        let home = TestHome::new().await;
        let planned: Vec<(SubscriberId, &str, Language)> = recipients
            .iter()
            .map(|(id, to, language)| (id.parse().unwrap(), *to, *language))
            .collect();
        home.alert_with(alert_id, channel, &planned).await;
        let first = run(&home, event()).await;
        assert!(
            first.batch_item_failures.is_empty(),
            "{:?}",
            first.batch_item_failures
        );
        let sent = home.outbox(channel);
        assert_eq!(sent.len(), 2, "{sent:?}");
        for (_, to, language) in &recipients {
            assert!(
                sent.iter()
                    .any(|l| l["to"] == *to && l["language"] == language.to_string()),
                "{to} in {language}: {sent:?}"
            );
        }
        let again = run(&home, event()).await;
        assert!(again.batch_item_failures.is_empty());
        assert_eq!(
            home.outbox(channel).len(),
            2,
            "a redelivered batch sends nothing again"
        );

        let home = TestHome::new().await;
        let mut broken = event();
        broken.records[0].body = Some("{not json".into());
        let id = broken.records[0].message_id.clone().unwrap();
        let r = run(&home, broken).await;
        assert_eq!(r.batch_item_failures.len(), 1);
        assert_eq!(r.batch_item_failures[0].item_identifier, id);
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

/// A function binary started without its configuration must refuse to start
/// and name every variable it requires (`required`), `example` among them.
pub fn check_refuses_to_start_without_configuration(
    binary: &str,
    required: &[&str],
    example: &str,
) {
    let out = std::process::Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(required.contains(&example), "{example} not required");
    for var in required {
        assert!(stderr.contains(var), "{var} not named in: {stderr}");
    }
}
