//! The sync protocol between consoles and `outpost-server` (`design/SYNC.md` principles
//! 3, 7, 8, 11, 12), version [`PROTOCOL_VERSION`], as JSON over HTTP:
//!
//! | request | body / query | answer |
//! |---|---|---|
//! | `GET /v1/health` | | [`Health`] |
//! | `GET /v1/capabilities` | | [`Capabilities`] |
//! | `POST /v1/push` | [`PushRequest`] | [`PushResponse`] |
//! | `GET /v1/pull?after=G&limit=N` | | [`PullResponse`] |
//! | `GET /v1/snapshot` | | [`Snapshot`] |
//! | `GET /v1/poke` | WebSocket | text messages [`Poke`] |
//!
//! Errors are an HTTP status with an [`ErrorBody`]: 400 (undecodable or truncated payload,
//! a push for another origin's ops, lane/seq mismatch; nothing is stored), 413 (more than
//! [`MAX_BATCH_OPS`] ops or [`MAX_PUSH_BYTES`] bytes), 409 `epoch_changed` (the server was
//! restored; the console resyncs), 410 `snapshot_required` (the history after `after` has been
//! compacted; the console loads [`Snapshot`]), 503 (shutting down; retry).
//!
//! Pushes go one lane at a time ([`crate::op::Lane`]), in `lane_seq` order. The server keeps
//! one high-water mark per (origin, lane): an op at or below it is answered with its stored
//! outcome (idempotent re-send), the next one is accepted or parked, and an op beyond a gap
//! stops the batch with `resend_from`. Ops travel as raw JSON so that an op of a newer schema
//! is parked with a reason, never dropped for failing to decode.
//!
//! Pull is in global order (`gseq`) and includes the console's own ops, so it learns their
//! `gseq` (needed for causality, [`crate::merge`]). The console applies a page and stores
//! the new cursor in one transaction. The WebSocket only pokes ("something new up to gseq
//! N"); the data always flows over pull.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::op::Lane;

/// The protocol version this build speaks (the `/v1/` of the paths).
pub const PROTOCOL_VERSION: u32 = 1;
/// The most ops a push may carry; more gets 413.
pub const MAX_BATCH_OPS: usize = 1_000;
/// The largest push body accepted, bytes; more gets 413.
pub const MAX_PUSH_BYTES: usize = 4 * 1024 * 1024;
/// The largest pull page served (a larger `limit` is reduced to it).
pub const MAX_PULL_LIMIT: usize = 5_000;
/// How far the global sequence jumps when a server learns it was restored from a backup
/// (a console knew a `gseq` beyond the server's newest): new numbers then never collide with
/// the numbers of the lost ops that consoles had already seen (2^32 ops).
pub const EPOCH_GSEQ_GAP: u64 = 1 << 32;
/// Acked ops stay in a console's outbox at least this long, for re-push after a server
/// restore (SYNC.md principle 11), days.
pub const ACKED_RETENTION_DAYS: i64 = 14;

/// `POST /v1/push`: ops of one origin and one lane, in `lane_seq` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushRequest {
    /// [`PROTOCOL_VERSION`] of the console.
    pub protocol: u32,
    /// The pushing installation; every op must carry it (else 400).
    pub origin: Uuid,
    /// The lane of every op (else 400).
    pub lane: Lane,
    /// The server epoch the console last synced with (`None` before the first sync). A
    /// different current epoch answers 409 `epoch_changed`.
    pub epoch: Option<Uuid>,
    /// The newest `gseq` this console knows the server assigned: its pull cursor, or the
    /// `gseq` of its newest acknowledged op when that is higher. A value beyond the server's
    /// newest `gseq` tells the server it was restored from a backup: it starts a new epoch
    /// and answers 409.
    pub cursor: u64,
    /// The ops, as raw [`crate::op::OpEnvelope`] JSON.
    pub ops: Vec<Value>,
}

/// What became of one pushed op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Newly ordered at `gseq`.
    Accepted {
        /// Its global sequence number.
        gseq: u64,
    },
    /// Already accepted earlier (a re-send); the stored answer.
    Duplicate {
        /// Its global sequence number.
        gseq: u64,
    },
    /// Refused and parked: not applied anywhere; the author sees it under "needs attention"
    /// with the reason. A re-send gets the same answer.
    Parked {
        /// One line saying what was wrong.
        reason: String,
    },
}

