//! The vault (`vault.json` in the data directory): who may sign in on this console offline.
//!
//! Per person: login name, display name, role, unit and `offline_until` in the clear (the
//! sign-in screen lists them) but bound to the sealed part as AES-GCM associated data, so a
//! changed role, unit or grace period makes the entry refuse to open; the argon2id salt and
//! parameters; a password verifier; and, sealed with AES-256-GCM under a key derived from the
//! password, the console's cache key and the person's TOTP secret.
//!
//! Keys: `K = argon2id(password, salt, m, t, p)` (32 bytes), the sealing key
//! `SHA-256("outpost-vault-seal\0" ‖ K)` and the verifier `SHA-256("outpost-vault-verify\0" ‖
//! K)` (hex). The verifier tells a wrong password (it differs) from an altered entry (it
//! matches but the seal does not open); it is worth exactly as much to a guesser as the seal.
//!
//! The file is replaced whole: written to `vault.json.tmp`, fsynced, renamed, directory
//! fsynced. An unreadable vault is an error naming the file, never silently reset (that would
//! forget who may sign in and lose the only copy of the cache key on a standalone console).
//! At most [`MAX_USERS`] people are kept, the most recently signed in.

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use outpost_domain::access::Role;
use outpost_domain::op_auth::OpSigner;
use outpost_store::CacheKey;

/// The vault file inside the data directory.
pub const VAULT_FILE: &str = "vault.json";

/// How many people a console keeps for offline sign-in (the most recent).
pub const MAX_USERS: usize = 8;

/// The file format version written in `vault.json`.
const FORMAT: u32 = 1;

/// argon2id cost parameters. Production: [`KdfParams::OWASP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory, KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// OWASP's argon2id recommendation (Password Storage Cheat Sheet): m = 19456 KiB
    /// (19 MiB), t = 2, p = 1.
    pub const OWASP: KdfParams = KdfParams {
        m_kib: 19_456,
        t: 2,
        p: 1,
    };

    /// Small parameters for tests only (8 MiB would still be slow in debug builds).
    pub const TEST_ONLY: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };
}

/// What is sealed per person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    /// The console's cache key.
    pub cache_key: CacheKey,
    /// The person's TOTP secret, base32 (RFC 4648, no padding).
    pub totp_secret: String,
    /// The person's op key on this device from their last online sign-in
    /// (`LoginResponse::op_key`; review S2): signs their ops. `None` for a standalone
    /// console's own account and for entries sealed before op signing (then the person
    /// must sign in online once before signing in offline).
    pub op_key: Option<OpSigner>,
}

#[derive(Serialize, Deserialize)]
struct SealedSecrets {
    cache_key: String,
    totp_secret: String,
    /// Key id of the op key; absent in entries sealed before op signing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    op_key_id: String,
    /// The op key, 64 hex digits; absent with `op_key_id`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    op_key: String,
}

/// One person's vault entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Login name.
    pub user: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// For a field unit: its unit id.
    pub unit_id: Option<String>,
    /// Until when an offline sign-in is allowed; `None`: no limit (a standalone console's
    /// own account).
    pub offline_until: Option<DateTime<Utc>>,
    /// The last full sign-in here (orders the entries; not bound: it only decides which
    /// entries are kept).
    pub last_sign_in: DateTime<Utc>,
    /// argon2id parameters.
    pub kdf: KdfParams,
    /// argon2id salt, hex (16 bytes).
    pub salt: String,
    /// Password verifier, hex.
    pub verifier: String,
    /// AES-GCM nonce, hex (12 bytes, fresh per sealing).
    pub nonce: String,
    /// The sealed [`Secrets`], hex (ciphertext and tag).
    pub sealed: String,
    /// Recent failed offline sign-ins (lockout; not bound, kept across restarts).
    #[serde(default)]
    pub failures: Vec<DateTime<Utc>>,
}

