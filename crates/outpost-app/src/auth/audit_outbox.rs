//! The console's audit outbox (issue 6): what happens on the console — sign-ins online and
//! offline and their failures, unlocks and their failures, locks, sign-outs, track exports
//! and local permission refusals ([`outpost_domain::wire::CONSOLE_AUDIT_ACTIONS`]) — is
//! recorded here at once, often offline, and uploaded to the server's hash-chained trail
//! (`POST /v1/audit/events`) when the console has an online session.
//!
//! # The file
//! `audit-outbox.jsonl` in the data directory ([`OUTBOX_FILE`]): one
//! [`ConsoleAuditEvent`] per line, readable and writable only by its owner (0600). It is not
//! inside the encrypted cache because a failed sign-in happens before anything can open the
//! cache. It holds login names, times, actions, an export's file name and refusal reasons,
//! and never a password or a code: the Gate passes what the person typed as `secrets` and
//! every occurrence is replaced by `***` before a line is written (and no message of the Gate
//! quotes them in the first place).
//!
//! - Each event is appended and the file is synced (`fsync`) before the action it records
//!   answers, so a crash right after a failed sign-in still leaves its record.
//! - Events are removed only after the server answered 2xx for the batch that carried them
//!   (the file is then rewritten without them: a temp file, synced, renamed). The server
//!   records an event id once, so an upload whose answer was lost is simply sent again.
//! - Bounded: at most [`MAX_OUTBOX_EVENTS`] events and [`MAX_OUTBOX_BYTES`] bytes. When full,
//!   new events are not kept but counted in `audit-outbox.lost.json` ([`LOST_FILE`]); the
//!   next upload reports them as one `outbox_overflow` event (outcome `failed`, the count and
//!   the time of the first one lost), so the trail shows that records are missing.
//! - A line that does not decode (a write torn by a power cut) is skipped with a log entry
//!   and dropped at the next rewrite.
//!
//! Time: `at` is the console's clock as RFC 3339 to 1/100 s with the local UTC offset
//! (`%Y-%m-%dT%H:%M:%S%.2f%:z`, CJIS 5.9.5 §5.4.1.1), truncated, never rounded up.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use chrono::{DateTime, Local, Timelike, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use outpost_domain::Clock;
use outpost_domain::wire::{
    AuditEventsRequest, AuditEventsResponse, ConsoleAuditEvent, MAX_AUDIT_EVENT_TEXT,
    PROTOCOL_VERSION,
};

use super::server::ServerError;

/// The outbox file in the data directory.
pub const OUTBOX_FILE: &str = "audit-outbox.jsonl";

/// The count of events the full outbox could not keep.
pub const LOST_FILE: &str = "audit-outbox.lost.json";

/// The most events the outbox keeps.
pub const MAX_OUTBOX_EVENTS: usize = 10_000;

/// The largest outbox file, bytes (4 MiB).
pub const MAX_OUTBOX_BYTES: u64 = 4 * 1024 * 1024;

/// The most events per upload request.
pub const UPLOAD_BATCH_EVENTS: usize = 500;

/// The most bytes of events per upload request (under the server's 1 MiB).
pub const UPLOAD_BATCH_BYTES: usize = 768 * 1024;

/// What happened, and how it ended, as the console records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused by a rule (wrong password or code, a role that may not).
    Refused,
    /// Failed for another reason (storage, no answer).
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Lost {
    /// The id of the `outbox_overflow` event reporting them (kept until it is uploaded, so
    /// a re-sent report is recorded once).
    event_id: Uuid,
    /// When the first event was lost (console clock, as `at`).
    since: String,
    /// How many.
    count: u64,
}

#[derive(Debug, Default)]
struct Counts {
    events: usize,
    bytes: u64,
}

/// The outbox of one data directory. `Send + Sync`; the Gate and the console share it.
pub struct AuditOutbox {
    dir: PathBuf,
    max_events: usize,
    clock: Arc<dyn Clock>,
    counts: Mutex<Counts>,
    /// One upload at a time (the uploader thread and [`crate::auth::Gate::flush_audit`]).
    upload: Mutex<()>,
    /// Set when an event is recorded; the uploader waits on it.
    wake: Arc<(Mutex<bool>, Condvar)>,
}

