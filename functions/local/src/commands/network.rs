//! `bealert network create`: mobile networks (Alert-SMS), which upload their own cells.

use crate::backend::{Backend, network_store};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct NetworkArgs {
    #[command(subcommand)]
    command: NetworkCommand,
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// Create a network; its API key (for PUT /v1/networks/NAME/cells) is
    /// printed alone on the last line.
    Create {
        /// proximus, orange, base, …: lowercase letters, digits, hyphens.
        #[arg(long)]
        name: String,
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
}

pub async fn run(args: NetworkArgs) -> anyhow::Result<()> {
    match args.command {
        NetworkCommand::Create {
            name,
            data_dir,
            backend,
        } => {
            let store = network_store(backend, &data_dir).await?;
            let (network, key) =
                bealert_app::usecases::networks::create_network(store.as_ref(), &name)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created network {:?}", network.name);
            println!(
                "it uploads its cells with PUT /v1/networks/{}/cells and this key, shown only now:",
                network.name
            );
            println!("{key}");
            Ok(())
        }
    }
}