/// What the server revoked (`GET /v1/security/revocations`), stored to be honoured offline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// The server's revocation version last stored.
    pub version: u64,
    /// Revoked device ids.
    pub revoked_devices: Vec<String>,
    /// Disabled accounts.
    pub disabled_users: Vec<String>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vault {
    /// The file format version (1).
    pub format: u32,
    /// People, most recent sign-in first.
    pub users: Vec<Entry>,
    /// What the server revoked, honoured offline.
    #[serde(default)]
    pub revocations: Revoked,
    /// True once this device learned it was revoked: nothing opens any more.
    #[serde(default)]
    pub device_revoked: bool,
}

impl Default for Vault {
    fn default() -> Self {
        Vault {
            format: FORMAT,
            users: Vec::new(),
            revocations: Revoked::default(),
            device_revoked: false,
        }
    }
}

/// A vault problem, already in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The file cannot be read or written, or does not parse.
    #[error("{0}")]
    File(String),
    /// The password does not open the entry.
    #[error("wrong password")]
    WrongPassword,
    /// The password is right but the entry does not open: its role, unit, display name or
    /// grace period was changed outside Outpost.
    #[error(
        "the vault entry of {0:?} was altered outside Outpost (its role, unit or sign-in period \
         no longer matches what was sealed); it cannot be used — sign in online to restore it"
    )]
    Altered(String),
}

/// The password-derived keys of one entry (wiped on drop is not guaranteed; kept short-lived).
#[derive(Clone)]
pub struct EntryKey {
    seal: [u8; 32],
    verifier: String,
}

impl std::fmt::Debug for EntryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EntryKey(..)")
    }
}

/// Random bytes from the OS.
///
/// # Errors
/// When the OS has no randomness to give (never expected).
pub fn random<const N: usize>() -> Result<[u8; N], VaultError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)
        .map_err(|e| VaultError::File(format!("the OS random generator failed: {e}")))?;
    Ok(out)
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str, what: &str) -> Result<Vec<u8>, VaultError> {
    if !text.len().is_multiple_of(2) {
        return Err(VaultError::File(format!("{what} is not hex")));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| VaultError::File(format!("{what} is not hex")))
        })
        .collect()
}

/// Derives the keys of an entry from a password.
///
/// # Errors
/// [`VaultError::File`] for parameters argon2 refuses (an edited file).
pub fn derive(password: &str, salt: &[u8], kdf: KdfParams) -> Result<EntryKey, VaultError> {
    let params = Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
        .map_err(|e| VaultError::File(format!("the vault's argon2 parameters are refused: {e}")))?;
    let mut k = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut k)
        .map_err(|e| VaultError::File(format!("argon2id failed: {e}")))?;
    let sub = |label: &[u8]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(label);
        h.update(k);
        h.finalize().into()
    };
    Ok(EntryKey {
        seal: sub(b"outpost-vault-seal\0"),
        verifier: to_hex(&sub(b"outpost-vault-verify\0")),
    })
}

/// The associated data binding the clear fields: each field length-prefixed (u32 BE).
fn associated_data(e: &Entry) -> Vec<u8> {
    let offline = e
        .offline_until
        .map(|t| t.timestamp_millis().to_string())
        .unwrap_or_default();
    let kdf = format!("{}/{}/{}", e.kdf.m_kib, e.kdf.t, e.kdf.p);
    let fields: [&str; 8] = [
        "outpost-vault-v1",
        &e.user,
        &e.display_name,
        e.role.as_str(),
        e.unit_id.as_deref().unwrap_or(""),
        &offline,
        &kdf,
        &e.salt,
    ];
    let mut out = Vec::new();
    for f in fields {
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out
}

/// What an entry says about a person, before sealing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Login name.
    pub user: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Unit of a field unit.
    pub unit_id: Option<String>,
    /// End of the offline grace (`None`: none).
    pub offline_until: Option<DateTime<Utc>>,
}

