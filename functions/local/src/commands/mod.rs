//! `bealert`'s subcommands, one module each: its arguments and its `run`.

pub mod aws;
pub mod demo;
pub mod dlq;
pub mod geo;
pub mod key;
pub mod network;
pub mod operator;
pub mod sending;
pub mod serve;
pub mod status;
pub mod user;
