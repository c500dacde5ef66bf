#!/usr/bin/env bash
# Device ingest benchmarks of issue 4, release build, everything on 127.0.0.1:
#
#   1. OsmAnd ingest: REPORTS position reports of DEVICES bound devices sent over OSMAND_CONNS
#      keep-alive HTTP connections (one request at a time each, as phones do) to a fresh
#      `outpost-server serve --osmand-listen`; positions/s from the first request until the
#      server's GET /v1/ingest/stats shows every one written to the op log (position.report
#      ops of the bound units, pushed by the gateway in batches);
#   2. CoT ingest: the same over COT_CONNS TCP streams of back-to-back events
#      (`--cot-listen`);
#   3. report -> console delay: UNITS units each reporting once a second for DELAY_S seconds
#      (OsmAnd, then CoT), while a headless console (the real sync engine with its poke socket)
#      syncs; the delay from a report leaving the device to the console's database showing
#      that fix as the unit's latest position (p50/p95/p99/max; the first 2 s left out).
#
#   bench/ingest.sh            # full counts (100k reports; 2,000 units x 30 s)
#   bench/ingest.sh --smoke    # tiny counts, debug build, seconds (the test suite runs this)
#   REPORTS=200000 UNITS=5000 bench/ingest.sh
#
# The load generator and the console are `ingest_bench`
# (crates/outpost-server/examples/ingest_bench.rs). Writes only to a temp directory. Prints
# progress to stderr and a markdown table to stdout; exits non-zero when a report was
# refused or lost, or when the console saw no fix.
#
# Since issue 6 `serve` serves sync over TLS only and every request needs a device
# certificate and a person's session: each server's data directory gets `outpost-server cert
# init` (127.0.0.1) and `ingest_bench provision` writes an enrolled device + signed-in
# commander straight into its security database (set-up, not timed): one for the set-up
# pushes and the `GET /v1/ingest/stats` reads, one for the headless console; both talk
# https:// with the agency CA pinned. The device listeners (OsmAnd, CoT) stay PLAIN here (no
# --osmand-tls/--cot-tls, no device tokens), as in issue 4's figures. A last check starts a
# server with --osmand-require-token and fails unless a report without token is refused.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
if [ "$SMOKE" = 1 ]; then
  REPORTS="${REPORTS:-2000}" DEVICES="${DEVICES:-200}" UNITS="${UNITS:-200}" DELAY_S="${DELAY_S:-4}"
else
  REPORTS="${REPORTS:-100000}" DEVICES="${DEVICES:-2000}" UNITS="${UNITS:-2000}" DELAY_S="${DELAY_S:-30}"
fi
OSMAND_CONNS="${OSMAND_CONNS:-32}"
COT_CONNS="${COT_CONNS:-8}"
# Connections carrying the delay phase's reports (each CoT connection is also a TAK client
# that receives the whole feed: every unit's every move).
DELAY_CONNS_OSMAND="${DELAY_CONNS_OSMAND:-20}" DELAY_CONNS_COT="${DELAY_CONNS_COT:-4}"

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
TMP="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

PROFILE="${BENCH_PROFILE:-$([ "$SMOKE" = 1 ] && echo debug || echo release)}"
PFLAG=()
[ "$PROFILE" = release ] && PFLAG=(--release)
echo "building $PROFILE binaries..." >&2
(cd "$ROOT" && cargo build "${PFLAG[@]}" -q -p outpost-server --bin outpost-server --example ingest_bench)
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
SERVER="$TARGET/$PROFILE/outpost-server"
BENCH="$TARGET/$PROFILE/examples/ingest_bench"

# provision DATA: `cert init` for 127.0.0.1 in DATA and a device + commander session for the
# tools in DATA.auth (before the server starts).
provision() {
  "$SERVER" cert init --data "$1" --name 127.0.0.1 >/dev/null
  "$BENCH" provision --server-data "$1" --out "$1.auth" >/dev/null
}

# start_server DATA: starts `outpost-server serve` with both device listeners on free ports;
# sets SERVER_PID, URL, OSMAND, COT.
start_server() {
  local data="$1"; shift
  provision "$data"
  RUST_LOG=warn "$SERVER" serve --data "$data" --listen 127.0.0.1:0 \
    --osmand-listen 127.0.0.1:0 --cot-listen 127.0.0.1:0 "$@" >"$TMP/server.out" 2>"$TMP/server.err" &
  SERVER_PID=$!
  for _ in $(seq 1 1000); do
    if grep -q '^listening on' "$TMP/server.out" 2>/dev/null; then
      URL="https://$(awk '/^listening on/ {print $3}' "$TMP/server.out")"
      OSMAND="$(awk '/^osmand listening on/ {print $4}' "$TMP/server.out")"
      COT="$(awk '/^cot listening on/ {print $4}' "$TMP/server.out")"
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.err" >&2; return 1; }
    sleep 0.01
  done
  echo "the server did not start" >&2
  return 1
}
stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
}
hwm_mib() { awk '/^VmHWM:/ {printf "%d", ($2 + 512) / 1024}' "/proc/$1/status"; }
cpu_s() {
  sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($12 + $13) / hz}'
}
grouped() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }

ROWS=()
FAIL=0

