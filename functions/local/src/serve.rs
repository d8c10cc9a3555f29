//! `bealert serve`: the HTTP API and every worker in one process.

use crate::local::{Home, Local, Tuning};
use anyhow::Context;
use bealert_app::http;
use bealert_app::http::limit::ClientLimitConfig;
use std::io::Write;
use std::net::SocketAddr;

pub async fn run(
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
    let router = http::with_client_limits(http::router(local.app.clone()), &clients);
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
