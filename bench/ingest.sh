#!/usr/bin/env bash
# Device ingest benchmarks (issues 4 and 7), everything on 127.0.0.1:
#
#   1. OsmAnd ingest: REPORTS position reports of DEVICES bound devices sent over OSMAND_CONNS
#      keep-alive HTTP connections (one request at a time each, as phones do) to a fresh
#      `outpost-server serve --osmand-listen`; positions/s from the first request until the
#      server's GET /v1/ingest/stats shows every one written to the op log (position.report
#      ops of the bound units, pushed by the gateway in batches);
#   2. CoT ingest: the same over COT_CONNS TCP streams of back-to-back events (`--cot-listen`;
#      each connection writes ~32 KiB at a time, about 80 events per write, and reads the CoT
#      feed the server sends back, as a TAK client does). Target (issue 7): >= 50,000
#      positions/s with zero loss;
#   3. report -> console delay: UNITS units each reporting once a second for DELAY_S seconds
#      (OsmAnd, then CoT), while a headless console (the real sync engine with its poke socket)
#      syncs; the delay from a report leaving the device to the console's database showing
#      that fix as the unit's latest position (p50/p95/p99/max; the first 2 s left out).
#
#   bench/ingest.sh            # full counts (100k reports; 2,000 units x 30 s), release build
#   bench/ingest.sh --smoke    # tiny counts, debug build, seconds (the test suite runs this)
#   REPORTS=200000 UNITS=5000 bench/ingest.sh
#   MAX_DEVICE_RATE=5 bench/ingest.sh --smoke   # throttled reports: must fail (exit 1)
#
# Zero loss: every phase fails the script (exit 1) when a report was refused, throttled,
# dropped or not written (written != sent), or when the console saw no fix; a rate below the
# target is a gap, not a failure.
#
# The load generator and the console are `ingest_bench`
# (crates/outpost-server/examples/ingest_bench.rs). Writes only to a temp directory.
#
# The sync port is TLS (since issue 6 `serve` serves sync over HTTPS only and every request
# needs a device certificate and a person's session): each server's data directory gets
# `outpost-server cert init` (127.0.0.1) and `ingest_bench provision` writes an enrolled
# device + signed-in commander straight into its security database (set-up, not timed): one
# for the set-up pushes and the `GET /v1/ingest/stats` reads, one for the headless console;
# both talk https:// with the agency CA pinned. The device listeners (OsmAnd, CoT) stay PLAIN
# here (no --osmand-tls/--cot-tls, no device tokens), as in issue 4's figures. A last check
# starts a server with --osmand-require-token and fails unless a report without token is
# refused.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init ingest "$@"

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
COT_TARGET=50000
# The rate rows' --max-device-rate (each device's reports go out as fast as the connections
# allow); MAX_DEVICE_RATE=5 bench/ingest.sh --smoke shows that a loss fails the run.
MAX_DEVICE_RATE="${MAX_DEVICE_RATE:-1000000}"
for k in REPORTS DEVICES UNITS DELAY_S OSMAND_CONNS COT_CONNS DELAY_CONNS_OSMAND DELAY_CONNS_COT MAX_DEVICE_RATE; do bench_int "$k" 1; done

bench_build -p outpost-server --bin outpost-server --example ingest_bench
bench_built
SERVER="$TARGET/$PROFILE/outpost-server"
BENCH="$TARGET/$PROFILE/examples/ingest_bench"
SERVER_PID=""
FAIL=0

# provision DATA: `cert init` for 127.0.0.1 in DATA and a device + commander session for the
# tools in DATA.auth (before the server starts).
provision() {
  "$SERVER" cert init --data "$1" --name 127.0.0.1 >/dev/null
  "$BENCH" provision --server-data "$1" --out "$1.auth" >/dev/null
}

