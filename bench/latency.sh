#!/usr/bin/env bash
# Live latency (issue 7, part 3): UNITS units each reporting once a second over OsmAnd for
# SECONDS_ seconds to a fresh `outpost-server serve`, while CONSOLES headless consoles (the
# real sync engine, app defaults: HTTPS with the agency CA pinned, device certificate +
# session, the poke WebSocket with the live feed) are connected; the delay from a report
# leaving its device to each console's database showing that fix, for every console and
# every fix: p50/p95/p99/max over all of them. Target: p99 under 100 ms. Then the same with
# FIT_CONSOLES consoles (the number this machine's cores can carry next to the server).
#
#   bench/latency.sh            # 2,000 units x 50 consoles x 20 s, then x 5 consoles; release
#                               # build (FIT_CONSOLES=0 skips the second run)
#   bench/latency.sh --smoke    # tiny counts, debug build (the test suite runs this)
#   UNITS=500 CONSOLES=10 SECONDS_=20 bench/latency.sh
#
# The consoles and the load generator are `latency_bench run`
# (crates/outpost-server/examples/latency_bench.rs), all consoles in one process, each with
# its own console database, enrolled device and commander session (written straight into
# the server's security database: set-up, not timed). A sample is taken when the console's
# transaction that applies the fix commits (a hook on the store, no polling), as now minus
# the fix time (= the send time). The first 2 s are warm-up. Everything on 127.0.0.1;
# writes only to a temp directory. Exits non-zero when a report was refused or failed, or
# when some console did not apply every position the gateway wrote.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init latency "$@"

if [ "$SMOKE" = 1 ]; then
  UNITS="${UNITS:-200}" CONSOLES="${CONSOLES:-5}" FIT_CONSOLES="${FIT_CONSOLES:-2}" SECONDS_="${SECONDS_:-4}"
else
  UNITS="${UNITS:-2000}" CONSOLES="${CONSOLES:-50}" FIT_CONSOLES="${FIT_CONSOLES:-5}" SECONDS_="${SECONDS_:-20}"
fi
CONNS="${CONNS:-20}"

bench_build -p outpost-server --bin outpost-server --example latency_bench
if declare -F bench_built >/dev/null; then bench_built; fi
SERVER="$TARGET/$PROFILE/outpost-server"
BENCH="$TARGET/$PROFILE/examples/latency_bench"

DATA="$TMP/server"
"$SERVER" cert init --data "$DATA" --name 127.0.0.1 >/dev/null
"$BENCH" provision --server-data "$DATA" --out "$TMP/auth" >/dev/null

# Each console holds a poke socket and HTTP connections from 127.0.0.1.
CAP=$((CONSOLES * 4 + 64))
RUST_LOG=warn setsid "$SERVER" serve --data "$DATA" --listen 127.0.0.1:0 \
  --osmand-listen 127.0.0.1:0 \
  --max-sync-connections "$CAP" --max-sync-connections-per-address "$CAP" \
  >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
bench_track_pid "$SERVER_PID"
URL="" OSMAND=""
for _ in $(seq 1 1000); do
  if grep -q '^listening on' "$TMP/server.out" 2>/dev/null && grep -q '^osmand listening on' "$TMP/server.out"; then
    URL="https://$(awk '/^listening on/ {print $3}' "$TMP/server.out")"
    OSMAND="$(awk '/^osmand listening on/ {print $4}' "$TMP/server.out")"
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.err" >&2; exit 1; }
  sleep 0.01
done
[ -n "$URL" ] || { echo "the server did not start" >&2; exit 1; }

echo "== set-up: $UNITS units and their devices" >&2
"$BENCH" setup --server "$URL" --units "$UNITS" --auth "$TMP/auth" >/dev/null
FAIL=0
CMD="bench/latency.sh"
[ "$SMOKE" = 1 ] && CMD="bench/latency.sh --smoke"

