//! `bealert user create|update`: the people of an operator and what they may do.

use crate::backend::{Backend, operator_stores};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a person to an operator; their API key is printed alone on the
    /// last line.
    Create {
        #[arg(long)]
        operator: String,
        /// The person's name (unique within the operator).
        #[arg(long)]
        name: String,
        /// What they may do: a comma-separated list of send, approve,
        /// contacts, halt, admin, or none (read only). Default: send,approve,admin.
        #[arg(long)]
        may: Option<bealert_core::operator::Rights>,
        /// How long the key works (s, m, h or d); the console warns 14 days ahead.
        #[arg(long, env = "BEALERT_KEY_LIFETIME", default_value = "90d", value_parser = crate::local::parse_wait)]
        valid_for: std::time::Duration,
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
    /// Change what a person may do (from their next request on).
    Update {
        #[arg(long)]
        operator: String,
        #[arg(long)]
        name: String,
        /// send, approve, contacts, halt, admin, comma-separated; none: read only.
        #[arg(long)]
        may: bealert_core::operator::Rights,
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
}

pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    match args.command {
        UserCommand::Create {
            operator,
            name,
            may,
            valid_for,
            data_dir,
            backend,
        } => {
            let (operators, _, _) = operator_stores(backend, &data_dir).await?;
            let lifetime = crate::commands::key::lifetime_ms(valid_for);
            let key =
                bealert_app::usecases::create_user(operators.as_ref(), &operator, &name, lifetime)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            crate::commands::key::print_end(Some(bealert_app::now_ms() + lifetime));
            let rights = may.unwrap_or_default();
            bealert_app::usecases::set_rights(operators.as_ref(), &operator, &name, &rights)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "added {name:?} to operator {operator:?}; they may: {}",
                rights.shown()
            );
            println!("their API key follows; it is shown only now:");
            println!("{key}");
            Ok(())
        }
        UserCommand::Update {
            operator,
            name,
            may,
            data_dir,
            backend,
        } => {
            let (operators, _, _) = operator_stores(backend, &data_dir).await?;
            bealert_app::usecases::set_rights(operators.as_ref(), &operator, &name, &may)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{name:?} of {operator:?} may now: {}", may.shown());
            Ok(())
        }
    }
}
