//! `bealert serve`: the HTTP API and every worker in one process.

use crate::backend::{Backend, home};
use crate::local::{Home, Local, Tuning};
use anyhow::Context;
use bealert_http::limit::ClientLimitConfig;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ServeArgs {
    #[arg(long, env = "BEALERT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
    data_dir: PathBuf,
    #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
    backend: Backend,
    #[command(flatten)]
    tuning: Tuning,
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
    fn config(&self) -> ClientLimitConfig {
        ClientLimitConfig {
            per_second: self.client_rate,
            burst: self.client_burst,
            trusted_proxies: self.trusted_proxy.clone(),
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let clients = args.clients.config();
    serve(
        args.listen,
        home(args.backend, args.data_dir),
        args.tuning,
        clients,
    )
    .await
}

async fn serve(
    listen: SocketAddr,
    home: Home,
    mut tuning: Tuning,
    clients: ClientLimitConfig,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    tuning
        .public_url
        .get_or_insert_with(|| format!("http://{addr}"));
    let local = Local::start(&home, &tuning).await?;
    let router =
        bealert_http::with_client_limits(bealert_http::router(local.app.clone()), &clients);
    // The console's map outlines, made before the first sign-in needs them.
    let app = local.app.clone();
    tokio::spawn(async move {
        if let Err(e) = app.outlines().await {
            tracing::warn!(error = %e, "the console's outlines could not be made");
        }
    });
    if let Home::Embedded(dir) = &home {
        tracing::info!(data_dir = %dir.display(), "serving");
    }
    // The contract: one line on stdout once requests are accepted.
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    tracing::info!("stopping workers");
    local.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