/// Seals `secrets` for `profile` under `password` (fresh salt and nonce).
///
/// # Errors
/// [`VaultError::File`] when randomness or argon2 fails.
pub fn seal(
    profile: &Profile,
    password: &str,
    kdf: KdfParams,
    secrets: &Secrets,
    now: DateTime<Utc>,
) -> Result<(Entry, EntryKey), VaultError> {
    let salt = random::<16>()?;
    let key = derive(password, &salt, kdf)?;
    let entry = seal_with(profile, &key, kdf, &to_hex(&salt), secrets, now)?;
    Ok((entry, key))
}

/// Seals with an already derived key and its salt (re-sealing after an online sign-in with
/// the same password needs no second argon2 run).
///
/// # Errors
/// [`VaultError::File`] when randomness or AES-GCM fails.
pub fn seal_with(
    profile: &Profile,
    key: &EntryKey,
    kdf: KdfParams,
    salt_hex: &str,
    secrets: &Secrets,
    now: DateTime<Utc>,
) -> Result<Entry, VaultError> {
    let nonce = random::<12>()?;
    let mut entry = Entry {
        user: profile.user.clone(),
        display_name: profile.display_name.clone(),
        role: profile.role,
        unit_id: profile.unit_id.clone(),
        offline_until: profile.offline_until,
        last_sign_in: now,
        kdf,
        salt: salt_hex.to_owned(),
        verifier: key.verifier.clone(),
        nonce: to_hex(&nonce),
        sealed: String::new(),
        failures: Vec::new(),
    };
    let plain = serde_json::to_vec(&SealedSecrets {
        cache_key: secrets.cache_key.to_hex(),
        totp_secret: secrets.totp_secret.clone(),
        op_key_id: secrets
            .op_key
            .as_ref()
            .map(|k| k.key_id().to_owned())
            .unwrap_or_default(),
        op_key: secrets
            .op_key
            .as_ref()
            .map(OpSigner::key_hex)
            .unwrap_or_default(),
    })
    .map_err(|e| VaultError::File(format!("cannot encode the sealed part: {e}")))?;
    let cipher = Aes256Gcm::new_from_slice(&key.seal)
        .map_err(|_| VaultError::File("AES-256 key size".into()))?;
    let aad = associated_data(&entry);
    let sealed = cipher
        .encrypt(
            &Nonce::from(nonce_array(&nonce)?),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::File("AES-GCM sealing failed".into()))?;
    entry.sealed = to_hex(&sealed);
    Ok(entry)
}

impl Entry {
    /// The profile the entry states (only trustworthy after [`Entry::open`] succeeded).
    pub fn profile(&self) -> Profile {
        Profile {
            user: self.user.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            unit_id: self.unit_id.clone(),
            offline_until: self.offline_until,
        }
    }

    /// Opens the entry with `password`.
    ///
    /// # Errors
    /// [`VaultError::WrongPassword`], [`VaultError::Altered`] (clear fields changed), or
    /// [`VaultError::File`] for an unreadable entry.
    pub fn open(&self, password: &str) -> Result<(Secrets, EntryKey), VaultError> {
        let salt = from_hex(&self.salt, "salt")?;
        let key = derive(password, &salt, self.kdf)?;
        let secrets = self.open_with(&key)?;
        Ok((secrets, key))
    }

