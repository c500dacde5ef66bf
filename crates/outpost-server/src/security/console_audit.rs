//! `POST /v1/audit/events`: the console's audit outbox reaches the trail (issue 6).
//!
//! Sign-ins (online and offline, and their failures), unlocks, locks, sign-outs, track
//! exports and local permission refusals happen on the console, often without a network.
//! The console records them in its outbox ([`outpost_domain::wire::ConsoleAuditEvent`]) and
//! uploads them under a session; each event becomes one record of the hash chain:
//!
//! | record field | from |
//! |---|---|
//! | `at` | the server's clock when the event was **received** (the chain's times stay in order) |
//! | `user` | the event's `user` — or, when refused (below), the session's user |
//! | `device` | the device of the TLS client certificate (never from the body) |
//! | `action` | `console:` + the event's action, e.g. `console:sign_in_failed` |
//! | `target` | the event's target |
//! | `outcome` | the event's outcome — or `refused` |
//! | `detail` | `console time <the event's at>; event <event_id>; <the event's detail>` |
//!
//! So the console's own time of the event (to 1/100 s with its UTC offset) is kept in the
//! detail, hashed like every field.
//!
//! Rules: any signed-in role may post events, for its own device only (the certificate's).
//! An event's `user` must be the session's user or a person holding a grant on this device
//! (they signed in on it online at least once, so their offline sign-ins here are
//! plausible); an event naming anybody else is recorded with outcome `refused`, the session's
//! user, and `refused: …` plus the claimed user in the detail — kept as evidence (a failed
//! sign-in under a made-up name is exactly what an auditor wants to see), not attributed to
//! the name. Event ids are recorded once ([`AuditLog::record_new`]): a batch re-sent after a
//! lost answer records nothing twice. A bad batch (more than [`MAX_AUDIT_EVENTS`] events, a
//! field that does not validate) is refused whole with 400 naming `events[i].FIELD`, and that
//! refusal is audited (`audit.events`, failed).
//!
//! What these records prove: that the device holding that certificate reported the event,
//! under a session of the user who uploaded it, at the receipt time. They cannot prove
//! that the event happened as reported (a tampered console can report anything, or leave
//! events out); the chain protects them from change once received. The ids of recorded
//! events (`audit_ingested`) are kept when records are pruned, so they stay known.
//!
//! [`AuditLog::record_new`]: super::audit::AuditLog::record_new

use std::collections::HashMap;

use outpost_domain::wire::{
    AuditEventsRequest, AuditEventsResponse, ConsoleAuditEvent, MAX_AUDIT_EVENTS,
};

use super::accounts::SessionInfo;
use super::{AuditEvent, AuditOutcome, AuthError, Security, check_protocol};

/// The action prefix of records made from console events.
pub const CONSOLE_ACTION_PREFIX: &str = "console:";

fn outcome_of_text(s: &str) -> AuditOutcome {
    match s {
        "ok" => AuditOutcome::Ok,
        "refused" => AuditOutcome::Refused,
        _ => AuditOutcome::Failed,
    }
}

impl Security {
    /// `POST /v1/audit/events` for `session` (see the module docs).
    ///
    /// # Errors
    /// [`AuthError::BadRequest`] naming the field (`protocol`, `events`, `events[i].FIELD`);
    /// [`AuthError::Storage`].
    pub fn console_events(
        &self,
        session: &SessionInfo,
        req: &AuditEventsRequest,
    ) -> Result<AuditEventsResponse, AuthError> {
        let r = self.console_events_inner(session, req);
        if let Err(e) = &r {
            self.audit(
                AuditEvent::new("audit.events", AuditOutcome::Failed)
                    .user(session.user.as_str())
                    .device(session.device_id.as_str())
                    .target("POST /v1/audit/events")
                    .detail(format!("{}: {e}", e.code())),
            );
        }
        r
    }

    fn console_events_inner(
        &self,
        session: &SessionInfo,
        req: &AuditEventsRequest,
    ) -> Result<AuditEventsResponse, AuthError> {
        check_protocol(req.protocol)?;
        if req.events.len() > MAX_AUDIT_EVENTS {
            return Err(AuthError::BadRequest(format!(
                "events: {} events, at most {MAX_AUDIT_EVENTS} per request",
                req.events.len()
            )));
        }
        for (i, e) in req.events.iter().enumerate() {
            e.validate()
                .map_err(|why| AuthError::BadRequest(format!("events[{i}].{why}")))?;
        }
        let mut allowed: HashMap<&str, bool> = HashMap::new();
        let mut items = Vec::with_capacity(req.events.len());
        let mut refused = Vec::new();
        for e in &req.events {
            let ok = match allowed.get(e.user.as_str()) {
                Some(ok) => *ok,
                None => {
                    let ok = e.user == session.user
                        || self
                            .accounts
                            .author(&e.user, &session.device_id)?
                            .is_some_and(|a| !a.grants.is_empty());
                    allowed.insert(e.user.as_str(), ok);
                    ok
                }
            };
            if !ok {
                refused.push(e.event_id);
            }
            items.push((e.event_id.to_string(), record_of(session, e, ok)));
        }
        let (recorded, duplicates) = match self.audit_log() {
            Some(log) => log
                .record_new(&items)
                .map_err(|e| AuthError::Storage(format!("audit trail: {e}")))?,
            // A test sink keeps no ids: everything is recorded.
            None => {
                for (_, e) in &items {
                    self.audit(e.clone());
                }
                (u32::try_from(items.len()).unwrap_or(u32::MAX), 0)
            }
        };
        Ok(AuditEventsResponse {
            recorded,
            duplicates,
            refused,
        })
    }
}

/// The trail's record of a console event (see the module docs).
fn record_of(session: &SessionInfo, e: &ConsoleAuditEvent, allowed: bool) -> AuditEvent {
    let base = format!("console time {}; event {}", e.at, e.event_id);
    let with_detail = if e.detail.is_empty() {
        base
    } else {
        format!("{base}; {}", e.detail)
    };
    let action = format!("{CONSOLE_ACTION_PREFIX}{}", e.action);
    if allowed {
        AuditEvent::new(action, outcome_of_text(&e.outcome))
            .user(e.user.as_str())
            .device(session.device_id.as_str())
            .target(e.target.as_str())
            .detail(with_detail)
    } else {
        AuditEvent::new(action, AuditOutcome::Refused)
            .user(session.user.as_str())
            .device(session.device_id.as_str())
            .target(e.target.as_str())
            .detail(format!(
                "refused: the event names user {:?}, who is not signed in on this device and \
                 holds no grant on it; console outcome {}; {with_detail}",
                e.user, e.outcome
            ))
    }
}
