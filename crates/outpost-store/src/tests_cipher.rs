//! The encrypted cache (SQLCipher): the raw file and its WAL hide incident text, the key
//! reopens it, a wrong key is refused without touching the file, a plaintext cache of an
//! earlier version is converted.

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use outpost_domain::geo::LatLon;
use outpost_domain::incident::{IncidentType, Priority};
use outpost_domain::op::OpBody;

use crate::cipher::{CacheKey, is_plaintext};
use crate::{Store, StoreError};

/// The text that must never appear in the raw files (UTF-8, with Chinese: "trapped people").
const SECRET: &str = "KNOWN-INCIDENT-TEXT 被困群众";

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
        .single()
        .expect("valid date")
        + chrono::Duration::seconds(secs)
}

fn key(fill: u8) -> CacheKey {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = fill.wrapping_add(i as u8).wrapping_mul(31);
    }
    CacheKey::from_bytes(bytes)
}

fn write_incident(s: &mut Store) -> Uuid {
    let id = Uuid::now_v7();
    s.write::<StoreError, _>(t(1), "cmdr.li", |_| {
        Ok(OpBody::IncidentCreate {
            incident_id: id,
            number: "20261129-0001".into(),
            incident_type: IncidentType::MissingPerson,
            priority: Priority::P1,
            location: LatLon {
                lat: 42.5063,
                lon: 1.5218,
            },
            address: "Avinguda Meritxell".into(),
            description: SECRET.into(),
        })
    })
    .expect("write incident");
    id
}

fn description(s: &Store, id: Uuid) -> String {
    s.conn()
        .query_row(
            "SELECT description FROM incidents WHERE id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .expect("incident row")
}

/// The bytes of `path`, empty when it does not exist.
fn raw(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn side(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    s.into()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.windows(n.len()).any(|w| w == n)
}

/// SHA-256 of the file and its WAL (what "unchanged" means for a refused open).
fn files_hash(path: &Path) -> String {
    let mut h = Sha256::new();
    h.update(raw(path));
    h.update(b"|");
    h.update(raw(&side(path, "-wal")));
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_build_has_sqlcipher() {
    let s = Store::open_in_memory(t(0)).expect("open");
    let version: String = s
        .conn()
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .expect("cipher_version answers under SQLCipher");
    assert!(
        version.starts_with('4'),
        "SQLCipher 4 expected, got {version}"
    );
}

#[test]
fn a_plain_cache_shows_the_text_so_the_probe_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    let mut s = Store::open(&path, t(0)).expect("open");
    write_incident(&mut s);
    let both = [raw(&path), raw(&side(&path, "-wal"))].concat();
    assert!(
        contains(&both, SECRET),
        "plain SQLite stores the text as is"
    );
}

#[test]
fn the_encrypted_cache_and_its_wal_lack_the_incident_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    let k = key(7);
    let id = {
        let mut s = Store::open_with_key(&path, Some(&k), t(0)).expect("open encrypted");
        let id = write_incident(&mut s);
        // While open, the commit sits in the WAL.
        let wal = raw(&side(&path, "-wal"));
        assert!(
            !wal.is_empty(),
            "the commit is in the WAL while the store is open"
        );
        assert!(!contains(&wal, SECRET), "the WAL is encrypted");
        assert!(!contains(&raw(&path), SECRET));
        id
    };
    // Closed: neither the file nor a WAL left behind holds the text, nor the SQLite header.
    assert!(!contains(&raw(&path), SECRET));
    assert!(!contains(&raw(&side(&path, "-wal")), SECRET));
    assert!(!is_plaintext(&path).expect("read header"));
    assert!(!contains(&raw(&path), "SQLite format 3"));

    let s = Store::open_with_key(&path, Some(&k), t(2)).expect("reopen with the key");
    assert_eq!(description(&s, id), SECRET);
}

#[test]
fn a_wrong_key_or_no_key_is_refused_and_leaves_the_file_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    let k = key(7);
    let id = {
        let mut s = Store::open_with_key(&path, Some(&k), t(0)).expect("open encrypted");
        write_incident(&mut s)
    };
    let before = files_hash(&path);

    let err = Store::open_with_key(&path, Some(&key(8)), t(3)).expect_err("wrong key");
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("outpost.db"), "{msg}");
    assert!(
        msg.contains("the key does not open this encrypted cache"),
        "{msg}"
    );
    assert_eq!(files_hash(&path), before, "a wrong key writes nothing");

    let err = Store::open(&path, t(3)).expect_err("no key");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert_eq!(files_hash(&path), before, "a keyless open writes nothing");

    let s = Store::open_with_key(&path, Some(&k), t(4)).expect("the right key still opens");
    assert_eq!(description(&s, id), SECRET);
}

#[test]
fn a_plaintext_cache_of_an_earlier_version_is_converted_on_first_keyed_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    let (id, origin) = {
        let mut s = Store::open(&path, t(0)).expect("open plain");
        (write_incident(&mut s), s.origin_id())
    };
    assert!(is_plaintext(&path).expect("header"));
    assert!(
        contains(&raw(&path), SECRET),
        "the old cache holds the text"
    );

    let k = key(9);
    let s = Store::open_with_key(&path, Some(&k), t(5)).expect("convert");
    assert_eq!(description(&s, id), SECRET);
    assert_eq!(s.origin_id(), origin, "same installation after conversion");
    assert_eq!(
        query_outbox_len(&s),
        1,
        "the outbox came along (its op still to push)"
    );
    drop(s);
    assert!(!is_plaintext(&path).expect("header"));
    assert!(!contains(&raw(&path), SECRET));
    assert!(!contains(&raw(&side(&path, "-wal")), SECRET));
    assert!(
        !side(&path, ".encrypting").exists(),
        "no temporary copy left"
    );
    // Only the key opens it now.
    assert!(Store::open(&path, t(6)).is_err());
    let s = Store::open_with_key(&path, Some(&k), t(6)).expect("reopen");
    assert_eq!(description(&s, id), SECRET);
}

#[test]
fn a_stale_temporary_copy_does_not_stop_the_conversion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("outpost.db");
    let id = {
        let mut s = Store::open(&path, t(0)).expect("open plain");
        write_incident(&mut s)
    };
    std::fs::write(side(&path, ".encrypting"), b"half a copy").expect("stale copy");
    let s = Store::open_with_key(&path, Some(&key(1)), t(1)).expect("convert");
    assert_eq!(description(&s, id), SECRET);
    assert!(!side(&path, ".encrypting").exists());
}

#[test]
fn cache_keys_round_trip_as_hex_and_never_print() {
    let k = key(3);
    let hex = k.to_hex();
    assert_eq!(hex.len(), 64);
    assert_eq!(CacheKey::from_hex(&hex.to_uppercase()).expect("parse"), k);
    assert_eq!(format!("{k:?}"), "CacheKey(..)");
    let short = CacheKey::from_hex("abcd").expect_err("short");
    assert!(short.contains("64 hex digits"), "{short}");
    let bad = CacheKey::from_hex(&format!("{}zz", &hex[..62])).expect_err("non-hex");
    assert!(bad.contains("position 62"), "{bad}");
}

fn query_outbox_len(s: &Store) -> usize {
    crate::query::outbox_all(s.conn()).expect("outbox").len()
}