    /// Opens the entry with derived keys.
    ///
    /// # Errors
    /// As [`Entry::open`].
    pub fn open_with(&self, key: &EntryKey) -> Result<Secrets, VaultError> {
        if !constant_time_eq(key.verifier.as_bytes(), self.verifier.as_bytes()) {
            return Err(VaultError::WrongPassword);
        }
        let nonce = from_hex(&self.nonce, "nonce")?;
        if nonce.len() != 12 {
            return Err(VaultError::Altered(self.user.clone()));
        }
        let sealed = from_hex(&self.sealed, "sealed")?;
        let cipher = Aes256Gcm::new_from_slice(&key.seal)
            .map_err(|_| VaultError::File("AES-256 key size".into()))?;
        let aad = associated_data(self);
        let plain = cipher
            .decrypt(
                &Nonce::from(nonce_array(&nonce)?),
                Payload {
                    msg: &sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Altered(self.user.clone()))?;
        let s: SealedSecrets =
            serde_json::from_slice(&plain).map_err(|_| VaultError::Altered(self.user.clone()))?;
        Ok(Secrets {
            cache_key: CacheKey::from_hex(&s.cache_key)
                .map_err(|_| VaultError::Altered(self.user.clone()))?,
            totp_secret: s.totp_secret,
            op_key: if s.op_key_id.is_empty() {
                None
            } else {
                Some(
                    OpSigner::new(&self.user, &s.op_key_id, &s.op_key)
                        .map_err(|_| VaultError::Altered(self.user.clone()))?,
                )
            },
        })
    }
}

/// The 12-byte nonce as the cipher's array type.
fn nonce_array(bytes: &[u8]) -> Result<[u8; 12], VaultError> {
    <[u8; 12]>::try_from(bytes)
        .map_err(|_| VaultError::File("a vault nonce is not 12 bytes".into()))
}

/// Whether `a` and `b` are equal, comparing every byte whatever differs (no early exit on
/// the first difference); the length is not secret.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Vault {
    /// The vault path in `data_dir`.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(VAULT_FILE)
    }

    /// Reads the vault of `data_dir`; an absent file is an empty vault.
    ///
    /// # Errors
    /// [`VaultError::File`] naming the file when it cannot be read or parsed, or has a
    /// format newer than this build.
    pub fn load(data_dir: &Path) -> Result<Vault, VaultError> {
        let path = Vault::path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vault::default()),
            Err(e) => {
                return Err(VaultError::File(format!(
                    "cannot read the sign-in vault {}: {e}",
                    path.display()
                )));
            }
        };
        let vault: Vault = serde_json::from_str(&text).map_err(|e| {
            VaultError::File(format!(
                "the sign-in vault {} is damaged ({e}); it was not changed. Restore it from a \
                 backup, or move it away to start over (people sign in online again; a \
                 console without a server loses its cache)",
                path.display()
            ))
        })?;
        if vault.format > FORMAT {
            return Err(VaultError::File(format!(
                "the sign-in vault {} has format {}, this Outpost knows up to {FORMAT}; run a \
                 newer Outpost",
                path.display(),
                vault.format
            )));
        }
        Ok(vault)
    }

    /// Writes the vault through [`write_private`] (temp file, fsync, rename, directory
    /// fsync).
    ///
    /// # Errors
    /// [`VaultError::File`] naming the file.
    pub fn save(&self, data_dir: &Path) -> Result<(), VaultError> {
        let path = Vault::path(data_dir);
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| VaultError::File(format!("cannot encode the vault: {e}")))?;
        write_private(&path, &text).map_err(|e| {
            VaultError::File(format!(
                "cannot write the sign-in vault {}: {e}",
                path.display()
            ))
        })
    }

    /// The entry of `user`.
    pub fn entry(&self, user: &str) -> Option<&Entry> {
        self.users.iter().find(|e| e.user == user)
    }

    /// The entry of `user`, mutable.
    pub fn entry_mut(&mut self, user: &str) -> Option<&mut Entry> {
        self.users.iter_mut().find(|e| e.user == user)
    }

    /// Puts `entry` first (replacing the person's old one, keeping its failure record
    /// cleared) and keeps the newest [`MAX_USERS`].
    pub fn upsert(&mut self, entry: Entry) {
        self.users.retain(|e| e.user != entry.user);
        self.users.insert(0, entry);
        self.users
            .sort_by_key(|e| std::cmp::Reverse(e.last_sign_in));
        self.users.truncate(MAX_USERS);
    }
}