/// The outcome of one op of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpResult {
    /// The op.
    pub op_id: Uuid,
    /// Its lane sequence number.
    pub lane_seq: u64,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The answer to a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// The server's epoch.
    pub epoch: Uuid,
    /// One result per op answered, in order; ops after a gap are not answered.
    pub results: Vec<OpResult>,
    /// Set when the batch skipped ahead: re-send this lane from this `lane_seq`.
    pub resend_from: Option<u64>,
    /// The server's high-water mark for (origin, lane) after this push.
    pub high_water: u64,
    /// The newest `gseq` on the server.
    pub server_gseq: u64,
}

/// One op in the global order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PulledOp {
    /// Its global sequence number.
    pub gseq: u64,
    /// The op as the author wrote it ([`crate::op::OpEnvelope`] JSON; may be of a newer
    /// schema than the reader knows: the reader keeps it aside and moves on).
    pub op: Value,
}

/// `GET /v1/pull?after=G&limit=N`: the ops with `gseq > after`, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullResponse {
    /// The server's epoch.
    pub epoch: Uuid,
    /// Up to `limit` ops.
    pub ops: Vec<PulledOp>,
    /// The newest `gseq` on the server when the page was read.
    pub server_gseq: u64,
    /// True when more ops follow this page.
    pub more: bool,
}

/// `GET /v1/snapshot`: the whole retained state, for a console whose cursor is older than
/// the compacted history (410 `snapshot_required`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The server's epoch.
    pub epoch: Uuid,
    /// The snapshot is complete up to this `gseq`; pull continues after it.
    pub gseq: u64,
    /// Every retained op up to `gseq`, in order.
    pub ops: Vec<PulledOp>,
    /// Track history from compacted position reports (unit id, fix), kept in state.
    pub compacted_positions: Vec<CompactedFix>,
}

/// A position whose op was compacted away, kept as track history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactedFix {
    /// The unit.
    pub unit_id: String,
    /// The fix.
    pub fix: crate::op::Fix,
    /// When it was received (HLC wall time of its op), ms since the Unix epoch (UTC).
    pub received_at_ms: i64,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `"ok"`, or `"shutting_down"`.
    pub status: String,
    /// The server's epoch.
    pub epoch: Uuid,
    /// The newest `gseq`.
    pub server_gseq: u64,
    /// False while the server cannot write its audit trail (it keeps serving; the operator
    /// must act). True from servers without an audit trail and from older servers.
    #[serde(default = "audit_ok_default")]
    pub audit_ok: bool,
}

fn audit_ok_default() -> bool {
    true
}

/// `GET /v1/capabilities`: what this server speaks, so an older console can keep working
/// against a newer server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Protocol versions served (paths `/v{n}/`).
    pub protocols: Vec<u32>,
    /// The newest op schema the server applies; older schemas are accepted.
    pub max_schema: u32,
    /// [`MAX_BATCH_OPS`] of this server.
    pub max_batch_ops: usize,
    /// [`MAX_PUSH_BYTES`] of this server.
    pub max_push_bytes: usize,
    /// [`MAX_PULL_LIMIT`] of this server.
    pub max_pull_limit: usize,
    /// The server's name and version, e.g. `"outpost-server 0.1.0"`.
    pub server: String,
}

/// A WebSocket poke: ops up to `gseq` are available to pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Poke {
    /// The newest `gseq`.
    pub gseq: u64,
    /// The server's epoch.
    pub epoch: Uuid,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable: `bad_request`, `too_large`, `epoch_changed`, `snapshot_required`,
    /// `unavailable`, `internal`.
    pub code: String,
    /// One line for people: what was wrong and where (e.g. `"ops[3].seq: missing field"`).
    pub message: String,
    /// For `epoch_changed`: the current epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Uuid>,
}

