//! An alert as JSON (`POST /v1/alerts`) and an area alone (the zone
//! preview): GeoJSON, circles and geocodes validated, the zone's size
//! checked, a valid alert exported as CAP.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../shared/core/tests/parsers_never_panic/calls.rs"]
mod calls;

fuzz_target!(|data: &[u8]| {
    calls::area(data);
});
