#!/usr/bin/env bash
# Sync benchmarks of issue 3 (design/SYNC.md), release build, everything on 127.0.0.1:
#
#   1. push throughput: one console pushes PUSH_OPS ops (20% critical, 80% positions) to a
#      fresh `outpost-server serve`; ops/s from engine start until its outbox is empty;
#   2. the S5 backlog: a console offline for "8 hours" (S5_POSITIONS positions,
#      S5_CRITICAL incident/status/assignment ops, S5_NOTES notes) with its sync engine
#      already running and failing; then the server starts: time until every critical op is
#      acked and until fully caught up (outbox empty, pulled to the server's newest gseq),
#      peak RSS (VmHWM) of the console process and of the server process;
#   3. pull throughput: a fresh console joins a server holding PULL_OPS ops (filled through
#      the server's own sync logic from FILL_ORIGINS consoles at once, not by SQL).
#
#   bench/sync.sh               # full counts (100k push; 100k/2k/500 backlog; 200k pull)
#   bench/sync.sh --smoke       # tiny counts, debug build, seconds (the test suite runs this)
#   bench/sync.sh --build-only  # build only (bench/all.sh builds everything first)
#   PULL_OPS=1000000 BENCH_CACHE=DIR bench/sync.sh   # issue 3's 1M pull (fill ~10 min, kept)
#   BENCH_CACHE=DIR bench/sync.sh   # keep/reuse the filled pull server in DIR/pull-<N>
#   BENCH_CACHE=DIR bench/sync.sh --fill-only   # only fill DIR/pull-<N> (set-up, not timed)
#
# The console side is `sync_bench` (crates/outpost-sync/examples/sync_bench.rs): the real
# sync engine (`SyncEngine::start`) on a real console database, watched through a second
# read-only connection. Each phase ends with a convergence check (state digests of console
# and server equal, invariant I3). Writes only to a temp directory (and BENCH_CACHE).
# Follows bench/lib.sh's contract: progress on stderr, the section (and with BENCH_OUT its
# target rows: S5 critical acked < 1 s, caught up < 5 s) on stdout; exits non-zero when a
# phase does not converge or an op is parked.
#
# Since issue 6 the server serves sync over TLS only and every request needs a device
# certificate and a person's session: before each phase `sync_bench provision` makes the
# agency CA (`cert init` for 127.0.0.1) and an enrolled device + signed-in commander for the
# console, straight into the server's security database (set-up, not timed); the console
# syncs over https:// with them. The figures include TLS and the per-request auth.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init sync "$@"

FILL_ONLY=0
for a in "$@"; do [ "$a" = "--fill-only" ] && FILL_ONLY=1; done
if [ "$FILL_ONLY" = 1 ] && [ -z "${BENCH_CACHE:-}" ]; then
  echo "--fill-only needs BENCH_CACHE=DIR" >&2
  exit 2
fi
if [ "$SMOKE" = 1 ]; then
  PUSH_OPS="${PUSH_OPS:-2000}"
  S5_POSITIONS="${S5_POSITIONS:-2000}" S5_CRITICAL="${S5_CRITICAL:-200}" S5_NOTES="${S5_NOTES:-50}"
  PULL_OPS="${PULL_OPS:-5000}"
else
  PUSH_OPS="${PUSH_OPS:-100000}"
  S5_POSITIONS="${S5_POSITIONS:-100000}" S5_CRITICAL="${S5_CRITICAL:-2000}" S5_NOTES="${S5_NOTES:-500}"
  # Issue 3 pulled 1,000,000 ops; filling such a server takes ~10 minutes, so the default
  # run (bench/all.sh, <= ~5 minutes in all) pulls 200,000. PULL_OPS=1000000 with
  # BENCH_CACHE=DIR (filled once by --fill-only) measures the full size.
  PULL_OPS="${PULL_OPS:-200000}"
fi
FILL_ORIGINS="${FILL_ORIGINS:-2}"
OFFLINE_S="${OFFLINE_S:-3}"   # how long the S5 console runs with no server before it starts
for k in PUSH_OPS PULL_OPS FILL_ORIGINS S5_POSITIONS S5_CRITICAL S5_NOTES; do bench_int "$k" 1; done
bench_int OFFLINE_S 0

