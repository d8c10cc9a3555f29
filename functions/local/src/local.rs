//! The local runtime: a home's ports, the app, and a poller per queue.

use anyhow::Context;
use bealert_app::App;
use bealert_app::jobs::{BROADCAST_QUEUE, Lane, RESOLVE_QUEUE, send_queue_in};
use bealert_app::ports::{BroadcastPorts, Gateway, Gateways, SignupPorts};
use bealert_app::usecases::AppConfig;
use bealert_app::usecases::networks::BroadcastConfig;
use bealert_app::usecases::signup::SignupConfig;
use bealert_app::worker::{self, WorkerOptions};
use bealert_core::Channel;
use bealert_embedded::{DataDirLock, Embedded};
use bealert_providers::netsim::NetworkSimulator;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Knobs of the local runner, from flags or environment.
#[derive(clap::Args, Debug, Clone)]
pub struct Tuning {
    /// Which alerts wait for a second person's approval: actual (Actual
    /// alerts; exercises and tests go at once), all, or none.
    #[arg(long, env = "BEALERT_APPROVAL", default_value = "actual")]
    pub approval: bealert_core::lifecycle::ApprovalPolicy,
    /// How long an alert waits for approval before it expires: seconds,
    /// minutes or hours, e.g. 90s, 30m, 2h.
    #[arg(long, env = "BEALERT_APPROVAL_WAIT", default_value = "30m", value_parser = parse_wait)]
    pub approval_wait: Duration,
    /// How long after its creation an alert may still be updated,
    /// cancelled or all-cleared (seconds, minutes or hours, e.g. 48h).
    #[arg(long, env = "BEALERT_FOLLOW_UP_WINDOW", default_value = "48h", value_parser = parse_wait)]
    pub follow_up_window: Duration,
    /// SMS per second (the aggregator's contract); unlimited if unset.
    #[arg(long, env = "BEALERT_SMS_RATE")]
    pub sms_rate: Option<u32>,
    /// Voice calls started per second; unlimited if unset.
    #[arg(long, env = "BEALERT_VOICE_RATE")]
    pub voice_rate: Option<u32>,
    /// E-mails per second; unlimited if unset.
    #[arg(long, env = "BEALERT_EMAIL_RATE")]
    pub email_rate: Option<u32>,
    /// SMS a sender may take at once (1 to the rate; default a fiftieth of
    /// it). The bucket refills at rate - burst + 1 a second, so no second
    /// carries more than the rate, whatever the burst.
    #[arg(long, env = "BEALERT_SMS_BURST")]
    pub sms_burst: Option<u32>,
    /// Voice calls a sender may start at once (as --sms-burst).
    #[arg(long, env = "BEALERT_VOICE_BURST")]
    pub voice_burst: Option<u32>,
    /// E-mails a sender may take at once (as --sms-burst).
    #[arg(long, env = "BEALERT_EMAIL_BURST")]
    pub email_burst: Option<u32>,
    /// E-mail's warm-up: after this many seconds without sending, e-mail
    /// starts at a tenth of --email-rate and reaches it over as many
    /// seconds (mail providers distrust a cold sender that bursts); 0: none.
    #[arg(long, env = "BEALERT_EMAIL_RAMP_SECS", default_value_t = 0)]
    pub email_ramp_secs: u32,
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
    /// A tile server for the operator console's map, e.g.
    /// `https://tile.openstreetmap.org/{z}/{x}/{y}.png`; off by default
    /// (the console draws its bundled outlines and asks no third party).
    #[arg(long, env = "BEALERT_CONSOLE_TILES")]
    pub console_tiles: Option<String>,
    /// Alert-SMS: active devices per person present; the estimate's people
    /// figures are devices divided by it.
    #[arg(long, env = "BEALERT_DEVICES_PER_PERSON", default_value_t = 1.2)]
    pub devices_per_person: f64,
    /// Alert-SMS: a network's cells older than this are flagged stale.
    #[arg(long, env = "BEALERT_CELLS_STALE_AFTER_HOURS", default_value_t = 168)]
    pub cells_stale_after_hours: u64,
    /// Alert-SMS: a network's HTTP gateway, NAME=URL (repeatable; its token
    /// from BEALERT_NETWORK_TOKEN_<NAME>). Other networks use the simulator.
    #[arg(long, env = "BEALERT_NETWORK_GATEWAY", value_delimiter = ',')]
    pub network_gateway: Vec<String>,
    /// Alert-SMS simulator: how a network behaves, NAME=BEHAVIOUR with
    /// healthy, slow:MS, down, fail:N, refuse, drop:SHARE (joined by +).
    #[arg(long, env = "BEALERT_NETWORK_SIM", value_delimiter = ',')]
    pub network_sim: Vec<String>,
    /// SMS providers in the order they are tried, comma-separated: the
    /// home's own (`outbox` here; `sns` in the AWS home), `outbox:NAME`
    /// (another outbox provider, its lines marked with NAME) and
    /// `http:NAME=URL` (an SMS aggregator; token from
    /// BEALERT_PROVIDER_TOKEN_<NAME>). A provider that certainly did not
    /// take a message passes it to the next; one that may have sent it
    /// keeps it. Default: the home's own.
    #[arg(long, env = "BEALERT_SMS_PROVIDERS")]
    pub sms_providers: Option<String>,
    /// Voice providers, as --sms-providers (`voice` in the AWS home).
    #[arg(long, env = "BEALERT_VOICE_PROVIDERS")]
    pub voice_providers: Option<String>,
    /// E-mail providers, as --sms-providers (`ses` in the AWS home), and
    /// `smtp:NAME=URL`, an SMTP relay (`smtp://host:port`,
    /// `smtp://host:587?tls=required`, `smtps://host`), sending as
    /// BEALERT_EMAIL_FROM, its account from BEALERT_PROVIDER_USER_<NAME>
    /// and BEALERT_PROVIDER_TOKEN_<NAME>.
    #[arg(long, env = "BEALERT_EMAIL_PROVIDERS")]
    pub email_providers: Option<String>,
    /// The signup's own SMS providers, for verification codes and
    /// self-service links, as --sms-providers (default: the home's own, a
    /// chain apart from the alerts'). Give codes another account than
    /// alerts: a spend limit or a suspension caused by signup traffic then
    /// never silences alerts.
    #[arg(long, env = "BEALERT_CODE_SMS_PROVIDERS")]
    pub code_sms_providers: Option<String>,
    /// The signup's own voice providers (a fixed line's code comes by a
    /// call), as --code-sms-providers.
    #[arg(long, env = "BEALERT_CODE_VOICE_PROVIDERS")]
    pub code_voice_providers: Option<String>,
    /// The signup's own e-mail providers, as --code-sms-providers.
    #[arg(long, env = "BEALERT_CODE_EMAIL_PROVIDERS")]
    pub code_email_providers: Option<String>,
    /// Verification messages (codes and self-service links) per hour over
    /// every citizen; beyond it new signups and codes are refused (429)
    /// until the next hour. Alerts never count against it. Default 2000.
    #[arg(long, env = "BEALERT_SIGNUP_CODES_PER_HOUR")]
    pub signup_codes_per_hour: Option<u64>,
    /// Phone signups per hour from the page without its script (no proof
    /// of work) over every citizen. Default 200.
    #[arg(long, env = "BEALERT_SIGNUP_NO_SCRIPT_PER_HOUR")]
    pub signup_no_script_per_hour: Option<u64>,
    /// First wait before a delivery a provider could not take is tried
    /// again (doubling per attempt, at most a minute, with jitter).
    #[arg(long, env = "BEALERT_RETRY_BASE_MS", default_value_t = 1000)]
    pub retry_base_ms: u64,
    /// Send jobs (up to 500 deliveries each) handled at once per channel
    /// and lane. Four keep a rate-limited channel's budget in use while
    /// the others claim and record.
    #[arg(long, env = "BEALERT_SEND_CONCURRENCY", default_value_t = 4)]
    pub send_concurrency: usize,
    /// Faults injected into providers, for drills and tests:
    /// PROVIDER:fail=R,down=D,throttle=R joined by `;`, e.g.
    /// `outbox:fail=0.5;backup:down=30s`.
    #[arg(long, env = "BEALERT_PROVIDER_FAULTS")]
    pub provider_faults: Option<String>,
    /// Alert-SMS: seconds a network may take to answer.
    #[arg(long, env = "BEALERT_NETWORK_TIMEOUT_SECS", default_value_t = 10)]
    pub network_timeout_secs: u64,
    /// Alert-SMS: first wait before retrying a network, doubling per attempt.
    #[arg(long, env = "BEALERT_NETWORK_RETRY_MS", default_value_t = 1000)]
    pub network_retry_ms: u64,
}

