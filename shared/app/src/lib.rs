//! bealert-app: the use cases of bealert, over ports, shared by both homes.
//!
//! The local runner and the Lambda functions build the same [`App`] from
//! different adapters; HTTP routes (the `bealert-http` crate, over [`App`])
//! and queue handlers ([`App::handle_job`]) are the only entry points.
//! The use cases answer [`AppError`]s; bealert-http turns them into HTTP
//! problems.

pub mod clock;
pub mod error;
pub mod geometry;
pub mod jobs;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod limit;
pub mod metrics;
pub mod ports;
pub mod providers;
pub mod rate;
pub mod rules;
pub mod usecases;
pub mod worker;

pub use clock::{Clock, SystemClock, TestClock};
pub use error::AppError;
pub use usecases::App;

/// Milliseconds since the Unix epoch: the wall clock. The use cases read
/// the time through [`App::now_ms`] (the app's [`Clock`]) instead.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339 with milliseconds, UTC.
pub fn format_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}