bench_build -p outpost-server --bin outpost-server
bench_build -p outpost-sync --example sync_bench
bench_built
SERVER="$TARGET/$PROFILE/outpost-server"
BENCH="$TARGET/$PROFILE/examples/sync_bench"
SERVER_PID=""

# start_server DATA PORT: starts `outpost-server serve`, sets SERVER_PID, waits for "listening".
start_server() {
  local data="$1" port="$2"
  RUST_LOG=warn "$SERVER" serve --data "$data" --listen "127.0.0.1:$port" \
    >"$TMP/server.out" 2>"$TMP/server.err" &
  SERVER_PID=$!
  bench_track_pid "$SERVER_PID"
  for _ in $(seq 1 2000); do
    grep -q '^listening on' "$TMP/server.out" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.err" >&2; return 1; }
    sleep 0.005
  done
  echo "the server did not start" >&2
  return 1
}
stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
}
# same_digest CONSOLE_DIR SERVER_DIR: "yes" when the state digests are equal (server stopped).
same_digest() {
  local c s
  c="$("$BENCH" digest --console "$1")"
  s="$("$BENCH" digest --server-data "$2")"
  if [ "$c" = "$s" ]; then echo yes; else echo "NO"; fi
}
mib() { echo "$(( ($1 + 512) / 1024 ))"; }
CONVERGED=()

# fill_pull_server: fills PULL_SERVER with PULL_OPS ops unless already filled (records the
# date and the load average of the fill with its result).
fill_pull_server() {
  if [ -f "$PULL_SERVER/filled.json" ]; then return 0; fi
  rm -rf "$PULL_SERVER"
  local load
  load="$(cut -d' ' -f1-3 /proc/loadavg)"
  "$BENCH" fill --data "$PULL_SERVER" --ops "$PULL_OPS" --origins "$FILL_ORIGINS" \
    | jq -c --arg at "$(date -u '+%Y-%m-%d %H:%M UTC')" --arg load "$load" \
      '. + {filled_at: $at, load_at_start: $load}' >"$PULL_SERVER.fill.json"
  mv "$PULL_SERVER.fill.json" "$PULL_SERVER/filled.json"
}
if [ -n "${BENCH_CACHE:-}" ]; then
  mkdir -p "$BENCH_CACHE"
  PULL_SERVER="$BENCH_CACHE/pull-$PULL_OPS"
else
  PULL_SERVER="$TMP/pull-server"
fi
if [ "$FILL_ONLY" = 1 ]; then
  fill_pull_server
  cat "$PULL_SERVER/filled.json"
  exit 0
fi

# ---- 1. push throughput -------------------------------------------------------------------
crit=$(( PUSH_OPS / 5 ))
echo "== 1. push throughput: $PUSH_OPS ops ($crit critical, $(( PUSH_OPS - crit )) positions)" >&2
"$BENCH" gen --data "$TMP/push-console" --critical "$crit" --positions $(( PUSH_OPS - crit )) \
  --notes 0 >"$TMP/push-gen.json"
echo "   written: $(cat "$TMP/push-gen.json")" >&2
"$BENCH" provision --server-data "$TMP/push-server" --console "$TMP/push-console" \
  --out "$TMP/push-auth" >/dev/null
port="$(free_port)"
start_server "$TMP/push-server" "$port"
"$BENCH" run --data "$TMP/push-console" --server "https://127.0.0.1:$port" \
  --auth "$TMP/push-auth" >"$TMP/push.json"
srv_hwm="$(hwm_mib "$SERVER_PID")"
srv_cpu="$(cpu_s "$SERVER_PID")"
stop_server
r="$(cat "$TMP/push.json")"
echo "   $r" >&2
pushed="$(jq .pushed <<<"$r")"
t="$(secs "$(jq .t_start <<<"$r")" "$(jq .t_pushed <<<"$r")")"
rate="$(awk -v n="$pushed" -v t="$t" 'BEGIN { printf "%d", n / t }')"
conv="$(same_digest "$TMP/push-console" "$TMP/push-server")"
CONVERGED+=("push:$conv")
bench_row "Push throughput: one console, $(grouped "$pushed") ops (20% critical, 80% positions) to \`outpost-server serve\` over HTTPS (device certificate + session token), batches of 1,000" \
  "**$(grouped "$rate") ops/s** ($t s from engine start until the outbox is empty; console peak RSS $(mib "$(jq .vm_hwm_kib <<<"$r")") MiB, server $srv_hwm MiB; CPU time console $(jq .cpu_s <<<"$r") s, server $srv_cpu s (push and pull back); converged: $conv)" \
  "" "bench/sync.sh (PUSH_OPS=$PUSH_OPS)"

