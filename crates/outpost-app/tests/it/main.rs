//! Integration tests of the console's use-cases (one test binary, as STYLE.md asks).

mod console;
mod field;
mod import;
mod pack;
mod sync;
