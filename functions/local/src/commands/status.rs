//! `bealert status`: every queue's depth and dead letters, each channel's
//! limit and send rate, each provider's health.
//!
//! A running server answers all of it (`GET /v1/status`, with an operator
//! key). Without one, or in the AWS home, the queues are read directly:
//! send rates and provider health live in the senders' processes (each
//! Lambda instance has its own), so they are not shown from here.

use crate::backend::Backend;
#[cfg(not(feature = "aws"))]
use crate::backend::no_aws;
use bealert_app::jobs::all_queues;
use bealert_app::ports::JobQueue;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The running server to ask (embedded home).
    #[arg(long, env = "BEALERT_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An operator's API key for the server.
    #[arg(long, env = "BEALERT_API_KEY")]
    pub key: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
    data_dir: PathBuf,
    #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
    backend: Backend,
}

pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let data_dir = &args.data_dir;
    match args.backend {
        Backend::Embedded => match from_server(&args).await? {
            Some(report) => {
                print(&report, args.json, None);
                Ok(())
            }
            None => {
                let queue = bealert_embedded::SqliteQueue::open(
                    &data_dir.join("queue.db"),
                    bealert_embedded::queue::DEFAULT_MAX_RECEIVES,
                )?;
                let report = queues_only(&queue).await?;
                let note = format!(
                    "No server answered at {} (with a key: --key or BEALERT_API_KEY): the queues alone, read from {}. Send rates and provider health come from the server.",
                    args.url,
                    data_dir.display()
                );
                print(&report, args.json, Some(&note));
                Ok(())
            }
        },
        #[cfg(feature = "aws")]
        Backend::Aws => {
            let aws = crate::local::aws_home().await;
            let report = queues_only(aws.queue.as_ref()).await?;
            print(
                &report,
                args.json,
                Some(
                    "AWS home: send rates and provider health are kept by each send function instance (their logs), not seen from here.",
                ),
            );
            Ok(())
        }
        #[cfg(not(feature = "aws"))]
        Backend::Aws => no_aws(),
    }
}

/// The running server's report, if it answers with one.
async fn from_server(args: &StatusArgs) -> anyhow::Result<Option<Value>> {
    let Some(key) = &args.key else {
        return Ok(None);
    };
    let url = format!("{}/v1/status", args.url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()?;
    let answer = match client.get(&url).bearer_auth(key).send().await {
        Ok(a) => a,
        Err(e) if e.is_connect() || e.is_timeout() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        anyhow::bail!(
            "{url} answered {status}: {}",
            body["detail"].as_str().unwrap_or("no detail")
        );
    }
    Ok(Some(body))
}

/// The queues alone, read from the queue itself.
async fn queues_only(queue: &dyn JobQueue) -> anyhow::Result<Value> {
    let mut queues = Vec::new();
    for q in all_queues() {
        let d = queue
            .depth(q)
            .await
            .map_err(|e| anyhow::anyhow!("queue {q}: {}", e.message()))?;
        queues.push(
            json!({"queue": q, "ready": d.ready, "in_flight": d.in_flight,
            "delayed": d.delayed, "dead_letters": d.dead_letters}),
        );
    }
    Ok(json!({ "queues": queues }))
}

fn print(report: &Value, as_json: bool, note: Option<&str>) {
    if as_json {
        println!("{report}");
        return;
    }
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    println!(
        "{:<22} {:>8} {:>10} {:>8} {:>13}",
        "queue", "ready", "in flight", "delayed", "dead letters"
    );
    let mut dead = 0;
    for q in report["queues"].as_array().into_iter().flatten() {
        dead += n(&q["dead_letters"]);
        println!(
            "{:<22} {:>8} {:>10} {:>8} {:>13}",
            q["queue"].as_str().unwrap_or("?"),
            n(&q["ready"]),
            n(&q["in_flight"]),
            n(&q["delayed"]),
            n(&q["dead_letters"])
        );
    }
    if dead > 0 {
        println!(
            "{dead} dead letters: `bealert dlq list` shows them, `bealert dlq redrive` sends them again"
        );
    }
    if let Some(channels) = report["channels"].as_object() {
        println!();
        println!(
            "{:<7} {:>9} {:>7} {:>12} {:>9}  providers",
            "channel", "limit/s", "burst", "last minute", "now /s"
        );
        for (name, c) in channels {
            let limit = c["limit_per_second"]
                .as_u64()
                .map_or("none".to_string(), |l| l.to_string());
            let burst = c["burst"]
                .as_u64()
                .map_or("-".to_string(), |b| b.to_string());
            let providers: Vec<String> = c["providers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let mut s = format!(
                        "{} (accepted {}, refused {}, unsure {}, throttled {}, permanent {}{})",
                        p["name"].as_str().unwrap_or("?"),
                        n(&p["accepted"]),
                        n(&p["refused"]),
                        n(&p["unsure"]),
                        n(&p["throttled"]),
                        n(&p["permanent"]),
                        if p["skipped"] == true {
                            ", passed by now"
                        } else {
                            ""
                        }
                    );
                    if let Some(e) = p["last_error"].as_str() {
                        s.push_str(&format!(" last error: {e}"));
                    }
                    s
                })
                .collect();
            println!(
                "{:<7} {:>9} {:>7} {:>12} {:>9.1}  {}",
                name,
                limit,
                burst,
                n(&c["sent_last_minute"]),
                c["per_second_now"].as_f64().unwrap_or(0.0),
                if providers.is_empty() {
                    "one provider, no chain".to_string()
                } else {
                    providers.join("; ")
                }
            );
        }
    }
    if let Some(note) = note {
        println!("\n{note}");
    }
}