impl std::fmt::Debug for AuditOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditOutbox")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `at` of an event: RFC 3339 to 1/100 s with the local UTC offset, truncated (never
/// rounded up into the next second).
pub fn event_time(t: DateTime<Utc>) -> String {
    let l = t.with_timezone(&Local);
    format!(
        "{}.{:02}{}",
        l.format("%Y-%m-%dT%H:%M:%S"),
        (l.nanosecond() / 10_000_000).min(99),
        l.format("%:z")
    )
}

/// One line of text for the file: control characters become spaces, each secret `***`,
/// cut to [`MAX_AUDIT_EVENT_TEXT`] bytes at a character boundary.
fn clean(text: &str, secrets: &[&str]) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for s in secrets {
        if s.len() >= 4 {
            out = out.replace(s, "***");
        }
    }
    if out.len() > MAX_AUDIT_EVENT_TEXT {
        let mut cut = MAX_AUDIT_EVENT_TEXT - '…'.len_utf8();
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// The server's login-name rule (`outpost_domain::names`; fresh review S6).
fn login_name_ok(user: &str) -> bool {
    outpost_domain::names::is_login_name(user)
}

#[cfg(unix)]
fn open_private(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut o = std::fs::OpenOptions::new();
    o.create(true).mode(0o600);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    let f = o.open(path)?;
    // An older file with wider permissions is narrowed.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

#[cfg(not(unix))]
fn open_private(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    o.open(path)
}

/// Writes `text` to `path` through a synced temp file and a rename.
fn replace_file(dir: &Path, path: &Path, text: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".audit-outbox.{}.tmp", Uuid::now_v7()));
    let r = (|| {
        let mut f = open_private(&tmp, false)?;
        f.write_all(text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

impl AuditOutbox {
    /// The outbox of `data_dir` (which must exist); counts what the file holds.
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> AuditOutbox {
        let outbox = AuditOutbox {
            dir: data_dir.to_path_buf(),
            max_events: MAX_OUTBOX_EVENTS,
            clock,
            counts: Mutex::new(Counts::default()),
            upload: Mutex::new(()),
            wake: Arc::new((Mutex::new(false), Condvar::new())),
        };
        let events = outbox.read();
        let bytes = std::fs::metadata(outbox.path()).map_or(0, |m| m.len());
        *lock(&outbox.counts) = Counts {
            events: events.len(),
            bytes,
        };
        outbox
    }

    /// The same outbox keeping at most `max_events` events (tests of the overflow).
    pub fn with_max_events(mut self, max_events: usize) -> AuditOutbox {
        self.max_events = max_events;
        self
    }

    /// The outbox file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(OUTBOX_FILE)
    }

    /// Records an event (appended and synced before returning). `user` is the login name it
    /// concerns (one that is not a valid login name is recorded as `"-"`, noted in the
    /// detail); every string in `secrets` (the password and code typed) is replaced by
    /// `***` in `target` and `detail`. Never fails: a file error is logged (the action it
    /// records goes on; an audit failure must not lock people out of a police console).
    pub fn record(
        &self,
        user: &str,
        action: &str,
        target: &str,
        outcome: Outcome,
        detail: &str,
        secrets: &[&str],
    ) {
        let user = user.trim();
        let (user, detail) = if login_name_ok(user) || user == "-" {
            (user.to_owned(), clean(detail, secrets))
        } else {
            (
                "-".to_owned(),
                clean(
                    &format!(
                        "the login name typed is not valid ({} characters); {detail}",
                        user.chars().count()
                    ),
                    secrets,
                ),
            )
        };
        let event = ConsoleAuditEvent {
            event_id: Uuid::now_v7(),
            at: event_time(self.clock.now()),
            user,
            action: action.to_owned(),
            target: clean(target, secrets),
            outcome: outcome.as_str().to_owned(),
            detail,
        };
        if let Err(e) = event.validate() {
            tracing::error!(error = %e, "audit event not recorded: invalid");
            return;
        }
        if let Err(e) = self.append(&event) {
            tracing::error!(file = %self.path().display(), error = %e, "audit event not recorded");
        }
        let (flag, cv) = &*self.wake;
        *lock(flag) = true;
        cv.notify_all();
    }

    fn append(&self, event: &ConsoleAuditEvent) -> std::io::Result<()> {
        let mut line = serde_json::to_string(event).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut counts = lock(&self.counts);
        if counts.events >= self.max_events || counts.bytes + line.len() as u64 > MAX_OUTBOX_BYTES {
            return self.count_lost(&event.at);
        }
        let mut f = open_private(&self.path(), true)?;
        f.write_all(line.as_bytes())?;
        f.sync_data()?;
        counts.events += 1;
        counts.bytes += line.len() as u64;
        Ok(())
    }

    fn count_lost(&self, at: &str) -> std::io::Result<()> {
        let mut lost = self.lost().unwrap_or(Lost {
            event_id: Uuid::now_v7(),
            since: at.to_owned(),
            count: 0,
        });
        lost.count += 1;
        tracing::error!(
            lost = lost.count,
            "the audit outbox is full: an event was not kept"
        );
        let text = serde_json::to_vec(&lost).map_err(std::io::Error::other)?;
        replace_file(&self.dir, &self.dir.join(LOST_FILE), &text)
    }

    fn lost(&self) -> Option<Lost> {
        let text = std::fs::read(self.dir.join(LOST_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Events the full outbox could not keep (not yet reported to the server).
    pub fn lost_count(&self) -> u64 {
        let _counts = lock(&self.counts);
        self.lost().map_or(0, |l| l.count)
    }

    fn read(&self) -> Vec<ConsoleAuditEvent> {
        let Ok(f) = std::fs::File::open(self.path()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<ConsoleAuditEvent>(&line) {
                Ok(e) => out.push(e),
                Err(e) => tracing::warn!(line = i + 1, error = %e, "audit outbox line skipped"),
            }
        }
        out
    }

    /// The events waiting for upload, oldest first.
    pub fn pending(&self) -> Vec<ConsoleAuditEvent> {
        let _counts = lock(&self.counts);
        self.read()
    }

    /// Removes the events with these ids (the server has them).
    fn remove(&self, ids: &HashSet<Uuid>) -> std::io::Result<()> {
        let mut counts = lock(&self.counts);
        let keep: Vec<ConsoleAuditEvent> = self
            .read()
            .into_iter()
            .filter(|e| !ids.contains(&e.event_id))
            .collect();
        let mut text = String::new();
        for e in &keep {
            text.push_str(&serde_json::to_string(e).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        replace_file(&self.dir, &self.path(), text.as_bytes())?;
        *counts = Counts {
            events: keep.len(),
            bytes: text.len() as u64,
        };
        Ok(())
    }

    fn forget_lost(&self, reported: &Lost) -> std::io::Result<()> {
        let _counts = lock(&self.counts);
        let path = self.dir.join(LOST_FILE);
        match self.lost() {
            Some(now) if now.event_id == reported.event_id && now.count > reported.count => {
                // More were lost while the report travelled: a new report for those.
                let rest = Lost {
                    event_id: Uuid::now_v7(),
                    since: now.since,
                    count: now.count - reported.count,
                };
                let text = serde_json::to_vec(&rest).map_err(std::io::Error::other)?;
                replace_file(&self.dir, &path, &text)
            }
            Some(_) => std::fs::remove_file(&path),
            None => Ok(()),
        }
    }

    /// Uploads everything waiting, in batches of at most [`UPLOAD_BATCH_EVENTS`] events and
    /// [`UPLOAD_BATCH_BYTES`] bytes, through `send`; removes a batch's events only after
    /// `send` succeeded. `uploader` (the session's user) is the user of an
    /// `outbox_overflow` report. Returns how many events the server now has from this call.
    ///
    /// # Errors
    /// The first [`ServerError`] of `send` (what was sent before stays removed; the rest
    /// waits), or [`ServerError::Unreachable`] when the file cannot be rewritten.
    pub fn upload(
        &self,
        uploader: &str,
        send: &dyn Fn(&AuditEventsRequest) -> Result<AuditEventsResponse, ServerError>,
    ) -> Result<usize, ServerError> {
        let _one = lock(&self.upload);
        let mut total = 0;
        let mut lost = self.lost();
        loop {
            let mut events = Vec::new();
            let mut reported: Option<Lost> = None;
            if let Some(l) = lost.take() {
                events.push(ConsoleAuditEvent {
                    event_id: l.event_id,
                    at: l.since.clone(),
                    user: if login_name_ok(uploader) {
                        uploader.to_owned()
                    } else {
                        "-".into()
                    },
                    action: "outbox_overflow".into(),
                    target: OUTBOX_FILE.into(),
                    outcome: Outcome::Failed.as_str().into(),
                    detail: format!(
                        "{} console audit events were not kept since this time: the outbox was \
                         full ({} events or {MAX_OUTBOX_BYTES} bytes)",
                        l.count, self.max_events
                    ),
                });
                reported = Some(l);
            }
            let mut bytes = 0usize;
            for e in self.pending() {
                if events.len() >= UPLOAD_BATCH_EVENTS {
                    break;
                }
                let n = serde_json::to_string(&e).map_or(0, |s| s.len()) + 1;
                if bytes + n > UPLOAD_BATCH_BYTES && !events.is_empty() {
                    break;
                }
                bytes += n;
                events.push(e);
            }
            if events.is_empty() {
                return Ok(total);
            }
            let req = AuditEventsRequest {
                protocol: PROTOCOL_VERSION,
                events,
            };
            send(&req)?;
            let ids: HashSet<Uuid> = req.events.iter().map(|e| e.event_id).collect();
            self.remove(&ids).map_err(|e| {
                ServerError::Unreachable(format!("the audit outbox cannot be rewritten: {e}"))
            })?;
            if let Some(l) = &reported {
                self.forget_lost(l).map_err(|e| {
                    ServerError::Unreachable(format!("the audit outbox cannot be rewritten: {e}"))
                })?;
            }
            total += req.events.len();
        }
    }

    /// Waits until an event is recorded or `timeout` passes (the uploader thread).
    pub(crate) fn wait(&self, timeout: std::time::Duration) {
        let (flag, cv) = &*self.wake;
        let guard = lock(flag);
        let (mut guard, _) = cv
            .wait_timeout_while(guard, timeout, |woken| !*woken)
            .unwrap_or_else(|e| e.into_inner());
        *guard = false;
    }

    /// Wakes a waiting uploader (to stop it).
    pub(crate) fn wake(&self) {
        let (flag, cv) = &*self.wake;
        *lock(flag) = true;
        cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use outpost_domain::clock::FixedClock;

    fn outbox(dir: &Path) -> AuditOutbox {
        let clock = Arc::new(FixedClock::new(
            DateTime::from_timestamp(1_800_000_000, 120_000_000).unwrap_or_default(),
        ));
        AuditOutbox::open(dir, clock)
    }

    fn ok_answer(req: &AuditEventsRequest) -> AuditEventsResponse {
        AuditEventsResponse {
            recorded: u32::try_from(req.events.len()).unwrap_or(0),
            ..AuditEventsResponse::default()
        }
    }

    /// Fresh review S6: every name the server's accounts accept keeps its name here
    /// (Hanzi, '@'); what the accounts refuse is still recorded as "-".
    #[test]
    fn login_names_follow_the_accounts_rule() {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = outbox(dir.path());
        for name in ["王伟", "ann@pd", "ann lee", "x\u{202E}y"] {
            o.record(name, "sign_in", "offline", Outcome::Ok, "", &[]);
        }
        let users: Vec<String> = o.pending().into_iter().map(|e| e.user).collect();
        assert_eq!(users, ["王伟", "ann@pd", "-", "-"]);
    }

    #[test]
    fn a_full_outbox_counts_what_it_lost_and_reports_it_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = outbox(dir.path()).with_max_events(3);
        for i in 0..5 {
            o.record("bob", "lock", &format!("t{i}"), Outcome::Ok, "", &[]);
        }
        assert_eq!(o.pending().len(), 3);
        assert_eq!(o.lost_count(), 2);
        // Reopened: the same counts.
        let o = outbox(dir.path()).with_max_events(3);
        assert_eq!(o.pending().len(), 3);
        o.record("bob", "lock", "t5", Outcome::Ok, "", &[]);
        assert_eq!(o.lost_count(), 3);

        // The answer is lost: everything stays, the report keeps its id.
        let sent = Mutex::new(Vec::new());
        let lose = |req: &AuditEventsRequest| {
            lock(&sent).push(req.clone());
            Err(ServerError::Unreachable("reset".into()))
        };
        assert!(o.upload("carol", &lose).is_err());
        assert_eq!((o.pending().len(), o.lost_count()), (3, 3));
        let keep = |req: &AuditEventsRequest| {
            lock(&sent).push(req.clone());
            Ok(ok_answer(req))
        };
        assert_eq!(o.upload("carol", &keep).expect("uploaded"), 4);
        let sent = lock(&sent).clone();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0], sent[1], "the same batch, the same ids");
        let report = &sent[1].events[0];
        assert_eq!(
            (
                report.action.as_str(),
                report.user.as_str(),
                report.outcome.as_str()
            ),
            ("outbox_overflow", "carol", "failed")
        );
        assert!(
            report
                .detail
                .starts_with("3 console audit events were not kept")
        );
        let t = DateTime::from_timestamp(1_800_000_000, 120_000_000).unwrap_or_default();
        assert_eq!(report.at, event_time(t), "the time of the first event lost");
        assert!(report.at.starts_with("2027-01-1"), "{}", report.at);
        assert_eq!((o.pending().len(), o.lost_count()), (0, 0));
        assert_eq!(o.upload("carol", &keep).expect("nothing"), 0);
    }

    #[test]
    fn batches_are_bounded_and_removed_only_after_the_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = outbox(dir.path());
        for _ in 0..(UPLOAD_BATCH_EVENTS + 20) {
            o.record("bob", "export", "/x.gpx", Outcome::Ok, "GPX", &[]);
        }
        let sizes = Mutex::new(Vec::new());
        let fail_second = |req: &AuditEventsRequest| {
            let mut s = lock(&sizes);
            s.push(req.events.len());
            if s.len() == 2 {
                return Err(ServerError::Unreachable("down".into()));
            }
            Ok(ok_answer(req))
        };
        assert!(o.upload("bob", &fail_second).is_err());
        assert_eq!(*lock(&sizes), vec![UPLOAD_BATCH_EVENTS, 20]);
        assert_eq!(
            o.pending().len(),
            20,
            "the first batch is gone, the second waits"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(o.path())
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn times_have_hundredths_and_an_offset_truncated() {
        let t = DateTime::from_timestamp(1_800_000_000, 999_000_000).unwrap_or_default();
        let s = event_time(t);
        assert!(DateTime::parse_from_rfc3339(&s).is_ok(), "{s}");
        // 2 fractional digits, truncated (…:00.99, never the next second).
        let frac = &s[19..22];
        assert_eq!(frac, ".99", "{s}");
    }

    #[test]
    fn secrets_and_control_characters_never_reach_a_line() {
        assert_eq!(
            clean(
                "wrong code 123456 for\nbob pw hunter2hunter2",
                &["hunter2hunter2", "123456"]
            ),
            "wrong code *** for bob pw ***"
        );
        let long = "é".repeat(2000);
        let c = clean(&long, &[]);
        assert!(c.len() <= MAX_AUDIT_EVENT_TEXT && c.ends_with('…'));
    }
}
