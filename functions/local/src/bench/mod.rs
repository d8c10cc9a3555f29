//! `bealert bench`: import, zone preview and alert throughput, printed as figures.
//!
//! Runs on the embedded home with synthetic subscribers spread like
//! Belgium's population. It measures; it never asserts on time.

mod alert_sms;
mod cancel;
mod halt;
mod national;
mod signup;

use crate::local::{Home, Local, Tuning};
use crate::scenario;
use bealert_core::Channel;
use bealert_core::area::AreaRequest;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Synthetic subscribers to import (default 1,000,000 embedded, 100,000 aws).
    #[arg(long)]
    subscribers: Option<usize>,
    /// SMS recipients of the alert benchmark (default 100,000 embedded, 10,000 aws).
    #[arg(long)]
    sms_recipients: Option<u64>,
    /// embedded, or aws: DynamoDB, SQS, SNS at AWS_ENDPOINT_URL* (LocalStack +
    /// DynamoDB Local: `eval "$(tests/stack.sh env)"`), in fresh bench tables and queues.
    #[arg(long, value_enum, default_value = "embedded")]
    backend: crate::backend::Backend,
    /// Runs per preview figure.
    #[arg(long, default_value_t = 15)]
    runs: usize,
    /// Data directory (default: a temporary one, deleted afterwards).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Verified signups through the page's form endpoints (embedded; 0 skips).
    #[arg(long, default_value_t = 3000)]
    signups: usize,
    /// Signups in flight at once.
    #[arg(long, default_value_t = 32)]
    signup_concurrency: usize,
    /// SMS recipients of the whole-country alert, at 10,000 SMS/s and
    /// unlimited (embedded; the population is topped up to hold them; 0 skips).
    #[arg(long, default_value_t = 1_000_000)]
    national_sms: u64,
    /// Cells per synthetic network of the Alert-SMS figures (embedded; 0 skips).
    #[arg(long, default_value_t = 10_000)]
    network_cells: usize,
    /// Also write every imported address as `subscriber,lon,lat` lines to
    /// this file (for the PostGIS comparison, tests/bench_postgis.sh).
    #[arg(long)]
    export_addresses: Option<PathBuf>,
    /// Only the import and the whole-country alert (embedded): the two
    /// national-scale figures, without the previews and other alerts.
    #[arg(long)]
    national_only: bool,
    /// AWS home: US$ per million DynamoDB on-demand read request units
    /// (us-east-1 after November 2024; check your region's price list).
    #[arg(long, default_value_t = 0.125)]
    price_read: f64,
    /// AWS home: US$ per million DynamoDB on-demand write request units.
    #[arg(long, default_value_t = 0.625)]
    price_write: f64,
    /// AWS home: US$ per million SQS standard requests.
    #[arg(long, default_value_t = 0.40)]
    price_sqs: f64,
    /// AWS home: US$ per SMS to Belgium (your SNS or aggregator price),
    /// shown apart from the infrastructure.
    #[arg(long)]
    sms_price: Option<f64>,
    /// AWS home: US$ per GB-second of Lambda (arm64, us-east-1, first tier).
    #[arg(long, default_value_t = 0.0000133334)]
    price_lambda_gbs: f64,
    /// AWS home: US$ per million Lambda requests.
    #[arg(long, default_value_t = 0.20)]
    price_lambda_requests: f64,
}

/// The template's event source mapping of each queue: the function's
/// jobs per invocation (`BatchSize`) and its memory in MB
/// (`infra/template.yaml`; the test below holds them to it).
fn lambda_of(queue: &str) -> Option<(&'static str, u64, u64)> {
    match queue {
        "resolve" => Some(("resolve-zone", 5, 1024)),
        "send-sms" | "send-sms-cancel" | "send-sms-routine" => Some(("send-sms", 2, 256)),
        _ => None,
    }
}

