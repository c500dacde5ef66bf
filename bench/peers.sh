#!/usr/bin/env bash
# CoT ingest against real TAK servers (issue 7, part 2): the same load generator and counter
# (`cot_load`, crates/outpost-server/examples/cot_load.rs) against `outpost-server serve
# --cot-listen`, taky 0.10 and FreeTAKServer 2.2.1 (both from PyPI, installed by
# ensure_peers_venv of scripts/lib/install.sh into target/peers-venv), in one run, one after
# the other, each started fresh:
#
#   UNITS units, EVENTS position events over CONNS TCP connections; a counter connection
#   (connected before the load) counts what the server relays.
#
#   bench/peers.sh            # 2,000 units, 50,000 events, 20 connections
#   bench/peers.sh --smoke    # tiny counts, debug build (the test suite runs this)
#   UNITS=2000 EVENTS=100000 CONNS=20 bench/peers.sh
#
# Isolation (../shared/design/PEERS.md): Outpost and taky listen on free 127.0.0.1 ports, write
# only under the temp dir (taky: a config file with bind_ip/public_ip 127.0.0.1, root_dir,
# log_cot, SSL off). FreeTAKServer binds fixed ports on all interfaces and writes /opt/fts and
# /var/log: it runs in its own mount + network namespace (`unshare -m -n`, private folders
# bind-mounted over /opt and /var/log, only `lo` up), FTS_FIRST_START=false, its own process
# group (setsid); `cot_load` runs inside that namespace (`nsenter -t PID -n`). Everything is
# stopped on exit (the namespaces die with their processes).
#
# Exits non-zero when Outpost lost an event (or a unit's final position never became
# visible), or when a peer could not start (with --smoke also when a peer relayed nothing).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init peers "$@"
# shellcheck source=../scripts/lib/install.sh
source "$ROOT/scripts/lib/install.sh"
ensure_peers_venv
PEERS="$(peers_venv)"

if [ "$SMOKE" = 1 ]; then
  UNITS="${UNITS:-100}" EVENTS="${EVENTS:-500}" CONNS="${CONNS:-5}"
else
  UNITS="${UNITS:-2000}" EVENTS="${EVENTS:-50000}" CONNS="${CONNS:-20}"
fi
# The counter stops QUIET_S seconds after the last new event (once one arrived: FreeTAKServer
# relays its first events long after a burst), at TIMEOUT_S after the first send at the latest: what a server
# has not relayed (or written) by then counts as lost (taky and FreeTAKServer take many minutes
# for 50,000 events with 20 clients).
QUIET_S="${QUIET_S:-15}"
TIMEOUT_S="${TIMEOUT_S:-$([ "$SMOKE" = 1 ] && echo 120 || echo 300)}"
for k in UNITS EVENTS CONNS QUIET_S TIMEOUT_S; do bench_int "$k" 1; done
# Outpost's per-device rate limit (default 5/s, serve --max-device-rate) is lifted: the load
# sends a unit's events back to back. The peers have no such limit.
MAX_DEVICE_RATE=1000000

bench_build -p outpost-server --bin outpost-server --example ingest_bench --example cot_load
declare -F bench_built >/dev/null && bench_built
SERVER="$TARGET/$PROFILE/outpost-server"
BENCH="$TARGET/$PROFILE/examples/ingest_bench"
LOAD="$TARGET/$PROFILE/examples/cot_load"
LOAD_ARGS=(--units "$UNITS" --events "$EVENTS" --conns "$CONNS" --quiet-s "$QUIET_S" --timeout-s "$TIMEOUT_S")
FAIL=0

