//! Delivery receipts: an aggregator's webhook body, a queue message (bare
//! or in an SNS notification), an SNS SMS log line, SES and SMS-voice events.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../shared/core/tests/parsers_never_panic/calls.rs"]
mod calls;

fuzz_target!(|data: &[u8]| {
    calls::receipts(data);
});
