//! A drill's schedule (`rate(...)` or `cron(...)`), and its next run from
//! any time.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../shared/core/tests/parsers_never_panic/calls.rs"]
mod calls;

fuzz_target!(|input: (&str, i64, i64)| {
    let (text, after, origin) = input;
    calls::schedule(text, after, origin);
});