# ---- 1, 2. ingest rate ---------------------------------------------------------------------
for proto in osmand cot; do
  if [ "$proto" = osmand ]; then conns="$OSMAND_CONNS"; else conns="$COT_CONNS"; fi
  echo "== ingest rate, $proto: $REPORTS reports of $DEVICES bound devices over $conns connections" >&2
  start_server "$TMP/$proto-rate" --max-device-rate 1000000
  "$BENCH" setup --server "$URL" --units "$DEVICES" --auth "$TMP/$proto-rate.auth" >/dev/null
  addr="$OSMAND"; [ "$proto" = cot ] && addr="$COT"
  r="$("$BENCH" blast --proto "$proto" --addr "$addr" --server "$URL" --devices "$DEVICES" \
    --reports "$REPORTS" --conns "$conns" --auth "$TMP/$proto-rate.auth")"
  hwm="$(hwm_mib "$SERVER_PID")"; cpu="$(cpu_s "$SERVER_PID")"
  stop_server
  echo "   $r" >&2
  written="$(jq .written <<<"$r")"
  [ "$written" = "$REPORTS" ] && [ "$(jq .refused <<<"$r")" = 0 ] || FAIL=1
  rate="$(jq '.written_per_s | floor' <<<"$r")"
  label="OsmAnd (HTTP GET, keep-alive, one request at a time per connection)"
  [ "$proto" = cot ] && label="CoT (TCP streams of back-to-back events)"
  ROWS+=("| $label ingest: $(grouped "$REPORTS") reports of $(grouped "$DEVICES") bound devices over $conns connections, until all are position.report ops in the log | **$(grouped "$rate") positions/s** ($(jq -r '.t_written_s * 100 | floor / 100' <<<"$r") s; sent in $(jq -r '.t_sent_s * 100 | floor / 100' <<<"$r") s; $(jq .batches <<<"$r") gateway pushes; refused $(jq .refused <<<"$r"); server peak RSS $hwm MiB, CPU $cpu s) | \`bench/ingest.sh\` (\`REPORTS=$REPORTS\`) |")
done

# ---- 3. report -> console delay ------------------------------------------------------------
for proto in osmand cot; do
  echo "== delay, $proto: $UNITS units reporting once a second for $DELAY_S s, a headless console syncing" >&2
  start_server "$TMP/$proto-delay"
  "$BENCH" setup --server "$URL" --units "$UNITS" --auth "$TMP/$proto-delay.auth" >/dev/null
  "$BENCH" provision --server-data "$TMP/$proto-delay" --console "$TMP/$proto-console" \
    --out "$TMP/$proto-console.auth" >/dev/null
  addr="$OSMAND" conns="$DELAY_CONNS_OSMAND"
  [ "$proto" = cot ] && addr="$COT" conns="$DELAY_CONNS_COT"
  r="$("$BENCH" delay --proto "$proto" --addr "$addr" --server "$URL" --units "$UNITS" \
    --seconds "$DELAY_S" --console "$TMP/$proto-console" --conns "$conns" \
    --console-auth "$TMP/$proto-console.auth" --auth "$TMP/$proto-delay.auth")"
  hwm="$(hwm_mib "$SERVER_PID")"; cpu="$(cpu_s "$SERVER_PID")"
  stop_server
  echo "   $r" >&2
  [ "$(jq .samples <<<"$r")" -gt 0 ] && [ "$(jq .refused <<<"$r")" = 0 ] || FAIL=1
  ROWS+=("| Report → console state delay, $proto: $(grouped "$UNITS") units each reporting once a second for $DELAY_S s (sent $(grouped "$(jq .sent <<<"$r")")), $conns connections, a headless console (real sync engine + poke) syncing | **p50 $(jq .p50_ms <<<"$r") ms, p95 $(jq .p95_ms <<<"$r") ms**, p99 $(jq .p99_ms <<<"$r") ms, max $(jq .max_ms <<<"$r") ms over $(grouped "$(jq .samples <<<"$r")") fixes (server peak RSS $hwm MiB, CPU $cpu s in $DELAY_S s) | \`bench/ingest.sh\` (\`UNITS=$UNITS DELAY_S=$DELAY_S\`) |")
done

# ---- 4. device token required ---------------------------------------------------------------
echo "== check: with --osmand-require-token a report without token is refused" >&2
start_server "$TMP/token" --osmand-require-token
r="$("$BENCH" untokened --addr "$OSMAND")"
stop_server
echo "   $r" >&2
if [ "$(jq .status <<<"$r")" = 401 ]; then
  TOKEN_CHECK="refused (HTTP 401), as it must be"
else
  TOKEN_CHECK="NOT refused: $r"
  FAIL=1
fi

echo
echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC'), $PROFILE build; $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM; load average at start: $LOAD_BEFORE, at end: $(cut -d' ' -f1-3 /proc/loadavg)$([ "$SMOKE" = 1 ] && echo '; SMOKE counts')"
echo
echo "| what | figure | command |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "The sync port is HTTPS (agency CA pinned, device certificate + session token); the OsmAnd and CoT listeners are plain HTTP/TCP in this benchmark (no --osmand-tls, --cot-tls or device tokens). With --osmand-require-token a report without token: $TOKEN_CHECK."
[ "$FAIL" = 0 ] || { echo "a report was refused or lost, or the console saw no fix" >&2; exit 1; }
