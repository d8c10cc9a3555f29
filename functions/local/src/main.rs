//! `bealert`: the command line and the local runner (api.md).

mod backend;
mod bench;
mod demo;
mod dlq;
mod local;
mod logs;
mod scenario;
mod serve;
mod status;
mod unit_loading;

use anyhow::Context;
#[cfg(not(feature = "aws"))]
use backend::no_aws;
use backend::{Backend, document_store, home, network_store, operator_stores};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use unit_loading::units_bar;

#[derive(Parser)]
#[command(
    name = "bealert",
    version,
    about = "Public warning platform: registered warning, groups, zones, every language at once"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and every worker in one process.
    Serve(Box<ServeArgs>),
    /// Manage operators (the authorities that send alerts).
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// The people of an operator, each with keys of their own.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// A person's API keys: rotate (a new key, the old ones refused at
    /// once) or revoke.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Administrative units (reference geography): geocodes and jurisdictions.
    Geo {
        #[command(subcommand)]
        command: GeoCommand,
    },
    /// Manage mobile networks (Alert-SMS), which upload their own cells.
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// Create the AWS home's tables and queues (LocalStack, development).
    Aws {
        #[command(subcommand)]
        command: AwsCommand,
    },
    /// Dead-lettered jobs: list them, or send them again (never twice).
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
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
    },
    /// Queue depths and dead letters, send rates per channel, provider
    /// health: from the running server, else the queues alone.
    Status {
        #[command(flatten)]
        args: status::StatusArgs,
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
    /// A self-contained tour on a temporary data directory.
    Demo(demo::DemoArgs),
    /// Measure import, zone preview and alert throughput; prints figures.
    Bench(bench::BenchArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    #[arg(long, env = "BEALERT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
    data_dir: PathBuf,
    #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
    backend: Backend,
    #[command(flatten)]
    tuning: local::Tuning,
    #[command(flatten)]
    clients: ClientArgs,
}

/// The per-client request limit of `serve`.
#[derive(clap::Args)]
struct ClientArgs {
    /// Requests per second one client address may make, sustained (429 beyond).
    #[arg(long, env = "BEALERT_CLIENT_RATE", default_value_t = 100)]
    client_rate: u32,
    /// Requests one client may make at once after a quiet spell.
    #[arg(long, env = "BEALERT_CLIENT_BURST", default_value_t = 200)]
    client_burst: u32,
    /// A reverse proxy whose X-Forwarded-For names the client (repeatable).
    #[arg(long, env = "BEALERT_TRUSTED_PROXY", value_delimiter = ',')]
    trusted_proxy: Vec<std::net::IpAddr>,
}

impl ClientArgs {
    fn config(&self) -> bealert_app::http::limit::ClientLimitConfig {
        bealert_app::http::limit::ClientLimitConfig {
            per_second: self.client_rate,
            burst: self.client_burst,
            trusted_proxies: self.trusted_proxy.clone(),
        }
    }
}

#[derive(Subcommand)]
enum AwsCommand {
    /// Create the tables and queues that are missing and verify the e-mail
    /// sender (BEALERT_* and AWS_* variables say where; see the README).
    Setup,
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

#[derive(Subcommand)]
enum GeoCommand {
    /// Add or replace administrative units from a GeoJSON FeatureCollection
    /// whose features carry code, level (region, province, arrondissement,
    /// canton, municipality) and name_nl/name_fr/name_de.
    Load {
        /// The GeoJSON file; leave it out with --shipped.
        file: Option<PathBuf>,
        /// Load the units bealert ships (cantons, judicial arrondissements,
        /// provinces, regions) again; they load by themselves on first start
        /// and with `aws setup`.
        #[arg(long, conflicts_with = "file")]
        shipped: bool,
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
    /// List the loaded units: level, code, names, vertices.
    List {
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The tours print their own story; a server logs what it does.
    logs::init_logs(match cli.command {
        Command::Demo(_) | Command::Bench(_) => "warn",
        _ => "info",
    });
    match cli.command {
        Command::Serve(args) => {
            let clients = args.clients.config();
            serve::run(
                args.listen,
                home(args.backend, args.data_dir),
                args.tuning,
                clients,
            )
            .await
        }
        Command::Aws {
            command: AwsCommand::Setup,
        } => {
            #[cfg(feature = "aws")]
            {
                let aws = local::aws_home().await;
                aws.setup().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                // Belgium's administrative units, unless this edition is there.
                unit_loading::shipped_units(aws.store.as_ref(), aws.store.as_ref()).await?;
                println!(
                    "tables {:?} and queues {}* are ready",
                    aws.settings.tables, aws.settings.queue_prefix
                );
                Ok(())
            }
            #[cfg(not(feature = "aws"))]
            no_aws()
        }
        Command::Operator {
            command:
                OperatorCommand::Create {
                    name,
                    jurisdiction,
                    user,
                    data_dir,
                    backend,
                },
        } => {
            let (operators, geography, _) = operator_stores(backend, &data_dir).await?;
            let (op, key) = bealert_app::usecases::create_operator(
                operators.as_ref(),
                geography.as_ref(),
                &name,
                &jurisdiction,
                user.as_deref(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created operator {:?} ({})", op.name, op.jurisdiction);
            println!(
                "the API key of its first person, {:?}, follows; it is shown only now:",
                op.user
            );
            println!("{key}");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    operator,
                    name,
                    may,
                    data_dir,
                    backend,
                },
        } => {
            let (operators, _, _) = operator_stores(backend, &data_dir).await?;
            let key = bealert_app::usecases::create_user(operators.as_ref(), &operator, &name)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let rights = may.unwrap_or_default();
            bealert_app::usecases::set_rights(operators.as_ref(), &operator, &name, &rights)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "added {name:?} to operator {operator:?}; they may: {}",
                if rights.iter().count() == 0 {
                    "read only".into()
                } else {
                    rights.to_list()
                }
            );
            println!("their API key follows; it is shown only now:");
            println!("{key}");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Update {
                    operator,
                    name,
                    may,
                    data_dir,
                    backend,
                },
        } => {
            let (operators, _, _) = operator_stores(backend, &data_dir).await?;
            bealert_app::usecases::set_rights(operators.as_ref(), &operator, &name, &may)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{name:?} of {operator:?} may now: {}",
                if may.iter().count() == 0 {
                    "read only".into()
                } else {
                    may.to_list()
                }
            );
            Ok(())
        }
        Command::Key {
            command:
                KeyCommand::Rotate {
                    operator,
                    user,
                    data_dir,
                    backend,
                },
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
        Command::Key {
            command:
                KeyCommand::Revoke {
                    key,
                    operator,
                    user,
                    data_dir,
                    backend,
                },
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
        Command::Operator {
            command:
                OperatorCommand::Notify {
                    name,
                    phone,
                    email,
                    data_dir,
                    backend,
                },
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
        Command::Operator {
            command:
                OperatorCommand::Grant {
                    name,
                    group,
                    data_dir,
                    backend,
                },
        } => {
            let (operators, _, _) = operator_stores(backend, &data_dir).await?;
            bealert_app::usecases::grant_group(operators.as_ref(), &name, &group)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("operator {name:?} may alert group {group:?}");
            Ok(())
        }
        Command::Geo {
            command:
                GeoCommand::Load {
                    file,
                    shipped,
                    data_dir,
                    backend,
                },
        } => {
            let (_, geography, subscribers) = operator_stores(backend, &data_dir).await?;
            let bytes = match (&file, shipped) {
                (Some(f), _) => {
                    std::fs::read(f).with_context(|| format!("reading {}", f.display()))?
                }
                (None, true) => bealert_geodata::belgium_units(),
                (None, false) => anyhow::bail!("give a GeoJSON FILE, or --shipped"),
            };
            let bar = units_bar();
            bar.set_message("storing units");
            let progress = |done: usize, of: usize| {
                bar.set_length(of as u64);
                bar.set_position(done as u64);
            };
            let report =
                bealert_app::usecases::geography::load_units(geography.as_ref(), bytes, &progress)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            bar.finish_and_clear();
            if shipped {
                geography
                    .set_shipped_edition(bealert_geodata::EDITION)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            let levels: Vec<String> = report
                .by_level
                .iter()
                .map(|(l, n)| format!("{n} {l}"))
                .collect();
            println!(
                "loaded {} units ({}), {} vertices",
                report.units,
                levels.join(", "),
                report.vertices
            );
            // Every registered address learns the units it falls in.
            let count = subscribers
                .subscriber_count()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let bar = indicatif::ProgressBar::new(count);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "recording addresses' units [{bar:30}] {pos}/{len} subscribers",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let indexed = bealert_app::usecases::geography::index_addresses(
                subscribers.as_ref(),
                geography.as_ref(),
                &|n| bar.set_position(n),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            bar.finish_and_clear();
            println!(
                "recorded the units of {} subscribers' addresses ({} changed, {} changed meanwhile by their owners)",
                indexed.subscribers, indexed.updated, indexed.skipped
            );
            Ok(())
        }
        Command::Geo {
            command: GeoCommand::List { data_dir, backend },
        } => {
            let (_, geography, _) = operator_stores(backend, &data_dir).await?;
            for u in geography
                .units()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                println!(
                    "{}\t{}\t{}\t{}",
                    u.level,
                    u.code,
                    u.names.label(),
                    u.vertices
                );
            }
            Ok(())
        }
        Command::Network {
            command:
                NetworkCommand::Create {
                    name,
                    data_dir,
                    backend,
                },
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
        Command::Dlq {
            command,
            data_dir,
            backend,
        } => match backend {
            // The queue file only: safe beside a running server.
            Backend::Embedded => {
                let queue = bealert_embedded::SqliteQueue::open(
                    &data_dir.join("queue.db"),
                    bealert_embedded::queue::DEFAULT_MAX_RECEIVES,
                )?;
                dlq::run(&queue, command).await
            }
            #[cfg(feature = "aws")]
            Backend::Aws => {
                let aws = local::aws_home().await;
                dlq::run(aws.queue.as_ref(), command).await
            }
            #[cfg(not(feature = "aws"))]
            Backend::Aws => no_aws(),
        },
        Command::Status {
            args,
            data_dir,
            backend,
        } => match backend {
            Backend::Embedded => match status::from_server(&args).await? {
                Some(report) => {
                    status::print(&report, args.json, None);
                    Ok(())
                }
                None => {
                    let queue = bealert_embedded::SqliteQueue::open(
                        &data_dir.join("queue.db"),
                        bealert_embedded::queue::DEFAULT_MAX_RECEIVES,
                    )?;
                    let report = status::queues_only(&queue).await?;
                    let note = format!(
                        "No server answered at {} (with a key: --key or BEALERT_API_KEY): the queues alone, read from {}. Send rates and provider health come from the server.",
                        args.url,
                        data_dir.display()
                    );
                    status::print(&report, args.json, Some(&note));
                    Ok(())
                }
            },
            #[cfg(feature = "aws")]
            Backend::Aws => {
                let aws = local::aws_home().await;
                let report = status::queues_only(aws.queue.as_ref()).await?;
                status::print(
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
        },
        Command::Demo(args) => demo::run(args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}
