//! The encrypted cache (issue 6, "at rest"): SQLCipher through rusqlite's `bundled-sqlcipher`
//! feature, keyed with a random 256-bit [`CacheKey`] given as a raw key (`PRAGMA key =
//! "x'HEX'"`, so no passphrase derivation runs on open; SQLCipher 4 defaults otherwise:
//! AES-256-CBC pages with an HMAC-SHA512 per page, the WAL encrypted the same way).
//!
//! Opening with a key ([`crate::Store::open_with_key`]):
//! - a missing or empty file becomes a new encrypted database;
//! - an encrypted file is opened when the key reads `sqlite_master`, else
//!   [`StoreError::WrongKey`] and the file is left as it was (nothing is written before the
//!   key is verified);
//! - a plaintext file (an earlier Outpost, recognised by the SQLite header) is converted:
//!   `sqlcipher_export` into `FILE.encrypting` beside it, `user_version` copied, fsync, the
//!   copy opened with the key and checked, then renamed over the plaintext file (and the
//!   directory fsynced). A crash at any step leaves the plaintext database or the encrypted
//!   one, never neither.
//!
//! A keyless open ([`crate::Store::open`]) is plain SQLite, for tests, tools and the server.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

use crate::StoreError;

/// The first 16 bytes of every plaintext SQLite 3 database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// A 256-bit SQLCipher key for the console's cache. Its `Debug` form never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key made of these 32 bytes (from a CSPRNG, or unsealed from the vault).
    pub fn from_bytes(bytes: [u8; 32]) -> CacheKey {
        CacheKey(bytes)
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as 64 lowercase hex digits (the wire form of `EnrollRequest::cache_key`).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits (either case).
    ///
    /// # Errors
    /// A message saying what is wrong (length or a non-hex character), never echoing the key.
    pub fn from_hex(text: &str) -> Result<CacheKey, String> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(format!(
                "a cache key is 64 hex digits, this one has {} characters",
                text.chars().count()
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => out[i] = (hi * 16 + lo) as u8,
                _ => {
                    return Err(format!(
                        "a cache key is hex digits only (position {})",
                        i * 2
                    ));
                }
            }
        }
        Ok(CacheKey(out))
    }

    /// The `PRAGMA key` / `ATTACH … KEY` value: `x'HEX'` (a raw key, no derivation).
    fn sql_value(&self) -> String {
        format!("x'{}'", self.to_hex())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CacheKey(..)")
    }
}

/// Whether `path` starts with the plaintext SQLite header (`false` for a missing, empty or
/// encrypted file).
///
/// # Errors
/// [`StoreError::Open`] when the file exists but cannot be read.
pub fn is_plaintext(path: &Path) -> Result<bool, StoreError> {
    let mut head = [0u8; 16];
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(path, "read", e)),
    };
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(io_err(path, "read", e)),
        }
    }
    Ok(read == head.len() && &head == SQLITE_HEADER)
}

/// Opens `path` with `key`: converts a plaintext database first, then keys the connection
/// and verifies the key by reading `sqlite_master`.
///
/// # Errors
/// [`StoreError::WrongKey`] when the key does not open an existing encrypted file (the file
/// is untouched); [`StoreError::Open`] / [`StoreError::Convert`] naming the file otherwise.
pub(crate) fn open_keyed(path: &Path, key: &CacheKey) -> Result<Connection, StoreError> {
    if is_plaintext(path)? {
        convert_plaintext(path, key)?;
    }
    let conn = Connection::open(path).map_err(|source| open_err(path, source))?;
    apply_key(&conn, key).map_err(|source| open_err(path, source))?;
    verify_key(&conn, path)?;
    Ok(conn)
}

/// Keys a fresh connection; must be its first statement.
fn apply_key(conn: &Connection, key: &CacheKey) -> rusqlite::Result<()> {
    conn.execute_batch(&format!("PRAGMA key = \"{}\";", key.sql_value()))
}

/// Reads `sqlite_master`, the first read that needs the key.
fn verify_key(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            Err(StoreError::WrongKey {
                path: path.display().to_string(),
            })
        }
        Err(source) => Err(open_err(path, source)),
    }
}

/// The temporary file a conversion writes beside `path`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".encrypting");
    path.with_file_name(name)
}

/// Plaintext `path` → encrypted copy → verified → renamed over `path`.
fn convert_plaintext(path: &Path, key: &CacheKey) -> Result<(), StoreError> {
    let shown = path.display().to_string();
    let conv = |step: &str, detail: String| StoreError::Convert {
        path: shown.clone(),
        step: step.to_owned(),
        detail,
    };
    let temp = temp_path(path);
    // A copy left by an interrupted conversion is incomplete by definition: the plaintext
    // file is still here, so start over.
    remove_if_exists(&temp).map_err(|e| conv("remove the stale temporary copy", e.to_string()))?;
    let (version, objects) = {
        let plain = Connection::open(path).map_err(|source| open_err(path, source))?;
        let version: i64 = plain
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|source| open_err(path, source))?;
        let objects: i64 = plain
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|source| open_err(path, source))?;
        let temp_text = temp.to_string_lossy().into_owned();
        plain
            .execute(
                "ATTACH DATABASE ?1 AS encrypted KEY ?2",
                params![temp_text, key.sql_value()],
            )
            .map_err(|e| conv("attach the encrypted copy", e.to_string()))?;
        let exported = plain
            .query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))
            .and_then(|()| {
                plain.execute_batch(&format!("PRAGMA encrypted.user_version = {version};"))
            });
        let detached = plain.execute_batch("DETACH DATABASE encrypted");
        exported.map_err(|e| conv("export into the encrypted copy", e.to_string()))?;
        detached.map_err(|e| conv("detach the encrypted copy", e.to_string()))?;
        // The plaintext WAL is folded into the file and emptied, so nothing of it can be
        // read as a WAL of the encrypted database after the rename.
        plain
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| conv("checkpoint the plaintext WAL", e.to_string()))?;
        plain
            .close()
            .map_err(|(_, e)| conv("close the plaintext database", e.to_string()))?;
        (version, objects)
    };
    std::fs::File::open(&temp)
        .and_then(|f| f.sync_all())
        .map_err(|e| conv("fsync the encrypted copy", e.to_string()))?;
    // Verify before the plaintext goes: the copy opens with the key and has the schema.
    {
        let check = Connection::open_with_flags(&temp, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| conv("open the encrypted copy", e.to_string()))?;
        apply_key(&check, key).map_err(|e| conv("key the encrypted copy", e.to_string()))?;
        let (copied_version, copied_objects): (i64, i64) = check
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version), \
                        (SELECT count(*) FROM sqlite_master)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| conv("read the encrypted copy", e.to_string()))?;
        if (copied_version, copied_objects) != (version, objects) {
            return Err(conv(
                "verify the encrypted copy",
                format!(
                    "it has schema version {copied_version} and {copied_objects} schema objects, \
                     the plaintext database {version} and {objects}"
                ),
            ));
        }
    }
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_os_string();
        side.push(suffix);
        remove_if_exists(Path::new(&side))
            .map_err(|e| conv("remove the plaintext WAL", e.to_string()))?;
    }
    std::fs::rename(&temp, path).map_err(|e| conv("replace the plaintext file", e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable once the directory is; not every platform can fsync one.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn open_err(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Open {
        path: path.display().to_string(),
        source,
    }
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Convert {
        path: path.display().to_string(),
        step: what.to_owned(),
        detail: e.to_string(),
    }
}
