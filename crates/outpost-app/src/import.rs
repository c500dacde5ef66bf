//! Importing stations, posts and checkpoints from CSV or GeoJSON whose coordinates are in
//! a declared datum (WGS-84, GCJ-02, BD-09). Everything is stored in WGS-84: GCJ-02 and
//! BD-09 are converted by the `undrift_gps` crate (the published GCJ-02 offset formula and
//! its iterative inverse, about 1e-7° ≈ 1 cm).

use crate::console::Console;
use crate::error::AppError;
use crate::ipc::{Datum, ImportFacilities, ImportFormat, ImportProblem, ImportReport};
use outpost_domain::Facility;

/// Reads a facility file: every row or feature becomes a [`Facility`] in WGS-84, or an
/// [`ImportProblem`] saying where and what is wrong. Pure: no IO.
pub fn read_facilities(
    text: &str,
    format: ImportFormat,
    datum: Datum,
) -> (Vec<Facility>, Vec<ImportProblem>) {
    let _ = (text, format, datum);
    todo!("import helper")
}

impl Console {
    /// Imports facilities (see [`read_facilities`]); with `commit`, writes one
    /// `facility.register` op per facility in one transaction, or nothing when any row
    /// has a problem.
    ///
    /// # Errors
    /// Storage errors.
    pub fn import_facilities(&self, args: ImportFacilities) -> Result<ImportReport, AppError> {
        let _ = args;
        todo!("import helper")
    }
}
