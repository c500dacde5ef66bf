//! Op signing (issue 6, security review S2): who really wrote an op.
//!
//! At every online login (and the session given at enrollment) the server creates a random
//! 256-bit *op key* for that person on that device, stores it with the person's grant on the
//! device under a key id, and answers with both (`LoginResponse::op_key`, `op_key_id`). The
//! console keeps the key only inside the person's password-sealed vault entry and signs every
//! op it writes for that person, online or offline, in [`OpEnvelope::auth`]:
//!
//! ```text
//! auth = KEYID "." HEX(HMAC-SHA256(op_key, signed_bytes(envelope)))
//! signed_bytes(envelope) = "outpost-op-auth-v1\n" || serde_json(envelope with auth = None)
//! ```
//!
//! `serde_json(envelope)` is the envelope's JSON as serde_json writes it: fields in
//! declaration order, no whitespace, `auth` absent (it is skipped when `None`). That text is a
//! function of the envelope's value (the workspace builds serde_json with `float_roundtrip`,
//! so coordinates read back bit for bit), so the server recomputes it from the envelope it
//! decoded. A field an older server does not know is dropped when it decodes, so an op of a
//! newer schema may fail the check there: it is parked, as such ops are anyway.
//!
//! The server accepts an op whose author is not the session's person only when `auth` is
//! valid under a key of one of the author's grants on this device whose window covers the
//! op's HLC time (see `outpost-server` `security::PushAuth`). An HMAC proves nothing to other
//! consoles (they do not hold the key); it only lets the server, which issued the key, know
//! that the op was written by software that held the person's unlocked vault entry.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::op::OpEnvelope;

/// The domain-separation prefix of [`signed_bytes`].
pub const OP_AUTH_CONTEXT: &[u8] = b"outpost-op-auth-v1\n";

/// Bytes of an op key (256 bits).
pub const OP_KEY_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Why an op's `auth` is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpAuthError {
    /// No `auth` at all.
    #[error("the op is not signed")]
    Missing,
    /// Not `KEYID.HEX`, or the hex is not a 32-byte MAC.
    #[error("the op's auth is malformed (KEYID.HEX(HMAC-SHA256) expected)")]
    Malformed,
    /// The MAC does not match under the key of its key id.
    #[error("the op's signature does not verify under key {0}")]
    BadSignature(String),
    /// The envelope cannot be encoded (never for the envelopes of this crate).
    #[error("the op cannot be encoded: {0}")]
    Encode(String),
}

/// The bytes an op's `auth` MACs: [`OP_AUTH_CONTEXT`] then the envelope's JSON without
/// `auth` (see the module doc).
///
/// # Errors
/// [`OpAuthError::Encode`] when serde_json refuses the envelope.
pub fn signed_bytes(env: &OpEnvelope) -> Result<Vec<u8>, OpAuthError> {
    let mut bare = env.clone();
    bare.auth = None;
    let json = serde_json::to_vec(&bare).map_err(|e| OpAuthError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(OP_AUTH_CONTEXT.len() + json.len());
    out.extend_from_slice(OP_AUTH_CONTEXT);
    out.extend_from_slice(&json);
    Ok(out)
}

/// The key id named in an op's `auth` (the text before the first `.`), if it has one.
pub fn key_id_of(auth: &str) -> Option<&str> {
    auth.split_once('.')
        .map(|(id, _)| id)
        .filter(|id| !id.is_empty())
}

/// A person's op key on this device, with its key id: signs the ops the console writes for
/// that person. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct OpSigner {
    user: String,
    key_id: String,
    key: [u8; OP_KEY_BYTES],
}

impl std::fmt::Debug for OpSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpSigner")
            .field("user", &self.user)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl OpSigner {
    /// The signer of `user`'s ops with the key `key_hex` (64 hex digits) named `key_id`
    /// (non-empty, no `.`).
    ///
    /// # Errors
    /// [`OpAuthError::Malformed`] naming nothing secret when the key or id is unusable.
    pub fn new(user: &str, key_id: &str, key_hex: &str) -> Result<OpSigner, OpAuthError> {
        if key_id.is_empty() || key_id.contains('.') {
            return Err(OpAuthError::Malformed);
        }
        let key = decode_key(key_hex).ok_or(OpAuthError::Malformed)?;
        Ok(OpSigner {
            user: user.to_string(),
            key_id: key_id.to_string(),
            key,
        })
    }

    /// The person whose ops this signs.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key, 64 hex digits (to seal it in the person's vault entry; never log it).
    pub fn key_hex(&self) -> String {
        hex::encode(self.key)
    }

    /// The `auth` text for `env` (its current `auth` is ignored).
    ///
    /// # Errors
    /// [`OpAuthError::Encode`].
    pub fn auth_for(&self, env: &OpEnvelope) -> Result<String, OpAuthError> {
        let mac = mac(&self.key, &signed_bytes(env)?)?;
        Ok(format!("{}.{}", self.key_id, hex::encode(mac)))
    }

    /// Signs `env` in place when it is this person's op (`env.user == user`); another
    /// person's op is left as it is.
    ///
    /// # Errors
    /// [`OpAuthError::Encode`].
    pub fn sign(&self, env: &mut OpEnvelope) -> Result<(), OpAuthError> {
        if env.user == self.user {
            env.auth = Some(self.auth_for(env)?);
        }
        Ok(())
    }
}

