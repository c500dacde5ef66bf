//! An OsmAnd request (query string and JSON body) of arbitrary bytes: refused, or a report that passes the fix checks
//! (`outpost_devices::fuzzing::osmand_decode`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    outpost_devices::fuzzing::osmand_decode(data);
});
