//! NMEA lines of arbitrary bytes fed to a receiver tracker: skipped and counted, fixes in range
//! (`outpost_devices::fuzzing::nmea_feed`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    outpost_devices::fuzzing::nmea_feed(data);
});