# wait_listen PID PORT [NSENTER...]: until PORT listens (checked with ss, no connection: a
# probe would stay a client of FreeTAKServer) or PID died; 60 s at most.
wait_listen() {
  local pid="$1" port="$2" i
  shift 2
  for i in $(seq 1 600); do
    "$@" ss -Hltn "sport = :$port" 2>/dev/null | grep -q LISTEN && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# stop_group PID: TERM to the process group, KILL after 10 s.
stop_group() {
  local pid="$1" i
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
# group_cpu PID -> CPU seconds of the process and its children still running (1 decimal).
group_cpu() {
  local total=0 p
  for p in $(pgrep -g "$1" 2>/dev/null || echo "$1"); do
    total="$(awk -v a="$total" -v b="$(cpu_s "$p" 2>/dev/null || echo 0)" 'BEGIN {print a + b}')"
  done
  printf '%.1f' "$total"
}
group_rss_mib() {
  local total=0 p
  for p in $(pgrep -g "$1" 2>/dev/null || echo "$1"); do
    total=$((total + $(hwm_mib "$p" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# ---- Outpost --------------------------------------------------------------------------------
echo "== outpost-server: $EVENTS events of $UNITS units over $CONNS connections" >&2
DATA="$TMP/outpost"
"$SERVER" cert init --data "$DATA" --name 127.0.0.1 >/dev/null
"$BENCH" provision --server-data "$DATA" --out "$DATA.auth" >/dev/null
RUST_LOG=warn setsid "$SERVER" serve --data "$DATA" --listen 127.0.0.1:0 --cot-listen 127.0.0.1:0 \
  --max-device-rate "$MAX_DEVICE_RATE" >"$TMP/outpost.out" 2>"$TMP/outpost.err" &
OP_PID=$!
bench_track_pid "$OP_PID"
for _ in $(seq 1 1000); do
  grep -q '^cot listening on' "$TMP/outpost.out" 2>/dev/null && break
  kill -0 "$OP_PID" 2>/dev/null || { cat "$TMP/outpost.err" >&2; echo "outpost-server did not start" >&2; exit 1; }
  sleep 0.01
done
URL="https://$(awk '/^listening on/ {print $3}' "$TMP/outpost.out")"
COT="$(awk '/^cot listening on/ {print $4}' "$TMP/outpost.out")"
"$BENCH" setup --server "$URL" --units "$UNITS" --auth "$DATA.auth" >/dev/null
OP="$("$LOAD" run --addr "$COT" "${LOAD_ARGS[@]}" --stats "$URL" --auth "$DATA.auth")"
OP_CPU="$(cpu_s "$OP_PID")" OP_RSS="$(hwm_mib "$OP_PID")"
stop_group "$OP_PID"
echo "   $OP" >&2

# ---- taky -----------------------------------------------------------------------------------
echo "== taky 0.10: the same" >&2
TK="$TMP/taky"
mkdir -p "$TK/cot" "$TK/dp"
TK_PORT="$(free_port)"
cat >"$TK/taky.conf" <<EOF
[taky]
hostname = 127.0.0.1
bind_ip = 127.0.0.1
public_ip = 127.0.0.1
root_dir = $TK
[cot_server]
port = $TK_PORT
log_cot = $TK/cot
[dp_server]
upload_path = $TK/dp
[ssl]
enabled = false
EOF
(cd "$TK" && exec setsid "$PEERS/taky/bin/taky" -c "$TK/taky.conf" >"$TK/taky.log" 2>&1) &
TK_PID=$!
bench_track_pid "$TK_PID"
TK_OUT=""
if wait_listen "$TK_PID" "$TK_PORT"; then
  TK_OUT="$("$LOAD" run --addr "127.0.0.1:$TK_PORT" "${LOAD_ARGS[@]}")" || TK_OUT=""
  TK_CPU="$(group_cpu "$TK_PID")" TK_RSS="$(group_rss_mib "$TK_PID")"
else
  tail -20 "$TK/taky.log" >&2
fi
stop_group "$TK_PID"
# Events of the load in taky's log_cot files (one per client).
TK_LOGGED="$(cat "$TK"/cot/*.cot 2>/dev/null | grep -c '<event [^>]*uid="dev-' || true)"
echo "   ${TK_OUT:-taky did not start or the load failed} (log_cot: $TK_LOGGED events)" >&2

# ---- FreeTAKServer --------------------------------------------------------------------------
echo "== FreeTAKServer 2.2.1: the same, in its own mount + network namespace" >&2
FT="$TMP/fts"
mkdir -p "$FT/opt" "$FT/varlog"
NS_USER=() NSENTER_USER=()
if [ "$(id -u)" -ne 0 ]; then
  # Without root: a user namespace (root inside it) for the mount and network namespaces.
  NS_USER=(-r) NSENTER_USER=(-U --preserve-credentials)
fi
(cd "$FT" && FTS_FIRST_START=false exec setsid unshare "${NS_USER[@]}" -m -n --propagation private \
  sh -c 'mount --bind "$1/opt" /opt && mount --bind "$1/varlog" /var/log && ip link set lo up &&
    exec "$2" -m FreeTAKServer.controllers.services.FTS -CoTIP 127.0.0.1 -SSLCoTIP 127.0.0.1 \
      -DataPackageIP 127.0.0.1 -SSLDataPackageIP 127.0.0.1 -RestAPIIP 127.0.0.1 -AutoStart True' \
  sh "$FT" "$PEERS/fts/bin/python" >"$FT/fts.log" 2>&1) &
FT_PID=$!
bench_track_pid "$FT_PID"
IN_FT=(nsenter "${NSENTER_USER[@]}" -t "$FT_PID" -n)
FT_OUT=""
if wait_listen "$FT_PID" 8087 "${IN_FT[@]}"; then
  FT_OUT="$("${IN_FT[@]}" "$LOAD" run --addr 127.0.0.1:8087 "${LOAD_ARGS[@]}")" || FT_OUT=""
  FT_CPU="$(group_cpu "$FT_PID")" FT_RSS="$(group_rss_mib "$FT_PID")"
else
  tail -20 "$FT/fts.log" >&2
fi
stop_group "$FT_PID"
echo "   ${FT_OUT:-FreeTAKServer did not start or the load failed}" >&2

# ---- figures --------------------------------------------------------------------------------
# rate ACCEPTED SECONDS -> events/s (integer)
rate() { awk -v n="$1" -v t="$2" 'BEGIN { if (t > 0) printf "%d", n / t; else print 0 }'; }
s2() { jq -r "if $1 == null then \"never\" else ($1 * 100 | round / 100 | tostring) + \" s\" end" <<<"$2"; }
# ms FIELD JSON -> "123 ms"
ms() { jq -r "($1 * 1000 | round | tostring) + \" ms\"" <<<"$2"; }
# visible FIELD JSON -> "**0.41 s after the last send**" or "**never** (N of M units' final positions seen)"
visible() {
  if [ "$(jq "$1 == null" <<<"$2")" = true ]; then
    echo "**never** ($(jq .finals <<<"$2") of $UNITS units' final positions seen)"
  else
    echo "**$(s2 "$1" "$2") after the last send**"
  fi
}

cmd="bench/peers.sh"
[ "$SMOKE" = 1 ] && cmd="bench/peers.sh --smoke"
what="$(grouped "$EVENTS") CoT position events of $(grouped "$UNITS") units over $CONNS TCP connections"

OP_ACC="$(jq .written <<<"$OP")"
OP_T="$(jq '[.t_written_s // .t_end_s, .t_visible_s // 0] | max' <<<"$OP")"
OP_RATE="$(rate "$OP_ACC" "$OP_T")"
OP_LOST=$((EVENTS - OP_ACC))
OP_FINALS="$(jq .finals <<<"$OP")"
if [ "$OP_LOST" -ne 0 ] || [ "$OP_FINALS" -ne "$UNITS" ] || [ "$(jq .send_failed <<<"$OP")" -ne 0 ]; then
  echo "Outpost lost events: $OP" >&2
  FAIL=1
fi
bench_row "Outpost (\`outpost-server serve --cot-listen\`): $what" \
  "**$(grouped "$OP_RATE") events/s accepted** ($(grouped "$OP_ACC") position.report ops in the log; **lost $(grouped "$OP_LOST")**; refused $(jq .refused <<<"$OP"); sent in $(ms .t_sent_s "$OP"), all written at $(s2 .t_written_s "$OP"); every unit's final position visible to the counter $(visible .delay_s "$OP"); the feed relayed $(grouped "$(jq .distinct <<<"$OP")") distinct events (latest per unit per 250 ms round); CPU $OP_CPU s, peak RSS $OP_RSS MiB)" \
  "0 lost; ≥ 50,000/s; ≥ 50× taky" "$cmd"

# peer_row NAME OUT CPU RSS [LOGGED]: the row of a peer; sets PEER_RATE. LOGGED: the events the
# server itself recorded (taky's log_cot), when it keeps a record.
peer_row() {
  local name="$1" out="$2" cpu="$3" rss="$4" logged="${5:-}" acc t lost relayed how
  if [ -z "$out" ]; then
    bench_row "$name: $what" "did not start or accept the load (see stderr)" "—" "$cmd"
    PEER_RATE=0
    FAIL=1
    return
  fi
  relayed="$(jq .distinct <<<"$out")"
  acc="$relayed"
  t="$(jq '.t_last_new_s // 0' <<<"$out")"
  how="$(grouped "$relayed") distinct events relayed to the counter"
  if [ -n "$logged" ] && [ "$logged" -gt "$relayed" ]; then
    # It took in more than it relayed by the end: count what it took in (its own record),
    # over the whole time the counter waited (the favourable reading for the peer).
    acc="$logged"
    t="$(jq .t_end_s <<<"$out")"
    how="$(grouped "$logged") events in its log_cot files by $(s2 .t_end_s "$out") (only $(grouped "$relayed") of them relayed to the counter by then)"
  elif [ -n "$logged" ]; then
    how="$how by $(s2 .t_last_new_s "$out") (its log_cot files hold $(grouped "$logged"))"
  elif [ "$relayed" -gt 0 ]; then
    how="$how by $(s2 .t_last_new_s "$out")"
  else
    how="none relayed to the counter within $(s2 .t_end_s "$out")"
  fi
  PEER_RATE="$(rate "$acc" "$t")"
  lost=$((EVENTS - acc))
  if [ "$acc" -eq 0 ] && [ "$SMOKE" = 1 ]; then
    echo "$name relayed nothing: $out" >&2
    FAIL=1
  fi
  bench_row "$name: $what" \
    "**$(grouped "$PEER_RATE") events/s accepted** ($how; **lost $(grouped "$lost")**; sent in $(ms .t_sent_s "$out"), $(jq .send_failed <<<"$out") not sent (connection closed by the server); every unit's final position visible $(visible .delay_s "$out"); CPU $cpu s, peak RSS $rss MiB summed over its processes)" \
    "—" "$cmd"
}
peer_row "taky 0.10" "$TK_OUT" "${TK_CPU:-?}" "${TK_RSS:-?}" "$TK_LOGGED"
TK_RATE="$PEER_RATE"
peer_row "FreeTAKServer 2.2.1" "$FT_OUT" "${FT_CPU:-?}" "${FT_RSS:-?}"
FT_RATE="$PEER_RATE"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'; }
R_TK="$(ratio "$OP_RATE" "$TK_RATE")" R_FT="$(ratio "$OP_RATE" "$FT_RATE")"
FT_WORDS="${R_FT}× FreeTAKServer"
[ "$R_FT" = n/a ] && FT_WORDS="FreeTAKServer accepted none"
bench_row "Ratio Outpost / peer, events/s accepted" "**${R_TK}× taky**, $FT_WORDS" "≥ 50× taky" "$cmd"

bench_target "Outpost CoT ingest: events lost" "0" "$OP_LOST" "$([ "$OP_LOST" = 0 ] && echo met || echo gap)" \
  "$([ "$OP_LOST" = 0 ] || echo "events not in the log (the run fails)")"
met=gap why="Outpost accepted $(grouped "$OP_RATE") events/s against taky's $(grouped "$TK_RATE")"
awk -v r="$R_TK" 'BEGIN { exit !(r != "n/a" && r >= 50) }' && met=met why=""
bench_target "Outpost vs taky, CoT events/s accepted" "≥ 50×" "${R_TK}×" "$met" "$why"
met=gap why="the CoT ingest path (TCP read, decode, gateway batches into the op log) takes $(grouped "$OP_RATE") events/s here; see bench/ingest.sh for the path alone"
[ "$OP_RATE" -ge 50000 ] && met=met why=""
bench_target "Outpost CoT positions/s (against peers' load)" "≥ 50,000/s" "$(grouped "$OP_RATE")/s" "$met" "$why"

bench_section "CoT ingest against real TAK servers (taky, FreeTAKServer)" \
"One load generator and one counter (\`cot_load\`, crates/outpost-server/examples/cot_load.rs) for all three servers, each started fresh, one after the other: a counter connects to the server's CoT port first and announces itself as a TAK client does; then $CONNS sender connections (each also reading what the server relays to it, as ATAK does) send $(grouped "$EVENTS") position events of $(grouped "$UNITS") units, one write per event as pytak and ATAK send it (XML declaration, newline, \`<event>\` with uid \`dev-N\`, type \`a-f-G-U-C\`), each unit's on one connection, back to back. Each event's longitude carries its number for its unit, so the counter recognises every relayed event, whatever the server re-encodes. **Counted the same way on each:** *visible* = the counter has received every unit's final position; *delay* = from the senders' last write to that moment. **Accepted**: taky and FreeTAKServer relay each event they take to every other client, so accepted = distinct events relayed to the counter; events/s = accepted ÷ seconds from the first send to the last new event at the counter. taky also keeps its own record (\`log_cot\`): when it holds more than taky relayed by the end, accepted = that count over the whole wait instead (the reading in taky's favour); FreeTAKServer keeps no per-event record. Outpost's CoT feed sends each changed unit's *latest* position per 250 ms round (a TAK client needs no superseded positions), so counting its relayed events would count its coalescing, not its losses: for Outpost, accepted = position.report ops written to the op log (its \`GET /v1/ingest/stats\`), and events/s = accepted ÷ seconds from the first send until all are written *and* every final position is visible to the counter (the later of the two); its relayed distinct events are shown too. Lost = sent − accepted. Outpost runs with \`--max-device-rate $MAX_DEVICE_RATE\` (the default 5 per device per second would drop a unit's back-to-back events; the peers have no such limit), devices bound to units beforehand (\`ingest_bench setup\`), sync over TLS as always. taky runs on a free 127.0.0.1 port with a config file (root_dir and log_cot in the temp dir, SSL off); FreeTAKServer in its own mount + network namespace (\`unshare -m -n\`, private /opt and /var/log), the load run inside it with \`nsenter\`. The counter stops when it has everything, or $QUIET_S s after the last new event (once one arrived), or $TIMEOUT_S s after the first send: events not relayed (Outpost: not written) by then count as lost. taky writes every event to its \`log_cot\` files (its receipt), as Outpost writes every position to its op log."

[ "$FAIL" = 0 ] || { echo "invalid run: Outpost lost events, or a peer did not start or accept the load" >&2; exit 1; }
