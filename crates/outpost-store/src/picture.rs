//! The CAD picture for TAK clients: units with their latest fix and incidents, read for the
//! server's Cursor-on-Target feed (issue 4).