/// Jobs each queue's pollers handled between `before` and `after`, as the
/// Lambda functions would: invocations at the template's batch sizes (at
/// least; fewer full batches mean more), and their duration as the summed
/// handler time (at most: an invocation's jobs run side by side). On the
/// emulators a handler waits on slower stand-ins than AWS's services.
fn print_lambda(
    label: &str,
    before: &std::collections::BTreeMap<String, bealert_app::worker::QueueStats>,
    after: &std::collections::BTreeMap<String, bealert_app::worker::QueueStats>,
    deliveries: u64,
    args: &BenchArgs,
) {
    let million = 1_000_000.0;
    let per = deliveries.max(1) as f64;
    let (mut invocations, mut gbs) = (0.0, 0.0);
    for (queue, a) in after {
        let b = before.get(queue).copied().unwrap_or_default();
        let (jobs, busy) = (a.jobs - b.jobs, (a.busy - b.busy).as_secs_f64());
        if jobs == 0 {
            continue;
        }
        match lambda_of(queue) {
            Some((function, batch, mb)) => {
                let calls = jobs.div_ceil(batch) as f64;
                invocations += calls;
                gbs += busy * mb as f64 / 1024.0;
                println!(
                    "{label}: Lambda {function:<13} ({queue}): {jobs} jobs, at least {calls:.0} invocations of {batch}, {busy:.1} s of handlers at {mb} MB"
                );
            }
            None => println!("{label}: queue {queue}: {jobs} jobs, {busy:.1} s of handlers"),
        }
    }
    let cost = invocations / per * args.price_lambda_requests
        + gbs / per * million * args.price_lambda_gbs;
    println!(
        "{label}: Lambda for a 1,000,000-SMS alert at these rates: about ${cost:.2} ({:.4} invocations and {:.5} GB-s per SMS delivery; ${}/M requests, ${}/GB-s)",
        invocations / per,
        gbs / per,
        args.price_lambda_requests,
        args.price_lambda_gbs
    );
}

