//! The demo area: the Andorra roster and the `--demo` replay that makes the console live.
//!
//! Owns: the roster file format and loader ([`roster`]), the real 911 call sample and its
//! mapping onto incident types and a compressed arrival schedule ([`calls`]), walking along
//! polylines and the real GPX track ([`track`]), routing on the pack's road network
//! ([`routing`]).
//!
//! Architecture invariant: pure parts do no IO beyond reading the files they are handed;
//! the replay changes state only through `outpost_app::Console` methods (so every domain rule
//! and the op log apply to demo actions as to a person's), as user "demo" on a console that
//! does not sync and as the signed-in person on one that does ([`ReplayConsole`]); nothing
//! here depends on Tauri or the UI.

pub mod calls;
mod console;
pub mod roster;
pub mod routing;
pub mod track;

pub use console::{ReplayConsole, start};
pub use roster::{Roster, RosterError, RosterFacility, RosterUnit};
pub mod replay;

pub use replay::{
    DEMO_USER, DemoConsole, DemoHandle, DemoOptions, DemoStats, IncidentSnapshot, Sim,
    UnitSnapshot, start_with,
};