/// `90s`, `30m`, `2h`: a positive wait.
pub fn parse_wait(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: give a number with s, m, h or d, e.g. 30m")),
    };
    match n.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n * scale)),
        _ => Err(format!(
            "{s:?}: give a positive number with s, m, h or d, e.g. 30m"
        )),
    }
}

impl Default for Tuning {
    /// The flags' own defaults.
    fn default() -> Self {
        Self {
            approval: bealert_core::lifecycle::ApprovalPolicy::default(),
            approval_wait: Duration::from_secs(30 * 60),
            follow_up_window: Duration::from_secs(48 * 3600),
            sms_rate: None,
            voice_rate: None,
            email_rate: None,
            sms_burst: None,
            voice_burst: None,
            email_burst: None,
            email_ramp_secs: 0,
            sms_providers: None,
            voice_providers: None,
            email_providers: None,
            code_sms_providers: None,
            code_voice_providers: None,
            code_email_providers: None,
            signup_codes_per_hour: None,
            signup_no_script_per_hour: None,
            provider_faults: None,
            retry_base_ms: 1000,
            send_concurrency: 4,
            retention_days: 90,
            outbox_rotate_hours: 24,
            public_url: None,
            console_tiles: None,
            devices_per_person: 1.2,
            cells_stale_after_hours: 168,
            network_gateway: Vec::new(),
            network_sim: Vec::new(),
            network_timeout_secs: 10,
            network_retry_ms: 1000,
        }
    }
}

