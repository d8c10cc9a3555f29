//! What every bealert Lambda function does before it serves: JSON logs for
//! CloudWatch, its configuration checked, SDK clients built once.

use crate::{AwsHome, ConfigError, Settings};
use bealert_app::App;
use bealert_app::usecases::AppConfig;
use std::sync::Arc;
use std::time::Duration;

/// JSON lines on stdout at the level `BEALERT_LOG` names (`error` ..
/// `trace`; default `info`). A plain level, not a filter expression: no
/// regular-expression engine in the package.
pub fn init_logs() {
    use tracing_subscriber::prelude::*;
    let level = std::env::var("BEALERT_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_target(false)
        .without_time()
        .with_filter(tracing_subscriber::filter::filter_fn(move |m| {
            m.target() != bealert_app::metrics::TARGET && *m.level() <= level
        }));
    tracing_subscriber::registry()
        .with(logs)
        .with(EmfLayer::new("bealert", std::io::stdout))
        .init();
}

/// Turns metric events ([`bealert_app::metrics`]) into CloudWatch metrics
/// in the embedded metric format: one JSON line each on the function's
/// output, which CloudWatch Logs extracts (no PutMetricData call, no
/// added latency).
pub struct EmfLayer<W> {
    namespace: String,
    writer: W,
}

impl<W> EmfLayer<W> {
    pub fn new(namespace: &str, writer: W) -> Self {
        Self {
            namespace: namespace.to_string(),
            writer,
        }
    }
}

/// An event's fields as JSON values.
#[derive(Default)]
struct Fields(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for Fields {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

impl<S, W> tracing_subscriber::Layer<S> for EmfLayer<W>
where
    S: tracing::Subscriber,
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + 'static,
{
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        use std::io::Write;
        if event.metadata().target() != bealert_app::metrics::TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let list = |name: &str| -> Vec<String> {
            fields.0[name]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let (metrics, dimensions) = (list("metrics"), list("dimensions"));
        let mut doc = serde_json::json!({
            "_aws": {
                "Timestamp": bealert_app::now_ms(),
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimensions],
                    "Metrics": metrics.iter().map(|m| serde_json::json!({"Name": m, "Unit": "Count"})).collect::<Vec<_>>(),
                }],
            }
        });
        for name in metrics.iter().chain(&dimensions) {
            if let Some(v) = fields.0.get(name) {
                doc[name] = v.clone();
            }
        }
        let _ = writeln!(self.writer.make_writer(), "{doc}");
    }
}

/// The app on the AWS home, after checking that `required` variables are
/// set, with the gateways `gateways` picks (e.g. `|h| AwsHome::only(Channel::Sms, h.sms())`,
/// or `|_| AwsHome::no_gateways()`): a function links only the SDK clients it uses.
/// Alert-SMS is set up too: any function may meet it (an alert's networks,
/// its estimate, a job settling an alert that waits for a network). The
/// networks' and outlets' HTTP gateways are there only in a function built
/// with bealert-aws's `http` feature (send-broadcast, send-public); in the
/// others they refuse, saying so, and reqwest is not linked.
pub async fn app(
    required: &[&str],
    gateways: impl FnOnce(&AwsHome) -> bealert_app::ports::Gateways,
) -> Result<Arc<App>, ConfigError> {
    let (home, app) = base_app(required, gateways).await?;
    let broadcast = crate::home::broadcast_config_from_env();
    let networks = AwsHome::network_gateways_from_env(broadcast.gateway_timeout)?;
    let public = home.public_ports(broadcast.gateway_timeout, None);
    let mut app = app
        .with_broadcast(home.broadcast_ports(networks), broadcast)
        .with_public(public);
    if let Some(s) = home.drill_scheduler() {
        app = app.with_drill_scheduler(s);
    }
    Ok(Arc::new(app))
}

/// [`app`] without Alert-SMS, for a function that never meets an alert
/// (api-subscribers' import): its package leaves out the networks' HTTP
/// and S3 clients.
pub async fn app_without_alert_sms(
    required: &[&str],
    gateways: impl FnOnce(&AwsHome) -> bealert_app::ports::Gateways,
) -> Result<Arc<App>, ConfigError> {
    Ok(Arc::new(base_app(required, gateways).await?.1))
}

async fn base_app(
    required: &[&str],
    gateways: impl FnOnce(&AwsHome) -> bealert_app::ports::Gateways,
) -> Result<(AwsHome, App), ConfigError> {
    Settings::require(required)?;
    let home = AwsHome::new(&crate::sdk_config().await, Settings::from_env());
    let ports = home.ports_with(gateways(&home));
    let config = lambda_config();
    let budget = crate::dynamo::budget::DynamoBudget::new(home.store.clone(), config.limits);
    let app = App::new(ports, config).with_budget(Arc::new(budget));
    Ok((home, app))
}

