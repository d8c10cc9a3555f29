//! `bealert`: the command line and the local runner (api.md); it parses
//! and dispatches, each subcommand lives in `commands/` (benches in `bench/`).

mod backend;
mod bench;
mod commands;
mod local;
mod logs;
mod scenario;
mod unit_loading;

use clap::{Parser, Subcommand};
use commands::{aws, demo, dlq, geo, key, network, operator, sending, serve, status, user};

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
    Serve(Box<serve::ServeArgs>),
    /// Manage operators (the authorities that send alerts).
    Operator(operator::OperatorArgs),
    /// The people of an operator, each with keys of their own.
    User(user::UserArgs),
    /// A person's API keys: rotate (a new key, the old ones refused at
    /// once) or revoke.
    Key(key::KeyArgs),
    /// Administrative units (reference geography): geocodes and jurisdictions.
    Geo(geo::GeoArgs),
    /// Manage mobile networks (Alert-SMS), which upload their own cells.
    Network(network::NetworkArgs),
    /// Create the AWS home's tables and queues (LocalStack, development).
    Aws(aws::AwsArgs),
    /// The global stop: halt all sending, or resume it.
    Sending(sending::SendingArgs),
    /// Dead-lettered jobs: list them, or send them again (never twice).
    Dlq(dlq::DlqArgs),
    /// Queue depths and dead letters, send rates per channel, provider
    /// health: from the running server, else the queues alone.
    Status(status::StatusArgs),
    /// A self-contained tour on a temporary data directory.
    Demo(demo::DemoArgs),
    /// Measure import, zone preview and alert throughput; prints figures.
    Bench(bench::BenchArgs),
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
        Command::Serve(args) => serve::run(*args).await,
        Command::Operator(args) => operator::run(args).await,
        Command::User(args) => user::run(args).await,
        Command::Key(args) => key::run(args).await,
        Command::Geo(args) => geo::run(args).await,
        Command::Network(args) => network::run(args).await,
        Command::Aws(args) => aws::run(args).await,
        Command::Sending(args) => sending::run(args).await,
        Command::Dlq(args) => dlq::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}
