//! A network's cells (`PUT /v1/networks/{name}/cells`): a GeoJSON
//! FeatureCollection of footprints and sites.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../shared/core/tests/parsers_never_panic/calls.rs"]
mod calls;

fuzz_target!(|data: &[u8]| {
    calls::cells(data);
});
