//! A citizen's signup: the subscriber as JSON, validated, and the phone
//! and e-mail checks the signup form makes on what was typed.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../shared/core/tests/parsers_never_panic/calls.rs"]
mod calls;

fuzz_target!(|data: &[u8]| {
    calls::signup(data);
});
