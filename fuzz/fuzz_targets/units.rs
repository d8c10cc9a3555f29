//! A file of administrative units (`bealert geo load FILE`): a GeoJSON
//! FeatureCollection of boundaries with codes, levels and names.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../shared/core/tests/parsers_never_panic/calls.rs"]
mod calls;

fuzz_target!(|data: &[u8]| {
    calls::units(data);
});
