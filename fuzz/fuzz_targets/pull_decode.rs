//! A console decoding arbitrary pull pages, snapshots and push answers: no panic, and what
//! decodes round-trips (`outpost_server::fuzzing::pull_decode`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    outpost_server::fuzzing::pull_decode(data);
});