# start_server DATA [ARGS...]: starts `outpost-server serve` with both device listeners on
# free ports; sets SERVER_PID, URL, OSMAND, COT.
start_server() {
  local data="$1"; shift
  provision "$data"
  RUST_LOG=warn "$SERVER" serve --data "$data" --listen 127.0.0.1:0 \
    --osmand-listen 127.0.0.1:0 --cot-listen 127.0.0.1:0 "$@" >"$TMP/server.out" 2>"$TMP/server.err" &
  SERVER_PID=$!
  bench_track_pid "$SERVER_PID"
  for _ in $(seq 1 1000); do
    if grep -q '^cot listening on' "$TMP/server.out" 2>/dev/null; then
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
# thread_cpu_s PID NAME -> user + system CPU seconds of PID's threads named NAME (2 decimals)
thread_cpu_s() {
  local hz t total=0
  hz="$(getconf CLK_TCK)"
  for t in /proc/"$1"/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] || continue
    total=$((total + $(sed 's/.*) //' "$t/stat" | awk '{print $12 + $13}')))
  done
  awk -v n="$total" -v hz="$hz" 'BEGIN { printf "%.2f", n / hz }'
}
stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
}

# ---- 1, 2. ingest rate ---------------------------------------------------------------------
for proto in osmand cot; do
  if [ "$proto" = osmand ]; then conns="$OSMAND_CONNS"; else conns="$COT_CONNS"; fi
  echo "== ingest rate, $proto: $REPORTS reports of $DEVICES bound devices over $conns connections" >&2
  start_server "$TMP/$proto-rate" --max-device-rate "$MAX_DEVICE_RATE"
  "$BENCH" setup --server "$URL" --units "$DEVICES" --auth "$TMP/$proto-rate.auth" >/dev/null
  addr="$OSMAND"; [ "$proto" = cot ] && addr="$COT"
  r="$("$BENCH" blast --proto "$proto" --addr "$addr" --server "$URL" --devices "$DEVICES" \
    --reports "$REPORTS" --conns "$conns" --auth "$TMP/$proto-rate.auth")"
  hwm="$(hwm_mib "$SERVER_PID")"; cpu="$(cpu_s "$SERVER_PID")"
  gw_cpu="$(thread_cpu_s "$SERVER_PID" outpost-gateway)"
  stop_server
  echo "   $r" >&2
  written="$(jq .written <<<"$r")" refused="$(jq .refused <<<"$r")"
  throttled="$(jq .throttled <<<"$r")" not_ok="$(jq .not_ok <<<"$r")"
  lost=$((REPORTS - written))
  if [ "$written" != "$REPORTS" ] || [ "$refused" != 0 ] || [ "$throttled" != 0 ] || [ "$not_ok" != 0 ]; then
    echo "LOSS ($proto): sent $REPORTS, written $written, refused $refused, throttled $throttled, not answered 200: $not_ok" >&2
    FAIL=1
  fi
  rate="$(jq '.written_per_s | floor' <<<"$r")"
  gw_us="$(awk -v c="$gw_cpu" -v n="$written" 'BEGIN { printf "%.1f", (n > 0 ? c * 1e6 / n : 0) }')"
  if [ "$proto" = osmand ]; then
    label="OsmAnd ingest (HTTP GET, keep-alive, one request at a time per connection, as phones send)"
  else
    label="CoT ingest (TCP streams of back-to-back events, ~32 KiB per write, each connection also reading the CoT feed)"
  fi
  bench_row "$label: $(grouped "$REPORTS") reports of $(grouped "$DEVICES") bound devices over $conns connections, until all are position.report ops in the log" \
    "**$(grouped "$rate") positions/s** ($(jq -r '.t_written_s * 100 | floor / 100' <<<"$r") s; sent in $(jq -r '.t_sent_s * 100 | floor / 100' <<<"$r") s; $(jq .batches <<<"$r") gateway pushes; written $(grouped "$written"), lost $lost, refused $refused; server peak RSS $hwm MiB, CPU $cpu s of which the gateway thread $gw_cpu s = $gw_us µs per position)" \
    "$([ "$proto" = cot ] && echo "≥ 50,000 positions/s, zero loss" || echo "zero loss")" \
    "bench/ingest.sh (REPORTS=$REPORTS)"
  if [ "$proto" = cot ]; then
    if [ "$rate" -ge "$COT_TARGET" ]; then
      bench_target "CoT ingest rate ($(grouped "$REPORTS") reports, $conns TCP connections)" "≥ 50,000 positions/s" "$(grouped "$rate") positions/s" met
    else
      bench_target "CoT ingest rate ($(grouped "$REPORTS") reports, $conns TCP connections)" "≥ 50,000 positions/s" "$(grouped "$rate") positions/s" gap \
        "the gateway thread (the one SQLite writer) used $gw_us µs of CPU per position, server $cpu s CPU in all over $(jq -r '.t_written_s * 100 | floor / 100' <<<"$r") s on $(nproc) cores shared with the load generator; load average at start $LOAD_BEFORE"
    fi
    if [ "$lost" = 0 ] && [ "$refused" = 0 ] && [ "$throttled" = 0 ]; then
      bench_target "CoT ingest loss" "zero loss" "$(grouped "$written") of $(grouped "$REPORTS") written, 0 refused" met
    else
      bench_target "CoT ingest loss" "zero loss" "$lost lost, $refused refused, $throttled throttled of $(grouped "$REPORTS")" gap "reports were lost (the run fails)"
    fi
  fi
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
  if [ "$(jq .samples <<<"$r")" -le 0 ] || [ "$(jq .refused <<<"$r")" != 0 ]; then
    echo "delay ($proto): the console saw no fix, or a report was refused" >&2
    FAIL=1
  fi
  bench_row "Report → console state delay, $proto: $(grouped "$UNITS") units each reporting once a second for $DELAY_S s (sent $(grouped "$(jq .sent <<<"$r")")), $conns connections, a headless console (real sync engine + poke) syncing" \
    "**p50 $(jq .p50_ms <<<"$r") ms, p95 $(jq .p95_ms <<<"$r") ms**, p99 $(jq .p99_ms <<<"$r") ms, max $(jq .max_ms <<<"$r") ms over $(grouped "$(jq .samples <<<"$r")") fixes (refused $(jq .refused <<<"$r"); server peak RSS $hwm MiB, CPU $cpu s in $DELAY_S s)" \
    "—" "bench/ingest.sh (UNITS=$UNITS DELAY_S=$DELAY_S)"
