//! bealert-providers: the outbound adapters, outside the app so that a
//! function links only those it uses.
//!
//! * [`chain`]: a channel's provider chain from its list of providers;
//! * `http` feature (reqwest): an SMS aggregator ([`http_sms`]), networks'
//!   alerting APIs ([`network_http`]) and public outlets ([`public_http`])
//!   over HTTP; `tls` adds https;
//! * `email` feature (lettre): alert e-mails as MIME ([`email`], also for
//!   SES) and over SMTP ([`smtp`]);
//! * the simulators of networks ([`netsim`]) and outlets ([`publicsim`]),
//!   which the embedded home uses and tests stand up over HTTP.

pub mod chain;
#[cfg(feature = "email")]
pub mod email;
#[cfg(feature = "http")]
pub mod endpoint;
#[cfg(feature = "http")]
pub mod http_sms;
pub mod netsim;
#[cfg(feature = "http")]
pub mod network_http;
#[cfg(feature = "http")]
pub mod public_http;
pub mod publicsim;
#[cfg(feature = "email")]
pub mod smtp;
