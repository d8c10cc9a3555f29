//! bealert-aws's tests, one binary (`cargo test --workspace --all-features
//! --locked --test aws`): each former test binary linked the whole AWS SDK,
//! so one binary saves most of their compile and link time. A module per
//! area; run one with a filter, e.g. `--test aws -- dynamo_conformance::`.
//!
//! Tests run in parallel in this one process: each one that touches the
//! test stack gets tables, queues and schedules of its own
//! ([`testkit::unique_prefix`](bealert_aws::testkit::unique_prefix)), reads
//! back only what carries its own token, and no test sets environment
//! variables.
#![allow(clippy::unwrap_used)]

mod common;

mod capacity;
mod code_gateways;
mod dynamo_conformance;
mod gateways_localstack;
mod gateways_mocked;
mod location_mocked;
mod race;
mod signup_dynamo;
mod sqs_conformance;
