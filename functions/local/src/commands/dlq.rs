//! `bealert dlq list|redrive`: what dead-lettered, and sending it again.
//!
//! A redriven send job never sends twice: its deliveries were claimed and
//! recorded (sent, or failed when the job dead-lettered), so it finds them
//! final; a redriven resolve job re-plans only what is not planned yet.

use crate::backend::Backend;
#[cfg(not(feature = "aws"))]
use crate::backend::no_aws;
use bealert_app::jobs::all_queues;
use bealert_app::ports::JobQueue;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
    #[arg(
        long,
        env = "BEALERT_DATA_DIR",
        default_value = "./.bealert",
        global = true
    )]
    data_dir: PathBuf,
    #[arg(
        long,
        env = "BEALERT_BACKEND",
        value_enum,
        default_value = "embedded",
        global = true
    )]
    backend: Backend,
}

#[derive(clap::Subcommand)]
enum DlqCommand {
    /// Lists the dead letters of every queue (or one).
    List {
        #[arg(long)]
        queue: Option<String>,
    },
    /// Moves dead letters back onto their queue: the ids given, or all of them.
    Redrive {
        #[arg(long)]
        queue: Option<String>,
        ids: Vec<String>,
    },
}

fn queues(only: Option<&str>) -> anyhow::Result<Vec<&'static str>> {
    let all = all_queues();
    match only {
        None => Ok(all),
        Some(q) => all
            .iter()
            .copied()
            .find(|x| *x == q)
            .map(|x| vec![x])
            .ok_or_else(|| anyhow::anyhow!("no queue {q:?}; the queues are {all:?}")),
    }
}

/// A short description of a job body: its type and alert.
fn summary(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => {
            let kind = v["type"].as_str().map_or_else(
                || {
                    format!(
                        "send {} x{}",
                        v["channel"].as_str().unwrap_or("?"),
                        v["deliveries"].as_array().map_or(0, Vec::len)
                    )
                },
                str::to_string,
            );
            format!("{kind} alert {}", v["alert_id"].as_str().unwrap_or("?"))
        }
        Err(_) => format!(
            "unreadable: {:?}",
            body.chars().take(60).collect::<String>()
        ),
    }
}

pub async fn run(args: DlqArgs) -> anyhow::Result<()> {
    let DlqArgs {
        command,
        data_dir,
        backend,
    } = args;
    match backend {
        // The queue file only: safe beside a running server.
        Backend::Embedded => {
            let queue = bealert_embedded::SqliteQueue::open(
                &data_dir.join("queue.db"),
                bealert_embedded::queue::DEFAULT_MAX_RECEIVES,
            )?;
            run_on(&queue, command).await
        }
        #[cfg(feature = "aws")]
        Backend::Aws => {
            let aws = crate::local::aws_home().await;
            run_on(aws.queue.as_ref(), command).await
        }
        #[cfg(not(feature = "aws"))]
        Backend::Aws => no_aws(),
    }
}

/// Lists or redrives the dead letters of `queue`.
async fn run_on(queue: &dyn JobQueue, command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::List { queue: only } => {
            let mut total = 0;
            for q in queues(only.as_deref())? {
                for d in queue.dead_letters(q).await? {
                    total += 1;
                    println!(
                        "{q}\t{}\treceived {}x\t{}\t{}",
                        d.id,
                        d.receive_count,
                        summary(&d.body),
                        d.last_error.as_deref().unwrap_or("-")
                    );
                }
            }
            println!("{total} dead letters");
        }
        DlqCommand::Redrive { queue: only, ids } => {
            let mut moved = 0;
            for q in queues(only.as_deref())? {
                let wanted: Vec<String> = if ids.is_empty() {
                    queue
                        .dead_letters(q)
                        .await?
                        .into_iter()
                        .map(|d| d.id)
                        .collect()
                } else {
                    ids.clone()
                };
                for id in wanted {
                    if queue.redrive(q, &id).await? {
                        moved += 1;
                        println!("{q}\t{id}\tredriven");
                    }
                }
            }
            println!("{moved} dead letters redriven");
        }
    }
    Ok(())
}