// ---------------------------------------------------------------------------------------
// Security: enrollment, login, revocations, audit (issue 6). Every endpoint below is served
// over TLS only. A console's device certificate (mutual TLS) identifies the device; a bearer
// token (`Authorization: Bearer TOKEN`) from `POST /v1/login` identifies the person. Errors
// use [`ErrorBody`] with the codes `unauthenticated` (401: no or unknown token, token expired
// or signed out, token presented by another device, wrong password or code),
// `certificate_required` (401: no valid device certificate), `locked_out` (403: too many
// failures; an administrator must unlock), `device_revoked` (403), `forbidden` (403: the
// role may not do this).

/// `POST /v1/enroll`: a console asks for a device certificate with a person's credentials
/// (TLS; no client certificate needed yet). The person's account must be enabled and not
/// locked; a failure counts towards the lockout like a failed login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// [`PROTOCOL_VERSION`] of the console.
    pub protocol: u32,
    /// Login name.
    pub user: String,
    /// Password.
    pub password: String,
    /// The current 6-digit TOTP code (RFC 6238, SHA-1, 30 s).
    pub totp: String,
    /// A name people recognise, e.g. `"巡逻车 03 笔记本"`; 1–100 characters.
    pub device_name: String,
    /// The console's installation origin (its ops carry it); a device pushes only ops of
    /// its own origin.
    pub origin: Uuid,
    /// PKCS#10 certificate signing request, PEM, for the key the console generated.
    pub csr_pem: String,
    /// The console's cache key (64 hex digits), escrowed by the server for this device and
    /// returned at every login from it, so a person who never signed in on this console
    /// before can open its encrypted cache after an online login.
    pub cache_key: String,
}

/// The answer to [`EnrollRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The device's id (the certificate's common name), e.g. `"dev-0192…"`.
    pub device_id: String,
    /// The device certificate, PEM, signed by the agency CA.
    pub certificate_pem: String,
    /// The agency CA certificate, PEM (the trust anchor for the server's certificate).
    pub ca_pem: String,
    /// When the device certificate expires (UTC).
    pub not_after: DateTime<Utc>,
    /// A session for the person who enrolled, bound to the newly enrolled device (a grant
    /// for offline use recorded as at a login), so the console signs in without a second
    /// code: the server accepts each TOTP step once per account, and the enrollment used
    /// the current one. `None` from a server of an earlier version (or when the session
    /// could not be stored): the console then signs in with `POST /v1/login` and the next
    /// code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<LoginResponse>,
}

/// `POST /v1/login` (mutual TLS with an enrolled device's certificate): password and TOTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// [`PROTOCOL_VERSION`] of the console.
    pub protocol: u32,
    /// Login name.
    pub user: String,
    /// Password.
    pub password: String,
    /// The current 6-digit TOTP code.
    pub totp: String,
}

/// The answer to [`LoginRequest`]: a session for this person on this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The bearer token (opaque; the server keeps only its hash). Valid only with this
    /// device's certificate, until `expires_at` or `POST /v1/logout`.
    pub token: String,
    /// When the session ends: 12 hours after the login (CJIS 5.9.5 re-authentication).
    pub expires_at: DateTime<Utc>,
    /// Login name.
    pub user: String,
    /// Display name.
    pub display_name: String,
    /// The account's role.
    pub role: crate::access::Role,
    /// For a field unit: its unit id.
    pub unit_id: Option<String>,
    /// The person's TOTP secret (base32), so the console can check the second factor at an
    /// offline login; the console keeps it only inside the password-wrapped vault entry.
    /// Empty for the roles that may not sign in on a console (administrator, auditor:
    /// `Role::reads_picture` false), security review S9.
    pub totp_secret: String,
    /// How long after this login the person may sign in offline on this device, seconds;
    /// ops they write offline are accepted until then.
    pub offline_grace_s: u64,
    /// The cache key escrowed at enrollment (64 hex digits), which opens the console's
    /// encrypted local picture. Empty for the roles that may not read the picture
    /// (administrator, auditor: `Role::reads_picture` false; the console refuses them),
    /// security review S9.
    pub cache_key: String,
    /// This person's op key on this device, issued at this login (64 hex digits, 256 bits;
    /// [`crate::op_auth`]): the console keeps it only in the person's sealed vault entry and
    /// signs every op it writes for them with it (`OpEnvelope::auth`), also offline. Valid
    /// for ops whose HLC time lies in this login's grant window (from 15 minutes before the
    /// login until the offline grace ends, the person logs out on this device, the account
    /// is disabled or the device revoked). Empty from a server before op signing.
    #[serde(default)]
    pub op_key: String,
    /// The key id of `op_key`, the `KEYID` of the ops' `auth` (no `.`). Empty with `op_key`.
    #[serde(default)]
    pub op_key_id: String,
    /// The account's password was chosen by an administrator (`outpost-server user add` or
    /// `user passwd`): until the person changes it (`POST /v1/password`), every endpoint
    /// except `/v1/password` and `/v1/logout` answers 403 `password_change_required`.
    /// `false` from a server before password changes.
    #[serde(default)]
    pub must_change_password: bool,
}

