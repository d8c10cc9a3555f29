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
    let level = std::env::var("BEALERT_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .init();
}

/// The app on the AWS home, after checking that `required` variables are
/// set, with the gateways `gateways` picks (e.g. `|h| AwsHome::only(Channel::Sms, h.sms())`,
/// or `|_| AwsHome::no_gateways()`): a function links only the SDK clients it uses.
/// Alert-SMS is set up too: any function may meet it (an alert's networks,
/// its estimate, a job settling an alert that waits for a network).
pub async fn app(
    required: &[&str],
    gateways: impl FnOnce(&AwsHome) -> bealert_app::ports::Gateways,
) -> Result<Arc<App>, ConfigError> {
    let (home, app) = base_app(required, gateways).await?;
    let broadcast = crate::home::broadcast_config_from_env();
    let networks = AwsHome::network_gateways_from_env(broadcast.gateway_timeout)?;
    let mut app = app.with_broadcast(home.broadcast_ports(networks), broadcast);
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
        // A burst out of range falls back to the default, and says so.
        Some(
            bealert_app::rate::Limit::new(rate, burst).unwrap_or_else(|e| {
                tracing::error!(error = %e, "BEALERT_{channel}_BURST: the default burst is used");
                bealert_app::rate::Limit::new(rate, None).expect("a rate of at least 1")
            }),
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
    AppConfig {
        approval,
        approval_wait,
        lease: FUNCTION_TIMEOUT * 2,
        limits: [limit("SMS"), limit("VOICE"), limit("EMAIL")],
        public_url: std::env::var("BEALERT_PUBLIC_URL")
            .ok()
            .filter(|u| !u.trim().is_empty()),
        ..AppConfig::default()
    }
}
