//! Device registry and tracks: bindings, unbound devices and their reports, unit track
//! history (issue 4, migration 7).