# ---- 2. S5 backlog ------------------------------------------------------------------------
echo "== 2. S5 backlog: $S5_POSITIONS positions, $S5_CRITICAL critical, $S5_NOTES notes offline" >&2
"$BENCH" gen --data "$TMP/s5-console" --positions "$S5_POSITIONS" --critical "$S5_CRITICAL" \
  --notes "$S5_NOTES" --hours 8 >"$TMP/s5-gen.json"
echo "   written: $(cat "$TMP/s5-gen.json")" >&2
"$BENCH" provision --server-data "$TMP/s5-server" --console "$TMP/s5-console" \
  --out "$TMP/s5-auth" >/dev/null
port="$(free_port)"
"$BENCH" run --data "$TMP/s5-console" --server "https://127.0.0.1:$port" \
  --auth "$TMP/s5-auth" >"$TMP/s5.json" &
console_pid=$!
bench_track_pid "$console_pid"
sleep "$OFFLINE_S"   # the console's engine runs, fails, backs off: no server yet
t_launch="$(now_ms)"
start_server "$TMP/s5-server" "$port"
t_listen="$(now_ms)"
echo "   server listening $(secs "$t_launch" "$t_listen") s after launch" >&2
wait "$console_pid" || { echo "the S5 console failed" >&2; exit 1; }
srv_hwm="$(hwm_mib "$SERVER_PID")"
srv_cpu="$(cpu_s "$SERVER_PID")"
stop_server
r="$(cat "$TMP/s5.json")"
echo "   $r" >&2
t_contact="$(secs "$t_listen" "$(jq .t_contact <<<"$r")")"
t_first="$(secs "$t_listen" "$(jq .t_first_ack <<<"$r")")"
t_crit="$(secs "$t_listen" "$(jq .t_critical_acked <<<"$r")")"
t_done="$(secs "$t_listen" "$(jq .t_caught_up <<<"$r")")"
c_crit="$(secs "$(jq .t_contact <<<"$r")" "$(jq .t_critical_acked <<<"$r")")"
c_done="$(secs "$(jq .t_contact <<<"$r")" "$(jq .t_caught_up <<<"$r")")"
t_pushed="$(secs "$t_listen" "$(jq .t_pushed <<<"$r")")"
parked="$(jq .parked <<<"$r")"
conv="$(same_digest "$TMP/s5-console" "$TMP/s5-server")"
CONVERGED+=("s5:$conv")
[ "$parked" = 0 ] || { echo "S5: $parked ops parked" >&2; exit 1; }
total=$(( S5_POSITIONS + S5_CRITICAL + S5_NOTES ))
con_hwm="$(mib "$(jq .vm_hwm_kib <<<"$r")")"
met() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b) ? "met" : "gap" }'; }
m_crit="$(met "$t_crit" 1)"
m_done="$(met "$t_done" 5)"
bench_row "S5 backlog after reconnect ($(grouped "$S5_POSITIONS") positions, $(grouped "$S5_CRITICAL") critical, $S5_NOTES notes written offline over 8 h; the engine retrying for ${OFFLINE_S} s when the server starts): all critical ops acked" \
  "**$t_crit s** after the server listens (first contact at $t_contact s, first ack at $t_first s; $c_crit s from first contact)" \
  "< 1 s: **$m_crit**" "bench/sync.sh (OFFLINE_S=$OFFLINE_S)"
bench_row "S5 backlog: fully caught up ($(grouped "$total") ops pushed, outbox empty at $t_pushed s, pulled back to the server's newest gseq)" \
  "**$t_done s** after the server listens ($c_done s from first contact; converged: $conv)" \
  "< 5 s: **$m_done**" "bench/sync.sh"
bench_row "S5 backlog: peak memory (VmHWM)" \
  "console **$con_hwm MiB**, server **$srv_hwm MiB** (CPU time console $(jq .cpu_s <<<"$r") s, server $srv_cpu s)" \
  "" "bench/sync.sh"
