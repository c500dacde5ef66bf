//! Crash points for the S4 tests (SYNC.md): `OUTPOST_FAILPOINT=after_ack_before_commit`
//! aborts the process after the server answered a push and before the answer is stored;
//! `OUTPOST_FAILPOINT=mid_page` aborts while a pulled page is being applied (inside its
//! transaction, before the commit). An abort, not an exit: no destructor, no flush, like a
//! power cut.

/// Environment variable naming the failpoint to arm.
pub const FAILPOINT_ENV: &str = "OUTPOST_FAILPOINT";

/// A place where the engine can be made to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// After the push answer arrived, before `record_push` commits.
    AfterAckBeforeCommit,
    /// While a pulled page is applied, before its transaction commits.
    MidPage,
}

impl Failpoint {
    /// Parses the wire name (`after_ack_before_commit`, `mid_page`).
    pub fn parse(name: &str) -> Option<Failpoint> {
        match name.trim() {
            "after_ack_before_commit" => Some(Failpoint::AfterAckBeforeCommit),
            "mid_page" => Some(Failpoint::MidPage),
            _ => None,
        }
    }

    /// The failpoint armed by [`FAILPOINT_ENV`], if any.
    pub fn from_env() -> Option<Failpoint> {
        std::env::var(FAILPOINT_ENV)
            .ok()
            .and_then(|v| Failpoint::parse(&v))
    }

    /// Aborts the process when `armed` is this failpoint.
    pub fn hit(self, armed: Option<Failpoint>) {
        if armed == Some(self) {
            eprintln!("outpost-sync: failpoint {self:?} reached; aborting the process");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(
            Failpoint::parse("after_ack_before_commit"),
            Some(Failpoint::AfterAckBeforeCommit)
        );
        assert_eq!(Failpoint::parse(" mid_page\n"), Some(Failpoint::MidPage));
        assert_eq!(Failpoint::parse("other"), None);
        // Not armed, or another one armed: nothing happens.
        Failpoint::MidPage.hit(None);
        Failpoint::MidPage.hit(Some(Failpoint::AfterAckBeforeCommit));
    }
}
