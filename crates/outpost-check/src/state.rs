//! The canonical form of a replica's replicated state: per table, rows keyed by their
//! primary key, each row a JSON object. Two replicas converged (I3) when their [`State`]s are
//! equal; [`State::digest`] hashes each table (SHA-256, hex) of the canonical rendering.
//!
//! Canonical rendering: one line per row, `key TAB json`, rows in key order, object keys in
//! sorted order, numbers as serde_json prints them (shortest round-trip form for `f64`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

pub use outpost_domain::canonical::canonical_json;
use sha2::{Digest, Sha256};

/// The tables of the replicated state, in the order they are reported.
pub const TABLES: [&str; 11] = [
    "incidents",
    "units",
    "facilities",
    "assignments",
    "timeline",
    "positions",
    "unit_positions",
    "device_bindings",
    "devices",
    "device_fixes",
    "road_closures",
];

/// A replica's replicated state: table name → primary key text → row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// The tables; every name of [`TABLES`] is present (possibly empty).
    pub tables: BTreeMap<String, BTreeMap<String, Value>>,
}

impl State {
    /// An empty state with every table of [`TABLES`].
    pub fn empty() -> State {
        State {
            tables: TABLES
                .iter()
                .map(|t| ((*t).to_string(), BTreeMap::new()))
                .collect(),
        }
    }

    /// Inserts (or replaces) a row. Returns false when the key was already present (the
    /// caller's duplicate — I2 — check).
    pub fn put(&mut self, table: &str, key: impl Into<String>, row: Value) -> bool {
        self.tables
            .entry(table.to_string())
            .or_default()
            .insert(key.into(), row)
            .is_none()
    }

    /// The rows of a table (empty when absent).
    pub fn table(&self, name: &str) -> impl Iterator<Item = (&String, &Value)> {
        self.tables.get(name).into_iter().flat_map(|t| t.iter())
    }

    /// One row, if present.
    pub fn row(&self, table: &str, key: &str) -> Option<&Value> {
        self.tables.get(table).and_then(|t| t.get(key))
    }

    /// The canonical text of one table (see the module doc).
    pub fn render(&self, table: &str) -> String {
        let mut out = String::new();
        for (k, v) in self.table(table) {
            let _ = writeln!(out, "{k}\t{}", canonical_json(v));
        }
        out
    }

    /// SHA-256 (lower-case hex) of each table's canonical text.
    pub fn digest(&self) -> BTreeMap<String, String> {
        self.tables
            .keys()
            .map(|t| {
                let mut h = Sha256::new();
                h.update(self.render(t).as_bytes());
                (t.clone(), hex(&h.finalize()))
            })
            .collect()
    }

    /// A readable list of differences (at most `limit` lines): rows missing on one side or
    /// different, `table key: left ≠ right`. Empty when equal.
    pub fn diff(&self, other: &State, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        let names: std::collections::BTreeSet<&String> =
            self.tables.keys().chain(other.tables.keys()).collect();
        let empty = BTreeMap::new();
        for name in names {
            let a = self.tables.get(name).unwrap_or(&empty);
            let b = other.tables.get(name).unwrap_or(&empty);
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let (x, y) = (a.get(k), b.get(k));
                if x != y {
                    out.push(format!(
                        "{name} {k}: {} ≠ {}",
                        x.map_or("(absent)".into(), canonical_json),
                        y.map_or("(absent)".into(), canonical_json)
                    ));
                    if out.len() >= limit {
                        return out;
                    }
                }
            }
        }
        out
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 2.5}], "c": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"d":[1,{"y":2.5,"z":0}]},"b":1}"#
        );
    }

    #[test]
    fn digest_and_diff_see_one_changed_row() {
        let mut a = State::empty();
        a.put("units", "u-01", json!({"status": "available"}));
        let mut b = a.clone();
        assert_eq!(a.digest(), b.digest());
        assert!(a.diff(&b, 10).is_empty());
        b.put("units", "u-01", json!({"status": "busy"}));
        assert_ne!(a.digest()["units"], b.digest()["units"]);
        assert_eq!(a.digest()["incidents"], b.digest()["incidents"]);
        assert_eq!(
            a.diff(&b, 10),
            vec![r#"units u-01: {"status":"available"} ≠ {"status":"busy"}"#.to_string()]
        );
        assert_eq!(a.digest()["units"].len(), 64);
    }
}