# phase N_CONSOLES: one measured run on the same server; sets r.
phase() {
  local n="$1"
  echo "== live latency: $UNITS units x 1 Hz x $SECONDS_ s, $n consoles" >&2
  r="$("$BENCH" run --server "$URL" --server-data "$DATA" --osmand "$OSMAND" --units "$UNITS" \
    --consoles "$n" --seconds "$SECONDS_" --conns "$CONNS" --dir "$TMP/consoles-$n" \
    --auth "$TMP/auth" --server-pid "$SERVER_PID")"
  echo "   $r" >&2
  rm -rf "$TMP/consoles-$n"
  [ "$(jq .complete <<<"$r")" = true ] || { echo "some console did not apply every position" >&2; FAIL=1; }
  [ "$(jq .refused <<<"$r")" = 0 ] && [ "$(jq .failed <<<"$r")" = 0 ] || { echo "reports refused or failed" >&2; FAIL=1; }
  [ "$(jq .samples <<<"$r")" -gt 0 ] || { echo "no sample" >&2; FAIL=1; }
  local p50 p95 p99 max scpu spct bcpu span
  p50="$(jq .p50_ms <<<"$r")" p95="$(jq .p95_ms <<<"$r")" p99="$(jq .p99_ms <<<"$r")" max="$(jq .max_ms <<<"$r")"
  span="$(jq .all_applied_s <<<"$r")"
  scpu="$(jq .server_cpu_s <<<"$r")" bcpu="$(jq .bench_cpu_s <<<"$r")"
  spct="$(awk -v c="$scpu" -v t="$span" 'BEGIN { printf "%.0f", 100 * c / t }')"
  bench_row "Report → every console's state: $(grouped "$UNITS") units each reporting once a second (OsmAnd, $CONNS keep-alive connections) for $SECONDS_ s, **$n consoles** connected (real sync engines, HTTPS + live feed, in one process); from the report's send time to the commit showing the fix in each console's database, over all consoles and fixes ($(grouped "$(jq .samples <<<"$r")") samples after 2 s warm-up)" \
    "**p50 $p50 ms, p95 $p95 ms, p99 $p99 ms**, max $max ms; every console had every fix $span s after the load started; $(jq .feed_frames_applied <<<"$r") feed frames applied, $(jq .feed_fallbacks <<<"$r") fallbacks to a pull" \
    "p99 < 100 ms" "$CMD (UNITS=$UNITS CONSOLES=$CONSOLES FIT_CONSOLES=$FIT_CONSOLES SECONDS_=$SECONDS_)"
  bench_row "Cost of that run ($(grouped "$(jq .sent <<<"$r")") reports, $(grouped "$(jq .written <<<"$r")") positions written in $(grouped "$(jq .batches <<<"$r")") gateway pushes, applied by every console: $(jq .complete <<<"$r"))" \
    "server CPU **$scpu s** in $span s (≈ $spct % of one core); consoles + load generator CPU $bcpu s (≈ $(awk -v c="$bcpu" -v k="$(jq .written <<<"$r")" -v n="$n" 'BEGIN { printf "%.0f", 1e6 * c / (k * n) }') µs per op and console, load generator included)" \
    "—" "$CMD"
  P99="$p99"
}

phase "$CONSOLES"
hwm="$(hwm_mib "$SERVER_PID")"
if [ "$(awk -v p="$P99" 'BEGIN { print (p >= 0 && p < 100) }')" = 1 ]; then
  bench_target "Live latency p99, $UNITS units x $CONSOLES consoles" "p99 < 100 ms" "$P99 ms" met
else
  bench_target "Live latency p99, $UNITS units x $CONSOLES consoles" "p99 < 100 ms" "$P99 ms" gap \
    "CPU: $CONSOLES consoles each applying $UNITS ops/s, the server and the load generator share $(nproc) cores (see the µs per op row); with $FIT_CONSOLES consoles see the next row"
fi
if [ "$FIT_CONSOLES" -gt 0 ] && [ "$FIT_CONSOLES" != "$CONSOLES" ]; then
  phase "$FIT_CONSOLES"
  if [ "$(awk -v p="$P99" 'BEGIN { print (p >= 0 && p < 100) }')" = 1 ]; then
    bench_target "Live latency p99, $UNITS units x $FIT_CONSOLES consoles" "p99 < 100 ms" "$P99 ms" met
  else
    bench_target "Live latency p99, $UNITS units x $FIT_CONSOLES consoles" "p99 < 100 ms" "$P99 ms" gap "see bench/notes/latency.md"
  fi
fi
bench_row "Server peak RSS (VmHWM), whole run" "**$hwm MiB** (CPU $(cpu_s "$SERVER_PID") s, set-up included)" "—" "$CMD"
bench_section "Live latency (issue 7)" "The consoles run in one process next to the server and the load generator on this machine ($(nproc) cores); in the field each console has its own machine. Every console applies every unit's every fix ($UNITS ops/s each), so their work here grows with their number: the run is repeated with $FIT_CONSOLES consoles to show the path's latency when the consoles are not short of CPU. Method: bench/notes/latency.md."
exit "$FAIL"
