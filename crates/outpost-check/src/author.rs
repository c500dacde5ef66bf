//! [`Author`]: writes well-formed op envelopes by hand for tests of the merge rules — one
//! origin with its gap-free `seq`, per-lane `lane_seq`, HLC and `base_version`, the way a
//! console stamps them.

use std::collections::BTreeMap;

use uuid::Uuid;

use outpost_domain::op::{Hlc, Lane, OpBody, OpEnvelope, SCHEMA_VERSION};

/// One origin writing ops.
#[derive(Debug, Clone)]
pub struct Author {
    /// Its origin id.
    pub origin: Uuid,
    /// The user written into its ops.
    pub user: String,
    /// The last `seq` used.
    pub seq: u64,
    /// The last `lane_seq` used per lane.
    pub lane_seq: BTreeMap<Lane, u64>,
    /// The last HLC stamp issued.
    pub hlc: Hlc,
    /// The `base_version` of the next op (the author's pull cursor; never lowered).
    pub base: u64,
    /// The author's wall clock, ms since the Unix epoch (UTC).
    pub now_ms: i64,
}

impl Author {
    /// An author with origin `Uuid::from_u128(n)`, user `user`, wall clock at `now_ms`.
    pub fn new(n: u128, user: &str, now_ms: i64) -> Author {
        Author {
            origin: Uuid::from_u128(n),
            user: user.to_string(),
            seq: 0,
            lane_seq: BTreeMap::new(),
            hlc: Hlc {
                wall_ms: 0,
                logical: 0,
            },
            base: 0,
            now_ms,
        }
    }

    /// The author has pulled up to `gseq` (its base never goes down).
    pub fn saw(&mut self, gseq: u64) -> &mut Author {
        self.base = self.base.max(gseq);
        self
    }

    /// Moves the author's wall clock by `ms`.
    pub fn tick(&mut self, ms: i64) -> &mut Author {
        self.now_ms += ms;
        self
    }

    /// The next op with this body. Op ids are derived from origin and seq, so tests are
    /// reproducible.
    pub fn op(&mut self, body: OpBody) -> OpEnvelope {
        self.seq += 1;
        let lane = body.lane();
        let ls = self.lane_seq.entry(lane).or_insert(0);
        *ls += 1;
        self.hlc = Hlc::tick(self.hlc, self.now_ms);
        OpEnvelope {
            op_id: Uuid::from_u128((self.origin.as_u128() << 32) | u128::from(self.seq)),
            origin: self.origin,
            seq: self.seq,
            hlc: self.hlc,
            base_version: (self.base > 0).then_some(self.base),
            user: self.user.clone(),
            schema: SCHEMA_VERSION,
            lane,
            lane_seq: *ls,
            body,
            auth: None,
        }
    }
}
