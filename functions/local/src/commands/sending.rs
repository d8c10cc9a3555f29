//! `bealert sending halt|resume`: the global stop from the command line,
//! for whoever holds the data directory (or the AWS home's tables).

use crate::backend::{Backend, document_store};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SendingArgs {
    #[command(subcommand)]
    command: SendingCommand,
}

#[derive(Subcommand)]
enum SendingCommand {
    /// Stop all sending at once: no channel, network or outlet hands over
    /// another message until `bealert sending resume`; queued work waits.
    Halt(Switch),
    /// Resume sending; what waited is sent, each message once.
    Resume(Switch),
}

#[derive(clap::Args)]
struct Switch {
    /// Why (kept in the log, shown by GET /v1/sending).
    #[arg(long)]
    reason: Option<String>,
    #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
    data_dir: PathBuf,
    #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
    backend: Backend,
}

pub async fn run(args: SendingArgs) -> anyhow::Result<()> {
    let (halt, s) = match args.command {
        SendingCommand::Halt(s) => (true, s),
        SendingCommand::Resume(s) => (false, s),
    };
    let documents = document_store(s.backend, &s.data_dir).await?;
    let by = format!(
        "command line ({})",
        std::env::var("USER").unwrap_or_else(|_| "unknown user".into())
    );
    bealert_app::usecases::halt::switch_sending(documents.as_ref(), halt, &by, s.reason)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{}",
        if halt {
            "sending halted: nothing leaves until `bealert sending resume` (a running server sees it within a second)"
        } else {
            "sending resumed"
        }
    );
    Ok(())
}