/// Writes the addresses of the subscribers `synthetic_bodies(n, 1, _)`
/// imports: the same population, drawn again.
fn export_addresses(path: &std::path::Path, n: usize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for (i, s) in bealert_synth::Population::new(1).take(n).enumerate() {
        for a in &s.addresses {
            writeln!(out, "{i},{},{}", a.lon, a.lat)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let pick = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (pick(0.0), pick(0.5), pick(0.9))
}

/// Requests and reads, for the AWS home's cost figures:
/// (DynamoDB requests, items read, SQS requests) so far; and the capacity
/// DynamoDB reports consumed, by table: (read units, write units, requests).
struct Costs(
    Box<dyn Fn() -> (u64, u64, u64) + Send + Sync>,
    Box<dyn Fn() -> Capacity + Send + Sync>,
    CounterSizes,
);

/// The sizes of an alert's counter items, in bytes.
type CounterSizes = Box<
    dyn Fn(bealert_core::AlertId) -> futures::future::BoxFuture<'static, Vec<usize>> + Send + Sync,
>;

/// (read units, write units, requests).
type Spent = (f64, f64, u64);

/// By (table, operation).
type Capacity = std::collections::BTreeMap<(String, String), Spent>;

impl Costs {
    fn now(&self) -> (u64, u64, u64) {
        (self.0)()
    }

    fn capacity(&self) -> Capacity {
        (self.1)()
    }

    async fn counter_sizes(&self, alert: bealert_core::AlertId) -> Vec<usize> {
        (self.2)(alert).await
    }
}

/// Prints what DynamoDB reports consumed between `before` and now, per
/// table (and under it, per operation) and in all, per SMS delivery.
fn print_capacity(label: &str, before: &Capacity, after: &Capacity, deliveries: u64) -> (f64, f64) {
    let per = deliveries.max(1) as f64;
    let mut tables: std::collections::BTreeMap<&str, Vec<(&str, Spent)>> =
        std::collections::BTreeMap::new();
    for ((table, op), (r1, w1, n1)) in after {
        let (r0, w0, n0) = before
            .get(&(table.clone(), op.clone()))
            .copied()
            .unwrap_or_default();
        let spent = (r1 - r0, w1 - w0, n1 - n0);
        if spent.2 > 0 {
            tables.entry(table).or_default().push((op, spent));
        }
    }
    let (mut read, mut write) = (0.0, 0.0);
    for (table, ops) in &tables {
        let (r, w, n) = ops.iter().fold((0.0, 0.0, 0), |(r, w, n), (_, s)| {
            (r + s.0, w + s.1, n + s.2)
        });
        read += r;
        write += w;
        println!(
            "{label}: DynamoDB {table:<28} {:>7.3} read units, {:>7.3} write units, {:>6.3} requests per SMS delivery",
            r / per,
            w / per,
            n as f64 / per
        );
        for (op, (r, w, n)) in ops {
            println!(
                "{label}:   {op:<34} {:>7.3} read units, {:>7.3} write units, {:>6.3} requests",
                r / per,
                w / per,
                *n as f64 / per
            );
        }
    }
    println!(
        "{label}: DynamoDB, every table: {:.3} read units and {:.3} write units per SMS delivery (goals <= 1.3 items read, <= 3 write units); {:.0} read and {:.0} write units in all",
        read / per,
        write / per,
        read,
        write
    );
    (read / per, write / per)
}

/// The bench's AWS home: fresh tables and queues, their cost counters, and
/// a second client that follows the alert (so that the live counts the bench
/// polls every 25 ms are not billed to the alert).
#[cfg(feature = "aws")]
async fn aws_bench(
    subscribers: usize,
    cores: usize,
) -> anyhow::Result<(Local, Option<Costs>, Option<Arc<bealert_app::App>>)> {
    let prefix = format!("bench{}-", std::process::id());
    let mut settings = bealert_aws::Settings::from_env();
    settings.tables = bealert_aws::Tables::with_prefix(&prefix);
    settings.queue_prefix = prefix.clone();
    settings.queue_urls.clear();
    let sdk = bealert_aws::sdk_config().await;
    // The home's DynamoDB client reports what each request consumed.
    let meter = Arc::new(bealert_aws::CapacityMeter::default());
    let dynamodb = bealert_aws::metered_client(&aws_sdk_dynamodb::Client::new(&sdk), meter.clone());
    let home = bealert_aws::AwsHome::with_dynamodb(&sdk, dynamodb, settings.clone());
    let observer = bealert_aws::AwsHome::new(&sdk, settings);
    home.setup()
        .await
        .map_err(|e| anyhow::anyhow!("setting up the bench tables and queues: {e}"))?;
    println!(
        "bealert bench — aws home ({prefix}* tables and queues), {subscribers} subscribers, {cores} cores"
    );
    let (dynamo, queue) = (home.store.usage(), home.queue.clone());
    let costs = Costs(
        Box::new(move || {
            let (r, i) = dynamo.snapshot();
            (r, i, queue.requests())
        }),
        Box::new(move || {
            meter
                .by_operation()
                .into_iter()
                .map(|((t, op), u)| ((t, op.to_string()), (u.read, u.write, u.requests)))
                .collect()
        }),
        {
            let store = observer.store.clone();
            Box::new(move |alert| {
                let store = store.clone();
                Box::pin(async move { store.counter_item_sizes(alert).await.unwrap_or_default() })
            })
        },
    );
    Ok((
        Local::with_ports(
            home.ports(),
            None,
            None,
            None,
            &Tuning::default(),
            None,
            None,
        )?,
        Some(costs),
        Some(Arc::new(bealert_app::App::new(
            observer.ports_with(bealert_aws::AwsHome::no_gateways()),
            bealert_app::usecases::AppConfig::default(),
        ))),
    ))
}

#[cfg(not(feature = "aws"))]
async fn aws_bench(
    _subscribers: usize,
    _cores: usize,
) -> anyhow::Result<(Local, Option<Costs>, Option<Arc<bealert_app::App>>)> {
    crate::backend::no_aws()
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let aws = args.backend == crate::backend::Backend::Aws;
    let subscribers = args
        .subscribers
        .unwrap_or(if aws { 100_000 } else { 1_000_000 });
    let sms_recipients = args
        .sms_recipients
        .unwrap_or(if aws { 10_000 } else { 100_000 });
    let tmp = tempfile::Builder::new()
        .prefix("bealert-bench-")
        .tempdir()?;
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (local, costs, observer) = if aws {
        aws_bench(subscribers, cores).await?
    } else {
        println!(
            "bealert bench — {subscribers} subscribers, {cores} cores, data in {}",
            dir.display()
        );
        (
            Local::start(&Home::Embedded(dir.clone()), &Tuning::default()).await?,
            None,
            None,
        )
    };
    let app = local.app.clone();
    // The shipped units (the embedded home loaded them on start).
    bealert_app::usecases::geography::ensure_shipped_units(
        app.ports.geography.as_ref(),
        app.ports.subscribers.as_ref(),
        bealert_geodata::EDITION,
        bealert_geodata::belgium_units,
        &|_, _| {},
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (op, _) = app
        .create_operator(&format!("bench-{}", std::process::id()), "national")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (governor, _) = app
        .create_operator(
            &format!("bench-gov-{}", std::process::id()),
            "province:10000",
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    // 1. Import.
    let prep = Instant::now();
    let n = subscribers;
    let bodies =
        tokio::task::spawn_blocking(move || scenario::synthetic_bodies(n, 1, 10_000)).await?;
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "\nimport: {} JSON bodies of 10,000 ({:.0} MB) generated in {:.1} s (not timed)",
        bodies.len(),
        bytes as f64 / 1e6,
        prep.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.export_addresses {
        export_addresses(path, n)?;
        println!(
            "import: addresses written to {} (not timed)",
            path.display()
        );
    }
    let imp = scenario::import(&app, &op, bodies, n, true).await?;
    println!(
        "import: {} subscribers in {:.2} s = {:.0} subscribers/s (goal >= 50,000/s); {} rejected",
        imp.imported,
        imp.elapsed.as_secs_f64(),
        imp.imported as f64 / imp.elapsed.as_secs_f64(),
        imp.rejected
    );
    if args.national_only && !aws {
        local.stop().await;
        if args.national_sms > 0 {
            national::run(&dir, &op, subscribers, args.national_sms).await?;
        }
        return Ok(());
    }

    // 2. Previews: whole requests (parse, validation, covering, counting),
    // as a client sends them.
    use bealert_synth::cantons;
    let circles_5000: Vec<serde_json::Value> = (0..5000)
        .map(|i| serde_json::json!({"lat": 50.0 + (i % 70) as f64 * 0.02, "lon": 3.0 + (i / 70) as f64 * 0.05, "radius_km": 0.5}))
        .collect();
    let mut areas: Vec<(&str, serde_json::Value, f64)> = vec![
        (
            "province Antwerpen, NIS 10000",
            serde_json::json!({"geocodes": [{"name": "NIS", "value": "10000"}]}),
            1000.0,
        ),
        (
            "5 km circle, Herentals, by governor",
            serde_json::json!({"circles": [{"lat": 51.1766, "lon": 4.8366, "radius_km": 5.0}]}),
            30.0,
        ),
        (
            "5 km circle, Brussels",
            serde_json::json!({"circles": [{"lat": 50.8466, "lon": 4.3528, "radius_km": 5.0}]}),
            30.0,
        ),
        (
            "1,000-vertex polygon, Gent",
            serde_json::json!({"geojson": bealert_synth::wobbly_polygon(51.0543, 3.7174, 12.0, 1000, 9)}),
            60.0,
        ),
        (
            "whole country (643 vertices)",
            serde_json::json!({"geojson": serde_json::from_str::<serde_json::Value>(bealert_synth::BELGIUM_GEOJSON)?}),
            1000.0,
        ),
        (
            "canton Bastogne (22,070 v.)",
            serde_json::json!({"geojson": cantons::geometry(cantons::BASTOGNE)}),
            30.0,
        ),
        (
            "canton Turnhout-2 (15,707 v.)",
            serde_json::json!({"geojson": cantons::geometry(cantons::TURNHOUT_2)}),
            30.0,
        ),
        (
            "canton Brussel-1 (977 v.)",
            serde_json::json!({"geojson": cantons::geometry(cantons::BRUSSEL_1)}),
            30.0,
        ),
        (
            "Bastogne+Poperinge (45,827 v.)",
            serde_json::json!({"geojson": cantons::multipolygon(&[cantons::BASTOGNE, cantons::POPERINGE])}),
            1000.0,
        ),
        (
            "5,000 circles",
            serde_json::json!({"circles": circles_5000}),
            1000.0,
        ),
    ];
    if aws {
        // The 1,000-vertex polygon adds nothing on the emulators that the circle does not.
        areas.retain(|(name, _, _)| !name.starts_with("1,000-vertex"));
    }
    println!();
    for (name, area, goal) in &areas {
        let body = serde_json::json!({ "area": area }).to_string();
        let mut times = Vec::new();
        let mut last = None;
        let before = costs.as_ref().map(Costs::now);
        // The governor's zones are checked against the province's border.
        let by = if name.contains("governor") {
            &governor
        } else {
            &op
        };
        for _ in 0..=args.runs {
            let t = Instant::now();
            let p = app.preview(by, body.as_bytes()).await;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            last = Some(p);
        }
        times.remove(0); // warm-up
        let (min, median, p90) = stats(times);
        match last {
            Some(Ok(p)) => {
                println!(
                    "preview: {name:<30} {:>8} recipients, {:>5} cells ({:>5} interior): median {median:>7.1} ms, min {min:.1}, p90 {p90:.1} (goal <= {goal} ms)",
                    p.recipients, p.cells.total, p.cells.interior
                );
                if let (Some(c), Some((r0, i0, _))) = (&costs, before) {
                    let (r1, i1, _) = c.now();
                    let runs = (args.runs + 1) as f64;
                    println!(
                        "preview: {name:<30} DynamoDB: {:.0} requests and {:.0} items read per preview = {:.2} items read per recipient",
                        (r1 - r0) as f64 / runs,
                        (i1 - i0) as f64 / runs,
                        (i1 - i0) as f64 / runs / p.recipients.max(1) as f64
                    );
                }
            }
            Some(Err(e)) => println!(
                "preview: {name:<30} refused: {e}: median {median:>7.1} ms, p90 {p90:.1} (goal <= {goal} ms)"
            ),
            None => {}
        }
    }

    // Small previews while the largest accepted shape is previewed over and
    // over by another client: what a flood of heavy shapes costs the rest.
    let heavy = serde_json::json!({"area": areas[areas.len() - 2].1}).to_string();
    let small = serde_json::json!({"area": areas[0].1}).to_string();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut floods = Vec::new();
    for _ in 0..4 {
        let (app, op, heavy, stop) = (app.clone(), op.clone(), heavy.clone(), stop.clone());
        floods.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = app.preview(&op, heavy.as_bytes()).await;
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut times = Vec::new();
    for _ in 0..args.runs.max(10) * 2 {
        let t = Instant::now();
        app.preview(&op, small.as_bytes())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut heavy_done = 0;
    for f in floods {
        heavy_done += f.await.unwrap_or(0);
    }
    let (min, median, p90) = stats(times);
    println!(
        "preview: 5 km circle while 4 clients loop on 45,827 vertices ({heavy_done} done): median {median:.1} ms, min {min:.1}, p90 {p90:.1} (goal <= 200 ms)"
    );

    // 3. An alert to ~100,000 SMS recipients: grow a circle in Brussels until
    // it holds them, up to 200 km (all of Belgium; 60 km stopped the AWS
    // bench's 100,000-recipient run at 33,960).
    let (mut lo, mut hi) = (1.0f64, 200.0f64);
    let sms_in = |r: f64| {
        let app = app.clone();
        async move {
            let area = serde_json::from_value::<AreaRequest>(
                serde_json::json!({"circles": [{"lat": 50.8466, "lon": 4.3528, "radius_km": r}]}),
            )?
            .validate("area")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let p = app
                .preview_area(area)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            anyhow::Ok(p.by_channel.get(&Channel::Sms).copied().unwrap_or(0))
        }
    };
    for _ in 0..14 {
        let mid = (lo + hi) / 2.0;
        if sms_in(mid).await? >= sms_recipients {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let radius = hi;
    let expected = sms_in(radius).await?;
    let alert = serde_json::json!({
        "status": "Exercise", "event": "Benchmark", "severity": "Severe", "urgency": "Immediate", "certainty": "Observed",
        "messages": {"nl": "Oefening: sluit ramen en deuren.", "fr": "Exercice : fermez portes et fenetres.", "de": "Ubung: Fenster schliessen.", "en": "Exercise: close windows and doors."},
        "area": {"circles": [{"lat": 50.8466, "lon": 4.3528, "radius_km": radius}]},
        "channels": ["sms"]
    });
    println!("\nalert: {expected} SMS recipients in a {radius:.2} km circle around Brussels");
    let before = costs.as_ref().map(Costs::now);
    let capacity_before = costs.as_ref().map(Costs::capacity);
    let jobs_before = local.jobs.snapshot();
    let t = Instant::now();
    let created = app
        .create_alert(&op, alert.to_string().as_bytes())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let follower = observer.as_ref().unwrap_or(&app);
    // The first recipients planned: their deliveries stored, their send job
    // handed to the SMS queue in the same step.
    let first_queued = loop {
        let v = follower
            .alert_view(&op, &created.id.to_string())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if v.channels
            .values()
            .any(|c| c.queued + c.sent + c.failed > 0)
        {
            break t.elapsed();
        }
        if t.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("no recipient was planned within a minute");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    println!(
        "alert: POST /v1/alerts (national Exercise) to the first recipients queued: {:.0} ms (goal <= 200 ms)",
        first_queued.as_secs_f64() * 1000.0
    );
    let view = scenario::follow(follower, &op, created.id, true, Duration::from_secs(600)).await?;
    let took = t.elapsed().as_secs_f64();
    let sms = view.channels.get(&Channel::Sms);
    if let (Some(c), Some((r0, i0, q0))) = (&costs, before) {
        let (r1, i1, q1) = c.now();
        let k = view.recipients.max(1) as f64 / 1000.0;
        let sent = sms.map_or(0, |s| s.sent) as f64;
        println!(
            "alert: per 1,000 recipients: {:.0} DynamoDB requests, {:.0} SQS requests, {:.0} SNS requests; {:.2} DynamoDB items read per recipient (all steps; live counts not included)",
            (r1 - r0) as f64 / k,
            (q1 - q0) as f64 / k,
            sent / k,
            (i1 - i0) as f64 / view.recipients.max(1) as f64
        );
        if let Some(c0) = &capacity_before {
            let sent = sms.map_or(0, |s| s.sent);
            let (read, write) = print_capacity("alert", c0, &c.capacity(), sent);
            print_lambda("alert", &jobs_before, &local.jobs.snapshot(), sent, &args);
            let sizes = c.counter_sizes(created.id).await;
            println!(
                "alert: {} counter items, the largest {} bytes (the meter counts an update as one write unit, DynamoDB bills one per started KB)",
                sizes.len(),
                sizes.iter().max().copied().unwrap_or(0)
            );
            // What 1,000,000 SMS deliveries would cost at on-demand prices
            // (the flags' prices; their date and source are on the
            // benchmarks page), SMS fees apart.
            let sqs = (q1 - q0) as f64 / sent.max(1) as f64;
            let million = 1_000_000.0;
            let dynamo = (read * args.price_read + write * args.price_write) * million / 1e6;
            let queues = sqs * million * args.price_sqs / 1e6;
            println!(
                "alert: a 1,000,000-SMS alert at these rates: DynamoDB ${dynamo:.2} ({read:.3} RRU x ${}/M + {write:.3} WRU x ${}/M), SQS ${queues:.2} ({sqs:.3} requests x ${}/M); Lambda above; SMS fees apart: {}",
                args.price_read,
                args.price_write,
                args.price_sqs,
                args.sms_price
                    .map_or("give --sms-price".to_string(), |p| format!(
                        "${:.0} ({p} a message)",
                        p * million
                    ))
            );
        }
    }
    let by_lang = scenario::outbox_by_language(&dir.join("outbox").join("sms.jsonl"), created.id)?;
    println!(
        "alert: {} SMS sent, {} failed, creation to state sent in {took:.2} s = {:.0} SMS/s (goal <= 10 s)",
        sms.map_or(0, |s| s.sent),
        sms.map_or(0, |s| s.failed),
        sms.map_or(0, |s| s.sent) as f64 / took
    );
    for (lang, t) in by_lang {
        println!(
            "alert: {lang}: {:>7} SMS, first +{:>6.0} ms, last +{:>6.0} ms",
            t.count,
            scenario::ms_between(&view.created_at, &t.first_at),
            scenario::ms_between(&view.created_at, &t.last_at)
        );
    }

    // 4. A province by NIS code: its registrants read by key (addresses
    // record their units), and the same province with a 10 m circle inside
    // it, which is no longer whole units and so goes by geometry.
    println!();
    for (how, area) in [
        (
            "by key",
            serde_json::json!({"geocodes": [{"name": "NIS", "value": "10000"}]}),
        ),
        (
            "by geometry",
            serde_json::json!({"geocodes": [{"name": "NIS", "value": "10000"}],
                "circles": [{"lat": 51.2194, "lon": 4.4025, "radius_km": 0.01}]}),
        ),
    ] {
        let alert = serde_json::json!({
            "status": "Exercise", "event": "Benchmark", "severity": "Severe", "urgency": "Immediate", "certainty": "Observed",
            "messages": {"nl": "Oefening.", "fr": "Exercice.", "de": "Ubung.", "en": "Exercise."},
            "area": area, "channels": ["sms"]
        });
        let before = costs.as_ref().map(Costs::now);
        let t = Instant::now();
        let created = app
            .create_alert(&op, alert.to_string().as_bytes())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let view =
            scenario::follow(follower, &op, created.id, true, Duration::from_secs(600)).await?;
        let took = t.elapsed().as_secs_f64();
        let shards = app
            .ports
            .alerts
            .get_alert(created.id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .and_then(|a| a.shards_total)
            .unwrap_or(0);
        let items = match (&costs, before) {
            (Some(c), Some((_, i0, _))) => format!(
                ", {:.2} DynamoDB items read per recipient",
                (c.now().1 - i0) as f64 / view.recipients.max(1) as f64
            ),
            _ => String::new(),
        };
        println!(
            "alert: province Antwerpen (NIS 10000) {how}: {} recipients, {shards} shards, creation to sent in {took:.2} s{items}",
            view.recipients
        );
    }
    // Cancel latency on the AWS home: the alert above again, cancelled once
    // a tenth has gone (the emulators send about 150 SMS/s: no limit needed).
    if aws {
        cancel::run(&app, &op, cancel::Sent::Recorded(costs.as_ref()), &alert).await?;
    }
    if !aws && args.network_cells > 0 {
        alert_sms::run(app.clone(), &op, args.network_cells, args.runs).await?;
    }
    if !aws && args.signups > 0 {
        signup::run(app.clone(), &dir, args.signups, args.signup_concurrency).await?;
    }
    local.stop().await;
    // Cancel latency: the 100,000-recipient alert again, from a server with
    // an SMS limit of 10,000/s (as a real aggregator's), cancelled while it
    // is still sending.
    if !aws {
        let limited = Local::start(
            &Home::Embedded(dir.clone()),
            &Tuning {
                sms_rate: Some(10_000),
                ..Tuning::default()
            },
        )
        .await?;
        cancel::run(&limited.app, &op, cancel::Sent::Outbox(&dir), &alert).await?;
        limited.stop().await;
        // The global stop: every channel busy under a limit, then halted.
        let busy = Local::start(
            &Home::Embedded(dir.clone()),
            &Tuning {
                sms_rate: Some(5_000),
                voice_rate: Some(500),
                email_rate: Some(1_000),
                ..Tuning::default()
            },
        )
        .await?;
        halt::run(&busy.app, &op, &dir, &alert).await?;
        busy.stop().await;
        if args.national_sms > 0 {
            national::run(&dir, &op, subscribers, args.national_sms).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod lambda_tests {
    use super::lambda_of;

    /// A function's block in the template: from its name to the next
    /// resource at the same indentation.
    fn block<'a>(t: &'a str, resource: &str) -> &'a str {
        let start = t
            .find(&format!("\n  {resource}:\n"))
            .unwrap_or_else(|| panic!("{resource} is in the template"))
            + 1;
        let rest = &t[start..];
        let mut offset = 0;
        for (i, line) in rest.split_inclusive('\n').enumerate() {
            if i > 0 && line.starts_with("  ") && !line.starts_with("   ") {
                return &rest[..offset];
            }
            offset += line.len();
        }
        rest
    }

    fn number_after(text: &str, key: &str) -> Option<u64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn the_benchs_lambda_figures_use_the_templates_batch_sizes_and_memory() {
        let t = include_str!("../../../../infra/template.yaml");
        let default_mb = number_after(block(t, "Function"), "MemorySize:").unwrap();
        for (function, queues) in [
            ("ResolveZoneFunction", vec![("ResolveQueue", "resolve")]),
            (
                "SendSmsFunction",
                vec![
                    ("SmsQueue", "send-sms"),
                    ("SmsCancelQueue", "send-sms-cancel"),
                    ("SmsRoutineQueue", "send-sms-routine"),
                ],
            ),
        ] {
            let f = block(t, function);
            let mb = number_after(f, "MemorySize:").unwrap_or(default_mb);
            for (resource, queue) in queues {
                let at = f
                    .find(&format!("Queue: !GetAtt {resource}.Arn"))
                    .unwrap_or_else(|| panic!("{function} reads {resource}"));
                let batch = number_after(&f[at..], "BatchSize:").unwrap();
                let (_, b, m) = lambda_of(queue).unwrap();
                assert_eq!((b, m), (batch, mb), "{queue} in {function}");
            }
        }
    }
}
