//! What every bealert Lambda function does before it serves: JSON logs for
//! CloudWatch, its configuration checked, SDK clients built once.

use crate::{AwsHome, ConfigError, Settings};
use bealert_app::App;
use bealert_app::usecases::AppConfig;
use std::sync::Arc;

/// JSON lines on stdout, level from `BEALERT_LOG` (default `info`).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BEALERT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .without_time()
        .init();
}

/// The app on the AWS home, after checking that `required` variables are set.
pub async fn app(required: &[&str]) -> Result<Arc<App>, ConfigError> {
    Settings::require(required)?;
    let home = AwsHome::new(&crate::sdk_config().await, Settings::from_env());
    Ok(Arc::new(App::new(home.ports(), AppConfig::default())))
}
