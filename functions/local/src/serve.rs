//! `bealert serve`: the HTTP API and every worker in one process.

use crate::local::{Home, Local, Tuning};
use anyhow::Context;
use std::io::Write;
use std::net::SocketAddr;

pub async fn run(listen: SocketAddr, home: Home, tuning: Tuning) -> anyhow::Result<()> {
    let local = Local::start(&home, &tuning).await?;
    let router = bealert_app::http::router(local.app.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    if let Home::Embedded(dir) = &home {
        tracing::info!(data_dir = %dir.display(), "serving");
    }
    // The contract: one line on stdout once requests are accepted.
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    axum::serve(listener, router)
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
