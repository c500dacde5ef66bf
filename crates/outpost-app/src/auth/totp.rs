//! RFC 6238 time-based codes (SHA-1, 6 digits, 30-second steps) through `totp-rs`, checked
//! at the current step ±1 (the server's rule, issue 6), with the step that matched returned
//! so the caller can refuse a replay.

use chrono::{DateTime, Utc};
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per step.
pub const STEP_S: u64 = 30;

/// The issuer shown by authenticator apps.
pub const ISSUER: &str = "Outpost";

/// A fresh secret: 20 random bytes (160 bits, RFC 4226's recommendation), base32.
///
/// # Errors
/// When the OS random generator fails.
pub fn new_secret() -> Result<String, String> {
    let bytes = super::vault::random::<20>().map_err(|e| e.to_string())?;
    Ok(Secret::Raw(bytes.to_vec()).to_encoded().to_string())
}

fn totp(secret_b32: &str, user: &str) -> Result<TOTP, String> {
    let bytes = Secret::Encoded(secret_b32.to_owned())
        .to_bytes()
        .map_err(|_| "the stored TOTP secret is not base32".to_owned())?;
    // `:` is not allowed in an otpauth label; login names never contain one (checked at
    // setup), names from a server are sanitised the same way for the URI only.
    let account = user.replace(':', "_");
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_S,
        bytes,
        Some(ISSUER.to_owned()),
        account,
    )
    .map_err(|e| format!("the TOTP secret is unusable: {e}"))
}

/// The `otpauth://` URI for a QR code.
///
/// # Errors
/// For an unusable secret.
pub fn uri(secret_b32: &str, user: &str) -> Result<String, String> {
    Ok(totp(secret_b32, user)?.get_url())
}

/// The code at `at` (tests and the headless client).
///
/// # Errors
/// For an unusable secret.
pub fn code_at(secret_b32: &str, at: DateTime<Utc>) -> Result<String, String> {
    let t = u64::try_from(at.timestamp()).unwrap_or(0);
    Ok(totp(secret_b32, "x")?.generate(t))
}

/// The time step of `at`.
pub fn step_of(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0) / STEP_S
}

/// The step (current ±1) whose code is `code`, if any.
///
/// # Errors
/// For an unusable secret.
pub fn matching_step(
    secret_b32: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<u64>, String> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let t = totp(secret_b32, "x")?;
    let step = step_of(now);
    for s in [step.saturating_sub(1), step, step + 1] {
        let expected = t.generate(s * STEP_S);
        if super::vault::constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            return Ok(Some(s));
        }
    }
    Ok(None)
}
