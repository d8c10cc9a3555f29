//! `bealert key rotate|revoke`: a person's API keys.

use crate::backend::{Backend, operator_stores};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Give a person a new key and revoke their old ones, in one step; the
    /// new key is printed alone on the last line.
    Rotate {
        #[arg(long)]
        operator: String,
        #[arg(long)]
        user: String,
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
    /// Revoke a key (--key), or every key of a person (--operator and
    /// --user): refused from the next request on.
    Revoke {
        /// The key itself (e.g. a leaked one).
        #[arg(long, conflicts_with_all = ["operator", "user"], required_unless_present = "operator")]
        key: Option<String>,
        #[arg(long, requires = "user")]
        operator: Option<String>,
        #[arg(long, requires = "operator")]
        user: Option<String>,
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
}

pub async fn run(args: KeyArgs) -> anyhow::Result<()> {
    match args.command {
        KeyCommand::Rotate {
            operator,
            user,
            data_dir,
            backend,
        } => {
            let (operators, _, _) = operator_stores(backend, &data_dir).await?;
            let (revoked, key) =
                bealert_app::usecases::replace_keys(operators.as_ref(), &operator, &user, false)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("revoked {revoked} key(s) of {user:?} ({operator:?})");
            println!("the new key follows; it is shown only now:");
            println!("{}", key.unwrap_or_default());
            Ok(())
        }
        KeyCommand::Revoke {
            key,
            operator,
            user,
            data_dir,
            backend,
        } => {
            let (operators, _, _) = operator_stores(backend, &data_dir).await?;
            match (key, operator, user) {
                (Some(key), _, _) => {
                    bealert_app::usecases::revoke_key(operators.as_ref(), &key)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    println!("revoked the key; it is refused from now on");
                }
                (None, Some(operator), Some(user)) => {
                    let (revoked, _) = bealert_app::usecases::replace_keys(
                        operators.as_ref(),
                        &operator,
                        &user,
                        true,
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                    println!("revoked {revoked} key(s) of {user:?} ({operator:?})");
                }
                _ => anyhow::bail!("give --key KEY, or --operator NAME and --user PERSON"),
            }
            Ok(())
        }
    }
}
