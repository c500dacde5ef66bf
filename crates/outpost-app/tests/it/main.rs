//! Integration tests of the console's use-cases (one test binary, as STYLE.md asks).

mod audit_outbox;
mod auth;
mod console;
mod dispatch;
mod field;
mod import;
mod login_names;
mod pack;
mod sync;
