//! Device protocols of Outpost: how positions come in from phones, TAK clients and GNSS
//! receivers, and how the CAD picture goes out to TAK clients.
//!
//! Owns: the OsmAnd/Traccar request decoder ([`osmand`]), the Cursor-on-Target event framer,
//! decoder and encoder ([`cot`]), and the NMEA 0183 fix assembler ([`nmea`]).
//!
//! Architecture invariant: pure functions over bytes and text, no IO, no async runtime, no
//! clock of its own ("now" is a parameter). The listeners live in `outpost-server`, the
//! receiver reader in `outpost-app`; the fuzz targets in `fuzz/` call these functions.

pub mod cot;
pub mod nmea;
pub mod osmand;
