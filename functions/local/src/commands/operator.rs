//! `bealert operator create|notify|grant`: the authorities that send alerts.

use crate::backend::{Backend, document_store, operator_stores};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct OperatorArgs {
    #[command(subcommand)]
    command: OperatorCommand,
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Create an operator and its first person; that person's API key is
    /// printed alone on the last line.
    Create {
        #[arg(long)]
        name: String,
        /// national, province:<NIS code> or municipality:<NIS code>
        #[arg(long)]
        jurisdiction: String,
        /// The first person's name (default: the operator's name); add
        /// others with `bealert user create`.
        #[arg(long)]
        user: Option<String>,
        /// How long the key works (s, m, h or d); the console warns 14 days ahead.
        #[arg(long, env = "BEALERT_KEY_LIFETIME", default_value = "90d", value_parser = crate::local::parse_wait)]
        valid_for: std::time::Duration,
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
    /// Where an operator's approvers are told that an alert waits for a
    /// second person: phones (E.164) and e-mail addresses, replacing any
    /// given before.
    Notify {
        #[arg(long)]
        name: String,
        #[arg(long)]
        phone: Vec<String>,
        #[arg(long)]
        email: Vec<String>,
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
    /// Let an operator that is not national alert a group (national
    /// operators may alert every group).
    Grant {
        #[arg(long)]
        name: String,
        #[arg(long)]
        group: String,
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
}

pub async fn run(args: OperatorArgs) -> anyhow::Result<()> {
    match args.command {
        OperatorCommand::Create {
            name,
            jurisdiction,
            user,
            valid_for,
            data_dir,
            backend,
        } => {
            let (operators, geography, _) = operator_stores(backend, &data_dir).await?;
            let (op, key) = bealert_app::usecases::create_operator(
                operators.as_ref(),
                geography.as_ref(),
                &name,
                &jurisdiction,
                user.as_deref(),
                crate::commands::key::lifetime_ms(valid_for),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created operator {:?} ({})", op.name, op.jurisdiction);
            crate::commands::key::print_end(op.key_expires_at_ms);
            println!(
                "the API key of its first person, {:?}, follows; it is shown only now:",
                op.user
            );
            println!("{key}");
            Ok(())
        }
        OperatorCommand::Notify {
            name,
            phone,
            email,
            data_dir,
            backend,
        } => {
            if phone.is_empty() && email.is_empty() {
                anyhow::bail!("give at least one --phone or --email");
            }
            let documents = document_store(backend, &data_dir).await?;
            let c = bealert_app::usecases::approvers::set_approver_contacts(
                documents.as_ref(),
                &name,
                &phone,
                &email,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "operator {name:?}: approvers are told at {}",
                c.phones
                    .iter()
                    .chain(&c.emails)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(())
        }
        OperatorCommand::Grant {
            name,
            group,
            data_dir,
            backend,
        } => {
            let (operators, _, _) = operator_stores(backend, &data_dir).await?;
            bealert_app::usecases::grant_group(operators.as_ref(), &name, &group)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("operator {name:?} may alert group {group:?}");
            Ok(())
        }
    }
}