/// Decodes a 64-hex-digit op key.
pub fn decode_key(key_hex: &str) -> Option<[u8; OP_KEY_BYTES]> {
    let bytes = hex::decode(key_hex.trim()).ok()?;
    <[u8; OP_KEY_BYTES]>::try_from(bytes.as_slice()).ok()
}

fn mac(key: &[u8; OP_KEY_BYTES], bytes: &[u8]) -> Result<[u8; 32], OpAuthError> {
    // HMAC accepts keys of any length; a 32-byte key never fails.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).map_err(|_| OpAuthError::Malformed)?;
    m.update(bytes);
    Ok(m.finalize().into_bytes().into())
}

/// Checks `env.auth` against `key` (the op key of the key id `env.auth` names; the caller
/// looks it up with [`key_id_of`]). Constant-time comparison.
///
/// # Errors
/// [`OpAuthError::Missing`], [`OpAuthError::Malformed`], [`OpAuthError::BadSignature`],
/// [`OpAuthError::Encode`].
pub fn verify(env: &OpEnvelope, key: &[u8; OP_KEY_BYTES]) -> Result<(), OpAuthError> {
    let auth = env.auth.as_deref().ok_or(OpAuthError::Missing)?;
    let (id, mac_hex) = auth.split_once('.').ok_or(OpAuthError::Malformed)?;
    let given = hex::decode(mac_hex).map_err(|_| OpAuthError::Malformed)?;
    if given.len() != 32 {
        return Err(OpAuthError::Malformed);
    }
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).map_err(|_| OpAuthError::Malformed)?;
    m.update(&signed_bytes(env)?);
    m.verify_slice(&given)
        .map_err(|_| OpAuthError::BadSignature(id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{Hlc, Lane, OpBody, SCHEMA_VERSION};
    use uuid::Uuid;

    fn env(user: &str) -> OpEnvelope {
        OpEnvelope {
            op_id: Uuid::from_u128(1),
            origin: Uuid::from_u128(2),
            seq: 1,
            hlc: Hlc {
                wall_ms: 1_764_400_000_000,
                logical: 0,
            },
            base_version: None,
            user: user.into(),
            schema: SCHEMA_VERSION,
            lane: Lane::Notes,
            lane_seq: 1,
            body: OpBody::IncidentAcknowledge {
                incident_id: Uuid::from_u128(3),
            },
            auth: None,
        }
    }

    #[test]
    fn a_signed_op_verifies_after_a_json_round_trip_and_not_after_a_change() {
        let key = "ab".repeat(32);
        let s = OpSigner::new("cmdr", "k1", &key).expect("signer");
        let mut e = env("cmdr");
        s.sign(&mut e).expect("sign");
        let auth = e.auth.clone().expect("signed");
        assert_eq!(key_id_of(&auth), Some("k1"));
        assert_eq!(auth.len(), "k1.".len() + 64);
        let back: OpEnvelope =
            serde_json::from_str(&serde_json::to_string(&e).expect("json")).expect("parse");
        let k = decode_key(&key).expect("key");
        assert_eq!(verify(&back, &k), Ok(()));
        let mut moved = back.clone();
        moved.hlc.wall_ms -= 1;
        assert_eq!(
            verify(&moved, &k),
            Err(OpAuthError::BadSignature("k1".into()))
        );
        let other = decode_key(&"cd".repeat(32)).expect("key");
        assert_eq!(
            verify(&back, &other),
            Err(OpAuthError::BadSignature("k1".into()))
        );
        assert_eq!(verify(&env("cmdr"), &k), Err(OpAuthError::Missing));
    }

    #[test]
    fn another_persons_op_is_not_signed_and_old_envelopes_parse() {
        let s = OpSigner::new("cmdr", "k1", &"ab".repeat(32)).expect("signer");
        let mut e = env("disp");
        s.sign(&mut e).expect("sign");
        assert_eq!(e.auth, None);
        let text = serde_json::to_string(&e).expect("json");
        assert!(!text.contains("auth"), "{text}");
        let back: OpEnvelope = serde_json::from_str(&text).expect("old form parses");
        assert_eq!(back, e);
        assert!(OpSigner::new("cmdr", "k.1", &"ab".repeat(32)).is_err());
        assert!(OpSigner::new("cmdr", "k1", "abcd").is_err());
        assert!(!format!("{s:?}").contains("abab"));
    }
}
