//! `bealert key rotate|revoke`: a person's API keys.

use crate::backend::{Backend, operator_stores, stores};
use bealert_app::usecases::Rotation;
use clap::Subcommand;
use std::path::PathBuf;
use std::time::Duration;

/// A key's lifetime flag in milliseconds.
pub fn lifetime_ms(valid_for: Duration) -> i64 {
    i64::try_from(valid_for.as_millis()).unwrap_or(i64::MAX)
}

/// Says when a new key stops working.
pub fn print_end(expires_at_ms: Option<i64>) {
    if let Some(end) = expires_at_ms {
        println!(
            "the key works until {} (rotate it before then with `bealert key rotate`)",
            bealert_core::cap::brussels_rfc3339(end)
        );
    }
}

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
        /// Let the old keys work this much longer (e.g. 1h, at most 7d),
        /// so that a script can switch keys without failing; without it
        /// they are refused at once.
        #[arg(long, value_parser = crate::local::parse_wait)]
        overlap: Option<Duration>,
        /// How long the key works (s, m, h or d); the console warns 14 days ahead.
        #[arg(long, env = "BEALERT_KEY_LIFETIME", default_value = "90d", value_parser = crate::local::parse_wait)]
        valid_for: std::time::Duration,
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
            overlap,
            valid_for,
            data_dir,
            backend,
        } => {
            let stores = stores(backend, &data_dir).await?;
            let rotation = Rotation {
                new_key_lifetime_ms: Some(lifetime_ms(valid_for)),
                overlap_ms: overlap.map(lifetime_ms),
            };
            let (revoked, key) = bealert_app::usecases::replace_keys(
                stores.operators.as_ref(),
                &operator,
                &user,
                rotation,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            // Their drills act with the new key (a drill stops when its
            // author's access ends, not when they switch keys).
            if let Some(key) = &key {
                let moved = bealert_app::usecases::drills::rebind_drills(
                    stores.documents.as_ref(),
                    &operator,
                    &user,
                    &bealert_core::operator::hash_key(key),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                if moved > 0 {
                    println!("{moved} drill(s) of {user:?} now run with the new key");
                }
            }
            match overlap {
                Some(o) => println!(
                    "the {revoked} old key(s) of {user:?} ({operator:?}) keep working for {}s more, then are refused",
                    o.as_secs()
                ),
                None => println!("revoked {revoked} key(s) of {user:?} ({operator:?})"),
            }
            print_end(
                rotation
                    .new_key_lifetime_ms
                    .map(|l| bealert_app::now_ms() + l),
            );
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
                        Rotation {
                            new_key_lifetime_ms: None,
                            overlap_ms: None,
                        },
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
