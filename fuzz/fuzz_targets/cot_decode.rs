//! A CoT event and a CoT TCP stream of arbitrary bytes cut into pieces: refused, or framed events within the size limit and reports that pass the fix checks
//! (`outpost_devices::fuzzing::cot_decode`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    outpost_devices::fuzzing::cot_decode(data);
});