/// Creates (truncating) a file readable only by its owner where the OS supports it.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Writes a private file (0600 on Unix) durably: `NAME.tmp` beside it, fsync, rename, and
/// an fsync of the directory where the platform can open one (the rename is durable then).
///
/// # Errors
/// The I/O error.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temp = path.with_file_name(name);
    {
        let mut f = open_private(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&temp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0)
            .single()
            .expect("date")
            + chrono::Duration::seconds(secs)
    }

    fn profile(user: &str) -> Profile {
        Profile {
            user: user.into(),
            display_name: format!("{user} 名"),
            role: Role::Dispatcher,
            unit_id: None,
            offline_until: Some(t(3600)),
        }
    }

    fn secrets() -> Secrets {
        Secrets {
            cache_key: CacheKey::from_bytes([7; 32]),
            totp_secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into(),
            op_key: None,
        }
    }

    #[test]
    fn the_op_key_is_sealed_with_the_entry_and_an_old_entry_has_none() {
        let mut with_key = secrets();
        with_key.op_key = Some(OpSigner::new("disp.zhao", "0a1b", &"5c".repeat(32)).expect("key"));
        let (entry, _) = seal(
            &profile("disp.zhao"),
            "pass phrase 1",
            KdfParams::TEST_ONLY,
            &with_key,
            t(0),
        )
        .expect("seal");
        assert!(!entry.sealed.contains(&"5c".repeat(32)));
        let (opened, _) = entry.open("pass phrase 1").expect("open");
        assert_eq!(opened, with_key);
        let (old, _) = seal(
            &profile("disp.zhao"),
            "pass phrase 1",
            KdfParams::TEST_ONLY,
            &secrets(),
            t(0),
        )
        .expect("seal");
        assert_eq!(old.open("pass phrase 1").expect("open").0.op_key, None);
    }

    #[test]
    fn an_entry_opens_with_its_password_only_and_binds_its_clear_fields() {
        let (entry, _) = seal(
            &profile("disp.zhao"),
            "pass phrase 1",
            KdfParams::TEST_ONLY,
            &secrets(),
            t(0),
        )
        .expect("seal");
        let (opened, _) = entry.open("pass phrase 1").expect("open");
        assert_eq!(opened, secrets());
        assert!(matches!(
            entry.open("pass phrase 2"),
            Err(VaultError::WrongPassword)
        ));
        let mut unit = entry.clone();
        unit.unit_id = Some("u-09".into());
        assert!(matches!(
            unit.open("pass phrase 1"),
            Err(VaultError::Altered(_))
        ));
        let mut longer = entry.clone();
        longer.offline_until = Some(t(7 * 86_400));
        assert!(matches!(
            longer.open("pass phrase 1"),
            Err(VaultError::Altered(_))
        ));
        let mut name = entry.clone();
        name.display_name = "someone else".into();
        assert!(matches!(
            name.open("pass phrase 1"),
            Err(VaultError::Altered(_))
        ));
        // Not bound: the ordering time and the failure record.
        let mut later = entry;
        later.last_sign_in = t(99);
        later.failures.push(t(5));
        assert!(later.open("pass phrase 1").is_ok());
    }

    #[test]
    fn the_vault_keeps_the_newest_eight_and_round_trips_through_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut v = Vault::default();
        for i in 0..10 {
            let (e, _) = seal(
                &profile(&format!("u{i}")),
                "pw",
                KdfParams::TEST_ONLY,
                &secrets(),
                t(i),
            )
            .expect("seal");
            v.upsert(e);
        }
        let names: Vec<&str> = v.users.iter().map(|e| e.user.as_str()).collect();
        assert_eq!(names, ["u9", "u8", "u7", "u6", "u5", "u4", "u3", "u2"]);
        v.save(dir.path()).expect("save");
        assert!(!dir.path().join("vault.json.tmp").exists());
        assert_eq!(Vault::load(dir.path()).expect("load"), v);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(VAULT_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
