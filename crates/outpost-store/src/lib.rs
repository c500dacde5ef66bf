//! The console's local SQLite cache (rusqlite, WAL): migrations, queries, the outbox.
//!
//! Architecture invariant: every user action is one transaction that changes the state
//! tables and appends its op to the outbox together; nothing here knows about Tauri or HTTP.