why_crit=""
[ "$m_crit" = met ] || why_crit="reconnect (first contact at $t_contact s) + critical push ($c_crit s from first contact)"
why_done=""
[ "$m_done" = met ] || why_done="pushing and pulling back $(grouped "$total") ops takes $c_done s from first contact (outbox empty at $t_pushed s): the positions lane is the bulk"
bench_target "S5: all critical ops acked, from the server listening" "< 1 s" "$t_crit s" "$m_crit" "$why_crit"
bench_target "S5: fully caught up, from the server listening" "< 5 s" "$t_done s" "$m_done" "$why_done"

# ---- 3. pull throughput -------------------------------------------------------------------
echo "== 3. pull: a fresh console joins a server holding $PULL_OPS ops" >&2
fill_pull_server
fill="$(cat "$PULL_SERVER/filled.json")"
echo "   filled: $fill" >&2
gseq="$(jq .server_gseq <<<"$fill")"
"$BENCH" provision --server-data "$PULL_SERVER" --console "$TMP/pull-console" \
  --out "$TMP/pull-auth" >/dev/null
port="$(free_port)"
start_server "$PULL_SERVER" "$port"
"$BENCH" run --data "$TMP/pull-console" --server "https://127.0.0.1:$port" \
  --min-gseq "$gseq" --auth "$TMP/pull-auth" >"$TMP/pull.json"
srv_hwm="$(hwm_mib "$SERVER_PID")"
srv_cpu="$(cpu_s "$SERVER_PID")"
stop_server
r="$(cat "$TMP/pull.json")"
echo "   $r" >&2
pulled="$(jq .pulled <<<"$r")"
t="$(secs "$(jq .t_start <<<"$r")" "$(jq .t_caught_up <<<"$r")")"
rate="$(awk -v n="$pulled" -v t="$t" 'BEGIN { printf "%d", n / t }')"
conv="$(same_digest "$TMP/pull-console" "$PULL_SERVER")"
CONVERGED+=("pull:$conv")
fill_rate="$(jq '.ops_per_s | floor' <<<"$fill")"
bench_row "Pull throughput: a fresh console joins a server holding $(grouped "$gseq") ops ($FILL_ORIGINS origins, 97.6% positions), pages of 1,000" \
  "**$(grouped "$rate") ops/s**, **$t s** in all (console peak RSS $(mib "$(jq .vm_hwm_kib <<<"$r")") MiB, server $srv_hwm MiB; CPU time console $(jq .cpu_s <<<"$r") s, server $srv_cpu s; converged: $conv)" \
  "" "bench/sync.sh (PULL_OPS=$PULL_OPS)"
bench_row "Server ingest without HTTP (filling the pull server: $FILL_ORIGINS in-memory consoles writing and pushing through \`SyncService\` at once; set-up, $(jq -r '.filled_at + ", load average " + .load_at_start' <<<"$fill"))" \
  "$(grouped "$fill_rate") ops/s" "" "bench/sync.sh (FILL_ORIGINS=$FILL_ORIGINS)"

# ---- section ------------------------------------------------------------------------------
intro="One console (\`sync_bench run\`: the real sync engine, \`SyncEngine::start\` with the app's default options, on a real console database) and \`outpost-server serve\` as two processes on 127.0.0.1, over HTTPS with a device certificate and a session token on every request (issue 6).

S5 clock: the console's engine starts first with nothing listening on its port (${OFFLINE_S} s of failed rounds and backoff, as after a link loss). **The clock starts when the server prints \`listening\`**, i.e. when the network is back. \"First contact\" is when the console's engine is first seen syncing with the server (it noticed the server was back); the times \"from first contact\" are the sync work alone. Times come from a watcher polling the console database through a second read-only connection (every 20 ms until the critical ops are acked, then every 100 ms). Peak memory is VmHWM (\`/proc/PID/status\`) of each process. Every phase ends with equal state digests on console and server (invariant I3).

Pull server: $(grouped "$gseq") ops. Issue 3 pulled 1,000,000; filling that server takes about 10 minutes, too long for bench/all.sh: \`PULL_OPS=1000000 BENCH_CACHE=DIR bench/sync.sh\` measures it (the fill is kept in DIR)."
bench_section "Sync: push, the S5 offline backlog, pull" "$intro"
for c in "${CONVERGED[@]}"; do
  case "$c" in *:yes) ;; *) echo "a phase did not converge: $c" >&2; exit 1 ;; esac
done
