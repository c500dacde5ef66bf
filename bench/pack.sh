#!/usr/bin/env bash
# Area pack build time and size for Andorra (data/osm/andorra.osm.pbf).
#
#   bench/pack.sh            # 3 timed runs (hyperfine when installed), release build
#   RUNS=5 bench/pack.sh
#
# Builds `outpost-server` in release mode first. Writes only to a temp directory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
RUNS="${RUNS:-3}"
OSM="$ROOT/data/osm/andorra.osm.pbf"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

(cd "$ROOT" && cargo build --release -q -p outpost-server)
BIN="$ROOT/target/release/outpost-server"
OUT="$TMP/andorra.outpost"
echo "input: ${OSM#"$ROOT"/} ($(du -h "$OSM" | cut -f1)), $(tilemaker --help 2>&1 | head -1), $(nproc) cores"

if command -v hyperfine >/dev/null; then
  hyperfine --runs "$RUNS" --warmup 0 --prepare "rm -f '$OUT'" \
    --export-json "$TMP/hyperfine.json" \
    "'$BIN' pack build --osm '$OSM' --out '$OUT' --name Andorra"
else
  for i in $(seq "$RUNS"); do
    rm -f "$OUT"
    start=$(date +%s.%N)
    "$BIN" pack build --osm "$OSM" --out "$OUT" --name Andorra >/dev/null 2>&1
    echo "run $i: $(echo "$(date +%s.%N) - $start" | bc) s"
  done
fi
# One more build with the report (stage times, tiles per zoom) for the record.
rm -f "$OUT"
"$BIN" pack build --osm "$OSM" --out "$OUT" --name Andorra 2>/dev/null | tail -n 20 || true
echo "pack size: $(stat -c %s "$OUT") bytes ($(du -h "$OUT" | cut -f1))"