impl Tuning {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 86_400)
    }

    /// Alert-SMS's settings; refuses a bad gateway or behaviour.
    pub fn broadcast_config(&self) -> anyhow::Result<BroadcastConfig> {
        if !(self.devices_per_person.is_finite() && self.devices_per_person > 0.0) {
            anyhow::bail!(
                "--devices-per-person must be a positive number (got {})",
                self.devices_per_person
            );
        }
        Ok(BroadcastConfig {
            devices_per_person: self.devices_per_person,
            stale_after: Duration::from_secs(self.cells_stale_after_hours * 3600),
            gateway_timeout: Duration::from_secs(self.network_timeout_secs.max(1)),
            retry_base: Duration::from_millis(self.network_retry_ms.max(1)),
            ..BroadcastConfig::default()
        })
    }

    /// Each network's gateway: HTTP where configured, else `simulator`
    /// (set to behave as `--network-sim` says).
    pub fn network_gateways(
        &self,
        simulator: &NetworkSimulator,
    ) -> anyhow::Result<Arc<dyn bealert_app::ports::NetworkGateways>> {
        for spec in &self.network_sim {
            let (name, behaviour) = spec.split_once('=').ok_or_else(|| {
                anyhow::anyhow!(
                    "--network-sim {spec:?}: write NAME=BEHAVIOUR, e.g. orange=slow:5000"
                )
            })?;
            simulator.set(
                name,
                behaviour.parse().map_err(|e: String| anyhow::anyhow!(e))?,
            );
        }
        let timeout = Duration::from_secs(self.network_timeout_secs.max(1));
        let mut http = std::collections::HashMap::new();
        for spec in &self.network_gateway {
            let (name, gw) = bealert_providers::network_http::parse_gateway(spec, timeout)
                .map_err(|e| anyhow::anyhow!(e))?;
            http.insert(
                name,
                Arc::new(gw) as Arc<dyn bealert_app::ports::NetworkGateway>,
            );
        }
        Ok(Arc::new(bealert_providers::network_http::GatewayRoutes {
            http,
            fallback: Arc::new(simulator.clone()),
        }))
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
    /// Jobs handled per queue, and their time (the benchmark's Lambda figures).
    pub jobs: Arc<worker::JobStats>,
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
    let started = std::time::Instant::now();
    if let Some(r) = embedded
        .ensure_shipped_units(&|_, _| {})
        .await
        .map_err(|e| anyhow::anyhow!("loading the shipped administrative units: {e}"))?
    {
        tracing::info!(
            units = r.units,
            vertices = r.vertices,
            seconds = started.elapsed().as_secs_f64(),
            "loaded Belgium's administrative units (first start)"
        );
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

/// Makes one of a home's own providers for a channel from its kind and name.
pub type OwnProvider<'a> = &'a dyn Fn(Channel, &str, &str) -> Result<Arc<dyn Gateway>, String>;

impl Tuning {
    /// Each channel's provider chain: the flags' lists (default: the
    /// home's own, named `defaults`), `own` making the home's providers.
    pub fn provider_chains(
        &self,
        defaults: [&str; 3],
        own: OwnProvider<'_>,
    ) -> anyhow::Result<Gateways> {
        let lists = [
            ("sms", &self.sms_providers),
            ("voice", &self.voice_providers),
            ("email", &self.email_providers),
        ];
        self.chains(lists, defaults, own)
    }

    /// The signup's own chains (`--code-sms-providers`...): codes never
    /// leave through the alerts' chains.
    pub fn code_chains(
        &self,
        defaults: [&str; 3],
        own: OwnProvider<'_>,
    ) -> anyhow::Result<Gateways> {
        let lists = [
            ("code-sms", &self.code_sms_providers),
            ("code-voice", &self.code_voice_providers),
            ("code-email", &self.code_email_providers),
        ];
        self.chains(lists, defaults, own)
    }

    /// The signup's rules from the flags, over the defaults.
    pub fn signup_config(&self, secret: Vec<u8>) -> SignupConfig {
        let mut config = SignupConfig::with_secret(secret);
        if let Some(url) = &self.public_url {
            config.public_url = url.trim_end_matches('/').to_string();
        }
        if let Some(n) = self.signup_codes_per_hour {
            config.codes_per_hour = n;
        }
        if let Some(n) = self.signup_no_script_per_hour {
            config.no_script_per_hour = n;
        }
        config
    }

    fn chains(
        &self,
        lists: [(&str, &Option<String>); 3],
        defaults: [&str; 3],
        own: OwnProvider<'_>,
    ) -> anyhow::Result<Gateways> {
        let faults = bealert_app::providers::parse_faults(
            self.provider_faults.as_deref().unwrap_or_default(),
        )
        .map_err(|e| anyhow::anyhow!("--provider-faults: {e}"))?;
        let mut chains: Vec<Arc<dyn Gateway>> = Vec::new();
        for ((flag, list), (channel, default)) in lists
            .into_iter()
            .zip(Channel::ALL.into_iter().zip(defaults))
        {
            let list = list.as_deref().unwrap_or(default);
            let chain =
                bealert_providers::chain::build_chain(channel, list, &faults, &|kind, name| {
                    own(channel, kind, name)
                })
                .map_err(|e| anyhow::anyhow!("--{flag}-providers: {e}"))?;
            chains.push(Arc::new(chain));
        }
        let [sms, voice, email]: [Arc<dyn Gateway>; 3] = chains
            .try_into()
            .map_err(|_| anyhow::anyhow!("three channels"))?;
        Ok(Gateways { sms, voice, email })
    }

    /// Each channel's limit, from its rate and burst flags.
    pub fn limits(&self) -> anyhow::Result<[Option<bealert_app::rate::Limit>; 3]> {
        let limit = |flag: &str, rate: Option<u32>, burst: Option<u32>| match rate {
            None | Some(0) => anyhow::Ok(None),
            Some(r) => bealert_app::rate::Limit::new(r, burst)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("--{flag}-burst: {e}")),
        };
        Ok([
            limit("sms", self.sms_rate, self.sms_burst)?,
            limit("voice", self.voice_rate, self.voice_burst)?,
            limit("email", self.email_rate, self.email_burst)?
                .map(|l| l.with_ramp(self.email_ramp_secs)),
        ])
    }
}

impl Local {
    /// Starts a home's pollers (the stand-ins for Lambda event source mappings).
    pub async fn start(home: &Home, tuning: &Tuning) -> anyhow::Result<Self> {
        match home {
            Home::Embedded(dir) => {
                let (embedded, lock) = open_embedded(dir).await?;
                let outboxes = embedded.outbox.clone();
                let own = |channel: Channel,
                           kind: &str,
                           name: &str|
                 -> Result<Arc<dyn Gateway>, String> {
                    let outbox = outboxes[usize::from(channel.index())].clone();
                    match (kind, name) {
                        ("outbox", "outbox") => Ok(outbox as Arc<dyn Gateway>),
                        ("outbox", name) => Ok(Arc::new(bealert_embedded::outbox::OutboxRoute {
                            outbox,
                            name: name.to_string(),
                        })),
                        (kind, _) => Err(format!(
                            "{kind}: not a provider of the embedded home (outbox, outbox:NAME, http:NAME=URL, smtp:NAME=URL)"
                        )),
                    }
                };
                let mut ports = embedded.ports();
                ports.gateways = tuning.provider_chains(["outbox"; 3], &own)?;
                let mut signup_ports = embedded.signup_ports();
                signup_ports.gateways = tuning.code_chains(["outbox"; 3], &own)?;
                let signup = (
                    signup_ports,
                    tuning.signup_config(embedded.signup_secret()?),
                );
                let broadcast = (
                    embedded.broadcast_ports(tuning.network_gateways(&embedded.simulator)?),
                    tuning.broadcast_config()?,
                );
                let public = embedded.public_ports(broadcast.1.gateway_timeout);
                let mut local = Self::with_ports(
                    ports,
                    Some(signup),
                    Some(broadcast),
                    Some(public),
                    tuning,
                    Some(lock),
                    None,
                )?;
                local.workers.spawn(sweeper(
                    embedded,
                    tuning.retention(),
                    Duration::from_secs(u64::from(tuning.outbox_rotate_hours) * 3600),
                    local.shutdown.clone(),
                ));
                Ok(local)
            }
            #[cfg(feature = "aws")]
            Home::Aws => {
                let aws = aws_home().await;
                // Networks without --network-gateway use the simulator here.
                let simulator = NetworkSimulator::new();
                let broadcast = (
                    aws.broadcast_ports(tuning.network_gateways(&simulator)?),
                    tuning.broadcast_config()?,
                );
                // Drills as EventBridge schedules when the drill function
                // is configured; otherwise this process runs them.
                let drills = aws
                    .drill_scheduler()
                    .map(|s| s as Arc<dyn bealert_app::ports::DrillScheduler>);
                let gateways = tuning
                    .provider_chains(["sns", "voice", "ses"], &|channel, kind, _| {
                        aws.own_provider(channel, kind)
                    })?;
                // Public channels: outlets over HTTP, `sim` ones simulated here.
                let public = aws.public_ports(
                    broadcast.1.gateway_timeout,
                    Some(bealert_providers::publicsim::PublicSimulator::new()),
                );
                Self::with_ports(
                    aws.ports_with(gateways),
                    None,
                    Some(broadcast),
                    Some(public),
                    tuning,
                    None,
                    drills,
                )
            }
            #[cfg(not(feature = "aws"))]
            Home::Aws => crate::backend::no_aws(),
        }
    }

    /// The app and its pollers on ports built elsewhere, with the public
    /// signup and Alert-SMS if their ports are given.
    pub fn with_ports(
        ports: bealert_app::ports::Ports,
        signup: Option<(SignupPorts, SignupConfig)>,
        broadcast: Option<(BroadcastPorts, BroadcastConfig)>,
        public: Option<bealert_app::ports::PublicPorts>,
        tuning: &Tuning,
        lock: Option<DataDirLock>,
        drills: Option<Arc<dyn bealert_app::ports::DrillScheduler>>,
    ) -> anyhow::Result<Self> {
        let config = AppConfig {
            approval: tuning.approval,
            approval_wait: tuning.approval_wait,
            follow_up_window: tuning.follow_up_window,
            limits: tuning.limits()?,
            retry_base: Duration::from_millis(tuning.retry_base_ms.max(1)),
            public_url: tuning
                .public_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_string()),
            console_tiles: tuning
                .console_tiles
                .clone()
                .filter(|t| !t.trim().is_empty()),
            ..AppConfig::default()
        };
        let mut app = App::new(ports, config);
        if let Some((ports, config)) = signup {
            app = app.with_signup(ports, config);
        }
        if let Some((ports, config)) = broadcast {
            app = app.with_broadcast(ports, config);
        }
        if let Some(p) = public {
            app = app.with_public(p);
        }
        if let Some(s) = drills {
            app = app.with_drill_scheduler(s);
        }
        let app = Arc::new(app);
        let shutdown = CancellationToken::new();
        let mut workers = JoinSet::new();
        let jobs = Arc::new(worker::JobStats::default());
        let mut spawn = |queue: &str, concurrency: usize| {
            let mut opts = WorkerOptions::new(queue, concurrency);
            opts.visibility = Duration::from_secs(120);
            opts.stats = Some(jobs.clone());
            workers.spawn(worker::run(app.clone(), opts, shutdown.clone()));
        };
        spawn(RESOLVE_QUEUE, 2);
        // Every lane of every channel has its own pollers: a cancel is
        // picked up at once, however many messages the alert it cancels
        // still has queued.
        for c in Channel::ALL {
            for lane in Lane::ALL {
                spawn(send_queue_in(c, lane), tuning.send_concurrency.max(1));
            }
        }
        // One job per alert and network: a slow network holds one slot.
        spawn(BROADCAST_QUEUE, 8);
        // Each public channel its own queue: a slow social network never
        // holds a siren.
        for kind in bealert_core::outlet::OutletKind::ALL {
            spawn(bealert_app::jobs::public_queue(kind), 4);
        }
        // Drills, when no external scheduler runs them: every second, the
        // runs whose time has come (and the ones missed while stopped).
        if !app.has_drill_scheduler() {
            let (app, stop) = (app.clone(), shutdown.clone());
            workers.spawn(async move {
                loop {
                    if let Err(e) = app.fire_due_drills().await {
                        tracing::error!(error = %e, "drills could not be run");
                    }
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            });
        }
        Ok(Self {
            app,
            jobs,
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
