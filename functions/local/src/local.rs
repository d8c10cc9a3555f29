//! The local runtime: embedded ports, the app, and a worker per queue.

use anyhow::Context;
use bealert_app::App;
use bealert_app::jobs::{RESOLVE_QUEUE, send_queue};
use bealert_app::usecases::AppConfig;
use bealert_app::worker::{self, WorkerOptions};
use bealert_core::Channel;
use bealert_embedded::{DataDirLock, Embedded};
use std::path::Path;
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
}

pub struct Local {
    pub app: Arc<App>,
    shutdown: CancellationToken,
    workers: JoinSet<()>,
    _lock: DataDirLock,
}

impl Local {
    /// Opens the data directory (exclusively), recovers from a crash, starts workers.
    pub async fn start(dir: &Path, tuning: &Tuning) -> anyhow::Result<Self> {
        let lock = DataDirLock::acquire(dir)?;
        let embedded = Embedded::open(dir).with_context(|| format!("opening {}", dir.display()))?;
        let (jobs, leases) = embedded
            .recover(&lock)
            .await
            .map_err(|e| anyhow::anyhow!("recovering {}: {e}", dir.display()))?;
        if jobs + leases > 0 {
            tracing::info!(jobs, leases, "resumed work left by a previous run");
        }
        let config = AppConfig {
            rates: [tuning.sms_rate, tuning.voice_rate, tuning.email_rate],
            ..AppConfig::default()
        };
        let app = Arc::new(App::new(embedded.ports(), config));
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
        Ok(Self {
            app,
            shutdown,
            workers,
            _lock: lock,
        })
    }

    /// Stops the workers after the jobs in hand.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.workers.join_next().await.is_some() {}
    }
}
