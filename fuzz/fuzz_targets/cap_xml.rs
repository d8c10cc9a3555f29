//! CAP 1.2 XML as `POST /v1/alerts` reads it (`application/cap+xml`): any
//! bytes are parsed (never deeper than 16 levels), imported, and a valid
//! alert exported as CAP again.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../shared/core/tests/parsers_never_panic/calls.rs"]
mod calls;

fuzz_target!(|data: &[u8]| {
    let _ = calls::parse(data);
    calls::cap(data);
});
