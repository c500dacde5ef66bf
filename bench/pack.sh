#!/usr/bin/env bash
# Area pack build time and size for Andorra (data/osm/andorra.osm.pbf), issue 2:
#
#   1. build time: RUNS timed builds of `outpost-server pack build` from a fresh output each
#      (hyperfine when installed: mean ± standard deviation, min, max; else a timed loop);
#   2. one more build with its report: pack size, tiles per zoom, search entries, road graph,
#      stage times, and the peak resident memory of the build's largest process (GNU time).
#
#   bench/pack.sh            # RUNS=3 timed builds, release build
#   bench/pack.sh --smoke    # one timed build, debug build of outpost-server
#   RUNS=5 bench/pack.sh
#
# Writes only to a temp directory. Progress on stderr, the section on stdout (and in
# BENCH_OUT, see bench/lib.sh); exits non-zero when a build fails or writes an empty pack.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init pack "$@"
RUNS="${RUNS:-$([ "$SMOKE" = 1 ] && echo 1 || echo 3)}"
OSM="$ROOT/data/osm/andorra.osm.pbf"

bench_build -p outpost-server --bin outpost-server
bench_built
BIN="$TARGET/$PROFILE/outpost-server"
OUT="$TMP/andorra.outpost"
TILEMAKER="$(tilemaker --help 2>&1 | head -1)"
echo "input: ${OSM#"$ROOT"/} ($(du -h "$OSM" | cut -f1)), $TILEMAKER, $(nproc) cores" >&2

# ---- 1. build time -------------------------------------------------------------------------
if command -v hyperfine >/dev/null; then
  hyperfine --runs "$RUNS" --warmup 0 --prepare "rm -f '$OUT'" \
    --export-json "$TMP/hyperfine.json" \
    "'$BIN' pack build --osm '$OSM' --out '$OUT' --name Andorra" >&2
  jq -r '.results[0].times[]' "$TMP/hyperfine.json" >"$TMP/times"
  TOOL="hyperfine, $RUNS run$([ "$RUNS" = 1 ] || echo s)"
else
  for i in $(seq "$RUNS"); do
    rm -f "$OUT"
    t0="$(now_ms)"
    "$BIN" pack build --osm "$OSM" --out "$OUT" --name Andorra >/dev/null 2>&1
    t1="$(now_ms)"
    echo "run $i: $(secs "$t0" "$t1") s" >&2
    secs "$t0" "$t1" >>"$TMP/times"
    echo >>"$TMP/times"
  done
  TOOL="$RUNS timed runs"
fi
# mean ± sample standard deviation, min, max of the run times (seconds)
STATS="$(awk 'NF { n++; s += $1; q += $1 * $1; if (n == 1 || $1 < lo) lo = $1; if ($1 > hi) hi = $1 }
  END { sd = n > 1 ? sqrt((q - s * s / n) / (n - 1)) : 0;
        printf "%.2f s ± %.2f (min %.2f, max %.2f)", s / n, sd, lo, hi }' "$TMP/times")"

# ---- 2. one more build with the report -----------------------------------------------------
rm -f "$OUT"
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f '%M' -o "$TMP/maxrss" \
    "$BIN" pack build --osm "$OSM" --out "$OUT" --name Andorra >"$TMP/report" 2>"$TMP/report.err"
  PEAK="$(awk '{printf "%d MiB", ($1 + 512) / 1024}' "$TMP/maxrss")"
else
  "$BIN" pack build --osm "$OSM" --out "$OUT" --name Andorra >"$TMP/report" 2>"$TMP/report.err"
  PEAK="not measured (no GNU time)"
fi
cat "$TMP/report" >&2
SIZE="$(stat -c %s "$OUT" 2>/dev/null || echo 0)"
[ "$SIZE" -gt 0 ] || { echo "the pack build wrote no pack" >&2; exit 1; }
line() { sed -n "s/^$1: //p" "$TMP/report"; }
TILES="$(line tiles)"
[ -n "$TILES" ] && [ "${TILES%% *}" -gt 0 ] || { echo "the pack has no tiles" >&2; exit 1; }

CMD="bench/pack.sh"
[ "$SMOKE" = 1 ] && CMD="bench/pack.sh --smoke"
[ "$SMOKE" = 0 ] && [ "$RUNS" != 3 ] && CMD="RUNS=$RUNS bench/pack.sh"
IN="\`data/osm/andorra.osm.pbf\`, $(du -h "$OSM" | cut -f1)"
bench_row "Area pack build, Andorra ($IN), \`outpost-server pack build\` from scratch" \
  "**$STATS**; stages of the report build: $(line stages); peak memory of its largest process $PEAK" "" "$CMD"
bench_row "Area pack size, Andorra" \
  "**$(awk -v b="$SIZE" 'BEGIN {printf "%.1f MB", b / 1e6}')** ($(grouped "$SIZE") bytes): tiles $TILES; search: $(line search); roads: $(line roads)" "" "$CMD"

bench_section "Area pack (issue 2)" \
  "Times by $TOOL; $TILEMAKER; input \`data/osm/andorra.osm.pbf\`."