/// [`app`] with the public signup (the api-signup function).
pub async fn signup_app(
    required: &[&str],
    gateways: impl FnOnce(&AwsHome) -> bealert_app::ports::Gateways,
) -> Result<Arc<App>, ConfigError> {
    Settings::require(required)?;
    let home = AwsHome::new(&crate::sdk_config().await, Settings::from_env());
    let (signup_ports, signup) = home.signup()?;
    let ports = home.ports_with(gateways(&home));
    Ok(Arc::new(
        App::new(ports, lambda_config()).with_signup(signup_ports, signup),
    ))
}

/// The functions' timeout in infra/template.yaml.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(60);

/// A claim's lease outlives the function that took it: a sender killed at
/// its timeout is dead before anyone else can claim its deliveries, and it
/// stops handing messages over a fifth of the lease before the end.
///
/// Each channel's messages per second come from `BEALERT_SMS_RATE`,
/// `BEALERT_VOICE_RATE`, `BEALERT_EMAIL_RATE` (unset or 0: unlimited), with
/// bursts from `BEALERT_SMS_BURST`, … (unset or 0: a fiftieth of the rate),
/// and are enforced across every instance by a bucket in DynamoDB.
pub fn lambda_config() -> AppConfig {
    let number = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|r| *r > 0)
    };
    let limit = |channel: &str| {
        let rate = number(&format!("BEALERT_{channel}_RATE"))?;
        let burst = number(&format!("BEALERT_{channel}_BURST"));
        let ramp = number(&format!("BEALERT_{channel}_RAMP_SECS")).unwrap_or(0);
        // A burst out of range falls back to the default, and says so.
        Some(
            bealert_app::rate::Limit::new(rate, burst)
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "BEALERT_{channel}_BURST: the default burst is used");
                    bealert_app::rate::Limit::new(rate, None).expect("a rate of at least 1")
                })
                .with_ramp(ramp),
        )
    };
    // An unreadable policy holds every alert (the safe side) and says so.
    let approval = match std::env::var("BEALERT_APPROVAL") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|e| {
            tracing::error!(error = %e, "BEALERT_APPROVAL: every alert waits for approval");
            bealert_core::lifecycle::ApprovalPolicy::All
        }),
        _ => bealert_core::lifecycle::ApprovalPolicy::default(),
    };
    // Minutes (the template's ApprovalWaitMinutes).
    let approval_wait = std::env::var("BEALERT_APPROVAL_WAIT_MINUTES")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|m| *m > 0)
        .map_or(AppConfig::default().approval_wait, |m| {
            std::time::Duration::from_secs(m * 60)
        });
    // Hours (the template's FollowUpWindowHours).
    let follow_up_window = std::env::var("BEALERT_FOLLOW_UP_WINDOW_HOURS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|h| *h > 0)
        .map_or(AppConfig::default().follow_up_window, |h| {
            std::time::Duration::from_secs(h * 3600)
        });
    AppConfig {
        approval,
        approval_wait,
        follow_up_window,
        lease: FUNCTION_TIMEOUT * 2,
        limits: [limit("SMS"), limit("VOICE"), limit("EMAIL")],
        public_url: std::env::var("BEALERT_PUBLIC_URL")
            .ok()
            .filter(|u| !u.trim().is_empty()),
        console_tiles: std::env::var("BEALERT_CONSOLE_TILES")
            .ok()
            .filter(|u| !u.trim().is_empty()),
        // API Gateway compresses responses (the API's MinimumCompressionSize):
        // a gzip body from the function would need binary media types.
        compress_assets: false,
        ..AppConfig::default()
    }
}

#[cfg(test)]
mod emf_tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::prelude::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn metric_events_become_embedded_metric_format_lines_and_others_do_not() {
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber =
            tracing_subscriber::registry().with(EmfLayer::new("bealert", move || out.clone()));
        tracing::subscriber::with_default(subscriber, || {
            bealert_app::metrics::sent(bealert_core::Channel::Sms, 98, 1, 3);
            tracing::info!(sent = 5, "an ordinary log line");
            bealert_app::metrics::receipts(7, 1, 2, 0);
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let sent = &lines[0];
        let cw = &sent["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "bealert");
        assert_eq!(cw["Dimensions"], serde_json::json!([["Channel"]]));
        assert_eq!(
            cw["Metrics"][0],
            serde_json::json!({"Name": "Sent", "Unit": "Count"})
        );
        assert_eq!(
            (
                &sent["Channel"],
                &sent["Sent"],
                &sent["Failed"],
                &sent["Retried"]
            ),
            (
                &serde_json::json!("sms"),
                &serde_json::json!(98),
                &serde_json::json!(1),
                &serde_json::json!(3)
            )
        );
        assert!(sent["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
        assert_eq!(lines[1]["ReceiptsApplied"], 7);
        assert_eq!(
            lines[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([[]])
        );
    }
}
