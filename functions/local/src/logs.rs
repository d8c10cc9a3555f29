//! Where `bealert` logs: stderr, at a level `BEALERT_LOG` may override.

/// Logs go to stderr; `BEALERT_LOG` (e.g. `debug`) overrides the default level.
pub fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BEALERT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