done

# ---- 4. device token required ---------------------------------------------------------------
echo "== check: with --osmand-require-token a report without token is refused" >&2
start_server "$TMP/token" --osmand-require-token
r="$("$BENCH" untokened --addr "$OSMAND")"
stop_server
echo "   $r" >&2
if [ "$(jq .status <<<"$r")" = 401 ]; then
  token_check="refused (HTTP 401), as it must be"
else
  token_check="NOT refused: $r"
  FAIL=1
fi
bench_row "Check: an OsmAnd report without token to a server with --osmand-require-token" "$token_check" "refused" "bench/ingest.sh"

bench_section "Device ingest (OsmAnd, CoT) and report → console delay" \
  "Everything on one machine over 127.0.0.1: \`outpost-server serve --osmand-listen --cot-listen\` (SQLite, WAL, \`synchronous = FULL\`) as one process, the load generator and the console as another (\`ingest_bench\`). The sync port is HTTPS (agency CA pinned, device certificate + session token); the OsmAnd and CoT listeners are plain HTTP/TCP here (no --osmand-tls, --cot-tls or device tokens). The rate rows run the server with \`--max-device-rate $MAX_DEVICE_RATE\` (each device's reports are sent as fast as the connections allow) and count until \`GET /v1/ingest/stats\` shows every report written as a \`position.report\` op; a report lost, refused or throttled fails the run."

[ "$FAIL" = 0 ] || { echo "ingest: a report was refused or lost, or a check failed" >&2; exit 1; }
