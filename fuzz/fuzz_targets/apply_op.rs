//! Decode + validate + apply of an arbitrary op in a transaction: all of it or nothing, and
//! idempotent (`outpost_server::fuzzing::apply_op`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    outpost_server::fuzzing::apply_op(data);
});
