//! Who may start a new epoch, and the audit record of each one (security review S5).
//!
//! A pull or push whose cursor is beyond the newest gseq of the current epoch (or that
//! names a later epoch) proves that the server was restored from a backup, and the server
//! starts a new epoch so that every console resyncs (SYNC.md principle 11). Since any
//! signed-in person could send such a cursor, only the roles that write (commander,
//! dispatcher, field unit: the consoles whose ops a restore can lose) may start one; a
//! viewer's cursor beyond the newest gseq is answered 409 `epoch_changed` with the current
//! epoch (its console resyncs to the server as it is, nothing else changes). Every start is
//! recorded as `sync.epoch_start` ok with the person and the device, every refusal as
//! `sync.epoch_start` refused.

use access::Role;
use outpost_domain::access;
use uuid::Uuid;

use super::audit::{AuditEvent, AuditOutcome};
use super::{PushAuth, Security, SessionInfo};
use crate::service::EpochGuard;

/// The audit action of a new epoch (and of a refused attempt).
pub const EPOCH_START_ACTION: &str = "sync.epoch_start";

/// Whether `role` may start a new epoch: the roles that write ops.
pub fn may_start_epoch(role: Role) -> bool {
    matches!(role, Role::Commander | Role::Dispatcher | Role::FieldUnit)
}

/// The [`EpochGuard`] of a signed-in person's pull ([`Security::epoch_auth`]).
#[derive(Debug)]
pub struct EpochAuth<'a> {
    security: &'a Security,
    session: &'a SessionInfo,
}

impl Security {
    /// The epoch check of a request of `session` ([`EpochGuard`]).
    pub fn epoch_auth<'a>(&'a self, session: &'a SessionInfo) -> EpochAuth<'a> {
        EpochAuth {
            security: self,
            session,
        }
    }
}

impl EpochGuard for EpochAuth<'_> {
    fn may_start_epoch(&self, evidence: &str) -> Result<(), String> {
        let s = self.session;
        if may_start_epoch(s.role) {
            return Ok(());
        }
        let why = format!(
            "forbidden: a {} cannot start a new epoch (only commanders, dispatchers and field \
             units, whose ops a restore can lose); answered with the current epoch",
            s.role
        );
        self.security.audit(
            AuditEvent::new(EPOCH_START_ACTION, AuditOutcome::Refused)
                .user(s.user.as_str())
                .device(s.device_id.as_str())
                .target("epoch")
                .detail(format!("{why}; {evidence}")),
        );
        Err(why)
    }

    fn epoch_started(&self, old: Uuid, new: Uuid, evidence: &str) {
        let s = self.session;
        self.security.audit(
            AuditEvent::new(EPOCH_START_ACTION, AuditOutcome::Ok)
                .user(s.user.as_str())
                .device(s.device_id.as_str())
                .target(format!("epoch {new}"))
                .detail(format!(
                    "restore from a backup detected: {evidence}; epoch {old} ended"
                )),
        );
    }
}

impl EpochGuard for PushAuth<'_> {
    fn may_start_epoch(&self, evidence: &str) -> Result<(), String> {
        self.security
            .epoch_auth(self.session)
            .may_start_epoch(evidence)
    }

    fn epoch_started(&self, old: Uuid, new: Uuid, evidence: &str) {
        self.security
            .epoch_auth(self.session)
            .epoch_started(old, new, evidence);
    }
}
