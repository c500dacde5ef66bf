//! A push of arbitrary bytes to a server with state: refused with nothing stored, or answered
//! with outcomes that match the log (`outpost_server::fuzzing::push_decode`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    outpost_server::fuzzing::push_decode(data);
});
