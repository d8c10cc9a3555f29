//! The local runtime: a home's ports, the app, and a poller per queue.

use anyhow::Context;
use bealert_app::App;
use bealert_app::jobs::{RESOLVE_QUEUE, send_queue};
use bealert_app::ports::SignupPorts;
use bealert_app::usecases::AppConfig;
use bealert_app::usecases::signup::SignupConfig;
use bealert_app::worker::{self, WorkerOptions};
use bealert_core::Channel;
use bealert_embedded::{DataDirLock, Embedded};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Knobs of the local runner, from flags or environment.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Tuning {
    /// SMS per second (the aggregator's contract); unlimited if unset.
    #[arg(long, env = "BEALERT_SMS_RATE")]
    pub sms_rate: Option<u32>,
    /// Voice calls started per second; unlimited if unset.
    #[arg(long, env = "BEALERT_VOICE_RATE")]
    pub voice_rate: Option<u32>,
    /// E-mails per second; unlimited if unset.
    #[arg(long, env = "BEALERT_EMAIL_RATE")]
    pub email_rate: Option<u32>,
    /// Days that recipients' contact data (deliveries, dead letters,
    /// archived outbox files) is kept (embedded home; DynamoDB items carry a TTL).
    #[arg(long, env = "BEALERT_RETENTION_DAYS", default_value_t = 90)]
    pub retention_days: u32,
    /// Hours after which the live outbox file moves to outbox/archive/.
    #[arg(long, env = "BEALERT_OUTBOX_ROTATE_HOURS", default_value_t = 24)]
    pub outbox_rotate_hours: u32,
    /// The address citizens reach the signup page at (self-service links
    /// point there); `serve` uses its own listening address if unset.
    #[arg(long, env = "BEALERT_PUBLIC_URL")]
    pub public_url: Option<String>,
}

impl Tuning {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 86_400)
    }
}

/// How often the embedded home sweeps expired personal data.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Where the ports live.
pub enum Home {
    /// SQLite files and outbox gateways in a data directory.
    Embedded(PathBuf),
    /// DynamoDB, SQS, SNS, SES (real AWS, or LocalStack + DynamoDB Local).
    Aws,
}

pub struct Local {
    pub app: Arc<App>,
    shutdown: CancellationToken,
    workers: JoinSet<()>,
    _lock: Option<DataDirLock>,
}

/// Opens a data directory exclusively and resumes a crashed run's work.
async fn open_embedded(dir: &Path) -> anyhow::Result<(Arc<Embedded>, DataDirLock)> {
    let lock = DataDirLock::acquire(dir)?;
    let embedded = Embedded::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let (jobs, leases) = embedded
        .recover(&lock)
        .await
        .map_err(|e| anyhow::anyhow!("recovering {}: {e}", dir.display()))?;
    if jobs + leases > 0 {
        tracing::info!(jobs, leases, "resumed work left by a previous run");
    }
    Ok((Arc::new(embedded), lock))
}

/// The AWS home from the environment; its SDK endpoints come from `AWS_ENDPOINT_URL*`.
#[cfg(feature = "aws")]
pub async fn aws_home() -> bealert_aws::AwsHome {
    let settings = bealert_aws::Settings::from_env();
    tracing::info!(tables = ?settings.tables, queues = %settings.queue_prefix, "AWS home");
    bealert_aws::AwsHome::new(&bealert_aws::sdk_config().await, settings)
}

/// Sweeps expired personal data at start and every hour (see `Embedded::sweep`).
async fn sweeper(
    embedded: Arc<Embedded>,
    retention: Duration,
    rotate_after: Duration,
    shutdown: CancellationToken,
) {
    loop {
        match embedded
            .sweep(bealert_app::now_ms(), retention, rotate_after)
            .await
        {
            Ok(s) if s != bealert_embedded::Swept::default() => {
                tracing::info!(?s, "expired personal data swept")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention sweep failed; next hour again"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}

impl Local {
    /// Starts a home's pollers (the stand-ins for Lambda event source mappings).
    pub async fn start(home: &Home, tuning: &Tuning) -> anyhow::Result<Self> {
        match home {
            Home::Embedded(dir) => {
                let (embedded, lock) = open_embedded(dir).await?;
                let mut config = SignupConfig::with_secret(embedded.signup_secret()?);
                if let Some(url) = &tuning.public_url {
                    config.public_url = url.trim_end_matches('/').to_string();
                }
                let signup = (embedded.signup_ports(), config);
                let mut local =
                    Self::with_signup(embedded.ports(), Some(signup), tuning, Some(lock));
                local.workers.spawn(sweeper(
                    embedded,
                    tuning.retention(),
                    Duration::from_secs(u64::from(tuning.outbox_rotate_hours) * 3600),
                    local.shutdown.clone(),
                ));
                Ok(local)
            }
            #[cfg(feature = "aws")]
            Home::Aws => Ok(Self::with_signup(
                aws_home().await.ports(),
                None,
                tuning,
                None,
            )),
            #[cfg(not(feature = "aws"))]
            Home::Aws => crate::no_aws(),
        }
    }

    /// The app and its pollers on ports built elsewhere, with the public
    /// signup if its ports are given.
    pub fn with_signup(
        ports: bealert_app::ports::Ports,
        signup: Option<(SignupPorts, SignupConfig)>,
        tuning: &Tuning,
        lock: Option<DataDirLock>,
    ) -> Self {
        let config = AppConfig {
            rates: [tuning.sms_rate, tuning.voice_rate, tuning.email_rate],
            ..AppConfig::default()
        };
        let mut app = App::new(ports, config);
        if let Some((ports, config)) = signup {
            app = app.with_signup(ports, config);
        }
        let app = Arc::new(app);
        let shutdown = CancellationToken::new();
        let mut workers = JoinSet::new();
        let mut spawn = |queue: &str, concurrency: usize| {
            let mut opts = WorkerOptions::new(queue, concurrency);
            opts.visibility = Duration::from_secs(120);
            workers.spawn(worker::run(app.clone(), opts, shutdown.clone()));
        };
        spawn(RESOLVE_QUEUE, 2);
        for c in Channel::ALL {
            spawn(send_queue(c), 2);
        }
        Self {
            app,
            shutdown,
            workers,
            _lock: lock,
        }
    }

    /// Stops the workers after the jobs in hand.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.workers.join_next().await.is_some() {}
    }
}