/// `POST /v1/password` (device certificate + the person's session token): the signed-in
/// person changes their own password. The old password and a fresh TOTP code are checked
/// like a login (a failure counts towards the lockout; a spent code is refused). The new
/// password needs at least 12 characters, not only whitespace, and must differ from the
/// old one. On success (204) the person's other sessions end; this one stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChangeRequest {
    /// [`PROTOCOL_VERSION`] of the console.
    pub protocol: u32,
    /// The current password.
    pub old_password: String,
    /// The new password.
    pub new_password: String,
    /// The current 6-digit TOTP code (not one used before).
    pub totp: String,
}

/// `GET /v1/security/revocations`: what every console must honour, also offline.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Revocations {
    /// Increases with every change.
    pub version: u64,
    /// Revoked device ids (a console whose own id is here locks and forgets its key).
    pub revoked_devices: Vec<String>,
    /// Disabled accounts (a console refuses their offline login).
    pub disabled_users: Vec<String>,
}

/// One record of the audit trail (`GET /v1/audit`, auditor only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When, to 1/100 s with the UTC offset, e.g. `"2026-11-30T04:55:01.23+00:00"` (CJIS
    /// 5.9.5 §5.4.1.1).
    pub at: String,
    /// Login name (`"-"` when unknown, e.g. a request with no credentials).
    pub user: String,
    /// Device id (`"-"` when none).
    pub device: String,
    /// What was attempted: `login`, `enroll`, `logout`, `op:incident.create`, `pull`,
    /// `export`, `admin:user.add`, …
    pub action: String,
    /// What it was done to (an op id, a user, a path); may be empty.
    pub target: String,
    /// `ok`, `refused`, `failed`.
    pub outcome: String,
    /// One line of detail (the refusal's reason); may be empty.
    pub detail: String,
    /// Hex SHA-256 of the previous record (64 zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 over `prev_hash` and this record's fields.
    pub hash: String,
}

/// The answer to `GET /v1/audit?after=SEQ&limit=N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// Records after `after`, oldest first.
    pub records: Vec<AuditRecord>,
}

/// The most events one `POST /v1/audit/events` may carry.
pub const MAX_AUDIT_EVENTS: usize = 1_000;

/// The largest body of `POST /v1/audit/events`, bytes (1 MiB).
pub const MAX_AUDIT_EVENTS_BYTES: usize = 1024 * 1024;

/// The longest `target` or `detail` of a [`ConsoleAuditEvent`], bytes.
pub const MAX_AUDIT_EVENT_TEXT: usize = 1024;

/// What a console records in its audit outbox (issue 6): sign-ins and their failures
/// (online and offline), unlocks and their failures, locks, sign-outs, track exports, local
/// permission refusals, and `outbox_overflow` (events the full outbox could not keep).
pub const CONSOLE_AUDIT_ACTIONS: [&str; 9] = [
    "sign_in",
    "sign_in_failed",
    "unlock",
    "unlock_failed",
    "lock",
    "sign_out",
    "export",
    "forbidden",
    "outbox_overflow",
];

/// One event a console recorded, often offline, uploaded later with `POST /v1/audit/events`
/// (the console's audit outbox). Never carries a password or a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleAuditEvent {
    /// A UUID v7 made by the console when it recorded the event; the server records an
    /// event id once (a re-sent batch is not recorded twice).
    pub event_id: Uuid,
    /// When it happened by the console's clock: RFC 3339 to 1/100 s with the UTC offset,
    /// e.g. `"2026-11-30T05:01:02.34+01:00"`.
    pub at: String,
    /// The login name it concerns (for a failed sign-in: the name typed; `"-"` when that
    /// was not a valid login name).
    pub user: String,
    /// One of [`CONSOLE_AUDIT_ACTIONS`].
    pub action: String,
    /// What it was done to (online/offline, an export's file, a refused op's kind); may be
    /// empty; at most [`MAX_AUDIT_EVENT_TEXT`] bytes.
    pub target: String,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// One line: the reason of a refusal, an export's format and size; may be empty; at
    /// most [`MAX_AUDIT_EVENT_TEXT`] bytes.
    pub detail: String,
}

