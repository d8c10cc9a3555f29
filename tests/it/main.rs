//! bealert's end-to-end tests, one module per area, in one binary: each
//! test binary links the whole of bealert (and the AWS SDK), so one binary
//! instead of twelve saves most of the test run's compile and link time.
//! Run one area with a filter: `cargo test -p bealert --test it -- http_api::`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod alert_sms;
#[cfg(feature = "aws")]
mod aws_home;
mod cli;
mod clock;
mod exactly_once;
mod failures;
mod geotargeting;
mod http_api;
mod jurisdictions;
mod providers;
mod public_channels;
mod receipts;
mod signup;
mod territory;
