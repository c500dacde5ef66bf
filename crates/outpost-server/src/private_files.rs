//! Owner-only permissions for the server's data directory and its SQLite files (fresh
//! review S11): `server.db` holds every incident, address, note and position, `audit.db`
//! the whole trail that only the auditor role may read over the API, so neither may be
//! readable by other local accounts on the server host.
//!
//! - [`private_dir`] creates the data directory `0700` (and tightens an existing one that
//!   group or others may enter, with an info log line naming it and the old mode);
//! - [`private_db`] creates a database file `0600` before SQLite opens it (SQLite gives the
//!   `-wal`/`-shm` files it creates the database file's mode) and tightens an existing
//!   file and its `-wal`/`-shm` the same way, with a log line.
//!
//! On non-Unix systems these only create what is missing (permissions there are ACLs
//! inherited from the parent directory).

use std::io;
use std::path::Path;

/// The mode of the data directory: owner only.
pub const DIR_MODE: u32 = 0o700;
/// The mode of the database files and their `-wal`/`-shm`: owner read/write only.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) with mode [`DIR_MODE`]; an existing `dir` whose
/// mode lets group or others in is changed to [`DIR_MODE`] with an info log line.
///
/// # Errors
/// The I/O error of the creation or of the permission change.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)?;
        }
        let meta = std::fs::metadata(dir)?;
        if !meta.is_dir() {
            // Not a directory: the OS's own error (EEXIST, "File exists"), nothing changed.
            return std::fs::create_dir(dir);
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
            tracing::info!(
                path = %dir.display(),
                was = %format!("{mode:o}"),
                "data directory was open to other accounts; now owner-only (700)"
            );
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Makes the SQLite database `path` owner-only before it is opened: creates it empty with
/// mode [`FILE_MODE`] when missing (an empty file is a new SQLite database), and changes
/// an existing file, `path-wal` and `path-shm` to [`FILE_MODE`] when group or others may
/// read them, with an info log line each. Call it again after opening to catch a `-wal` or
/// `-shm` an older run left wider.
///
/// # Errors
/// The I/O error of the creation or of the permission change.
pub fn private_db(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(FILE_MODE)
                .open(path)?;
        }
        let mut names = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut s = path.as_os_str().to_owned();
            s.push(suffix);
            names.push(s.into());
        }
        for file in names {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(FILE_MODE))?;
                tracing::info!(
                    path = %file.display(),
                    was = %format!("{mode:o}"),
                    "database file was readable by other accounts; now owner-only (600)"
                );
            }
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("test").permissions().mode() & 0o777
    }

    #[test]
    fn a_new_dir_and_db_are_owner_only() {
        let t = tempfile::tempdir().expect("test");
        let dir = t.path().join("a/data");
        private_dir(&dir).expect("test");
        assert_eq!(mode(&dir), 0o700);
        let db = dir.join("x.db");
        private_db(&db).expect("test");
        assert_eq!(mode(&db), 0o600);
        assert_eq!(std::fs::metadata(&db).expect("test").len(), 0);
    }

    #[test]
    fn a_file_in_place_of_the_dir_is_an_error_and_keeps_its_mode() {
        let t = tempfile::tempdir().expect("test");
        let file = t.path().join("notes.txt");
        std::fs::write(&file, b"x").expect("test");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("test");
        let e = private_dir(&file).expect_err("not a directory");
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        assert_eq!(mode(&file), 0o644);
    }

    #[test]
    fn existing_wider_permissions_are_tightened() {
        let t = tempfile::tempdir().expect("test");
        let dir = t.path().join("data");
        std::fs::create_dir(&dir).expect("test");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("test");
        let db = dir.join("x.db");
        for f in ["x.db", "x.db-wal", "x.db-shm"] {
            std::fs::write(dir.join(f), b"data").expect("test");
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644))
                .expect("test");
        }
        private_dir(&dir).expect("test");
        private_db(&db).expect("test");
        assert_eq!(mode(&dir), 0o700);
        for f in ["x.db", "x.db-wal", "x.db-shm"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        // Content untouched.
        assert_eq!(std::fs::read(&db).expect("test"), b"data");
    }

    /// The real opens: a data dir left 0755 with a 0644 server.db from an older run, then
    /// the storage and the audit log opened (and written: -wal/-shm exist) → all private.
    #[test]
    fn the_storage_and_the_audit_log_open_owner_only() {
        let t = tempfile::tempdir().expect("test");
        let dir = t.path().join("srv");
        std::fs::create_dir(&dir).expect("test");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("test");
        drop(crate::storage::SqliteStorage::open(&dir).expect("test"));
        std::fs::set_permissions(
            dir.join("server.db"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("test");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("test");

        let storage = crate::storage::SqliteStorage::open(&dir).expect("test");
        let accounts = crate::security::accounts::Accounts::open(
            &dir,
            crate::security::accounts::PasswordParams::default(),
            std::sync::Arc::new(outpost_domain::clock::SystemClock),
        )
        .expect("test");
        let audit = crate::security::audit::AuditLog::open(&dir).expect("test");
        audit
            .record(crate::security::audit::AuditEvent::new(
                "test",
                crate::security::audit::AuditOutcome::Ok,
            ))
            .expect("test");
        assert_eq!(mode(&dir), 0o700);
        let mut seen = Vec::new();
        for e in std::fs::read_dir(&dir).expect("test") {
            let e = e.expect("test");
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".db") || name.ends_with("-wal") || name.ends_with("-shm") {
                assert_eq!(mode(&e.path()), 0o600, "{name}");
                seen.push(name);
            }
        }
        seen.sort();
        assert!(seen.contains(&"server.db".to_string()), "{seen:?}");
        assert!(seen.contains(&"audit.db".to_string()), "{seen:?}");
        assert!(seen.contains(&"security.db".to_string()), "{seen:?}");
        assert!(seen.iter().any(|n| n.ends_with("-wal")), "{seen:?}");
        drop((storage, audit, accounts));
    }
}