impl ConsoleAuditEvent {
    /// Checks the fields; the error names the field (`at`, `user`, `action`, `outcome`,
    /// `target`, `detail`) and what is wrong.
    ///
    /// # Errors
    /// A message `FIELD: why`.
    pub fn validate(&self) -> Result<(), String> {
        if DateTime::parse_from_rfc3339(&self.at).is_err() {
            return Err(format!(
                "at: {:?} is not an RFC 3339 time with a UTC offset",
                self.at
            ));
        }
        // The accounts' own rule (crate::names; fresh review S6): `王伟` and `ann@pd` pass.
        if self.user != "-" {
            crate::names::check_login_name(&self.user)
                .map_err(|e| format!("user: {e}, nor \"-\""))?;
        }
        if !CONSOLE_AUDIT_ACTIONS.contains(&self.action.as_str()) {
            return Err(format!(
                "action: {:?} is not one of {}",
                self.action,
                CONSOLE_AUDIT_ACTIONS.join(", ")
            ));
        }
        if !matches!(self.outcome.as_str(), "ok" | "refused" | "failed") {
            return Err(format!(
                "outcome: {:?} is not one of ok, refused, failed",
                self.outcome
            ));
        }
        for (name, text) in [("target", &self.target), ("detail", &self.detail)] {
            if text.len() > MAX_AUDIT_EVENT_TEXT {
                return Err(format!(
                    "{name}: {} bytes, at most {MAX_AUDIT_EVENT_TEXT}",
                    text.len()
                ));
            }
        }
        Ok(())
    }
}

/// `POST /v1/audit/events` (any signed-in role, for its own device): a batch of the
/// console's audit outbox, at most [`MAX_AUDIT_EVENTS`] events and
/// [`MAX_AUDIT_EVENTS_BYTES`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEventsRequest {
    /// [`PROTOCOL_VERSION`] of the console.
    pub protocol: u32,
    /// The events, oldest first.
    pub events: Vec<ConsoleAuditEvent>,
}

/// The answer to [`AuditEventsRequest`]: every event of the batch is now in the trail
/// (recorded now, recorded before, or recorded as refused); the console removes them all.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditEventsResponse {
    /// Events appended to the trail by this request (refused ones included).
    pub recorded: u32,
    /// Events already in the trail (an earlier upload whose answer was lost), not recorded
    /// again.
    pub duplicates: u32,
    /// Events recorded with outcome `refused` because their user is neither the session's
    /// user nor holds a grant on this device: their ids.
    pub refused: Vec<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enroll_response_without_a_session_still_reads_and_one_with_it_round_trips() {
        let old = r#"{"device_id":"dev-1","certificate_pem":"C","ca_pem":"A",
            "not_after":"2027-01-01T00:00:00Z"}"#;
        let resp: EnrollResponse = serde_json::from_str(old).expect("earlier server's answer");
        assert_eq!(resp.session, None);
        assert!(
            !serde_json::to_string(&resp)
                .expect("json")
                .contains("session")
        );
        let session = LoginResponse {
            token: "t".into(),
            expires_at: resp.not_after,
            user: "cmdr.wang".into(),
            display_name: "王".into(),
            role: crate::access::Role::Commander,
            unit_id: None,
            totp_secret: "JBSWY3DPEHPK3PXP".into(),
            offline_grace_s: 3600,
            cache_key: "00".repeat(32),
            op_key: String::new(),
            op_key_id: String::new(),
            must_change_password: false,
        };
        let with = EnrollResponse {
            session: Some(session.clone()),
            ..resp
        };
        let back: EnrollResponse =
            serde_json::from_str(&serde_json::to_string(&with).expect("json")).expect("read");
        assert_eq!(back.session, Some(session));
    }
}
