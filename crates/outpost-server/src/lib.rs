//! The central server of Outpost as a library (the sync server comes with issue 3), and the
//! admin commands such as `pack build`.
