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
#   bench/sync.sh               # full counts (100k push; 100k/2k/500 backlog; 1M pull)
#   bench/sync.sh --smoke       # tiny counts, seconds (the test suite runs this)
#   PULL_OPS=200000 bench/sync.sh
#   BENCH_CACHE=DIR bench/sync.sh   # keep/reuse the filled pull server in DIR/pull-<N>
#   BENCH_CACHE=DIR bench/sync.sh --fill-only   # only fill DIR/pull-<N> (set-up, not timed)
#
# The console side is `sync_bench` (crates/outpost-sync/examples/sync_bench.rs): the real
# sync engine (`SyncEngine::start`) on a real console database, watched through a second
# read-only connection. Each phase ends with a convergence check (state digests of console
# and server equal, invariant I3). Writes only to a temp directory (and BENCH_CACHE).
# Prints progress to stderr and a markdown table to stdout.
#
# Since issue 6 the server serves sync over TLS only and every request needs a device
# certificate and a person's session: before each phase `sync_bench provision` makes the
# agency CA (`cert init` for 127.0.0.1) and an enrolled device + signed-in commander for the
# console, straight into the server's security database (set-up, not timed); the console
# syncs over https:// with them. The figures include TLS and the per-request auth.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

SMOKE=0
FILL_ONLY=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
if [ "${1:-}" = "--fill-only" ]; then
  FILL_ONLY=1
  [ -n "${BENCH_CACHE:-}" ] || { echo "--fill-only needs BENCH_CACHE=DIR" >&2; exit 2; }
fi
if [ "$SMOKE" = 1 ]; then
  PUSH_OPS="${PUSH_OPS:-2000}"
  S5_POSITIONS="${S5_POSITIONS:-2000}" S5_CRITICAL="${S5_CRITICAL:-200}" S5_NOTES="${S5_NOTES:-50}"
  PULL_OPS="${PULL_OPS:-5000}"
else
  PUSH_OPS="${PUSH_OPS:-100000}"
  S5_POSITIONS="${S5_POSITIONS:-100000}" S5_CRITICAL="${S5_CRITICAL:-2000}" S5_NOTES="${S5_NOTES:-500}"
  PULL_OPS="${PULL_OPS:-1000000}"
fi
FILL_ORIGINS="${FILL_ORIGINS:-2}"
OFFLINE_S="${OFFLINE_S:-3}"   # how long the S5 console runs with no server before it starts

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
TMP="$(mktemp -d)"
SERVER_PID=""
CONSOLE_PID=""
cleanup() {
  [ -n "$CONSOLE_PID" ] && kill "$CONSOLE_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# Figures come from release builds; the smoke run (the test suite's "does it still work")
# uses the debug build the tests already made, unless BENCH_PROFILE says otherwise.
PROFILE="${BENCH_PROFILE:-$([ "$SMOKE" = 1 ] && echo debug || echo release)}"
PFLAG=()
[ "$PROFILE" = release ] && PFLAG=(--release)
echo "building $PROFILE binaries..." >&2
(cd "$ROOT" && cargo build "${PFLAG[@]}" -q -p outpost-server)
(cd "$ROOT" && cargo build "${PFLAG[@]}" -q -p outpost-sync --example sync_bench)
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
SERVER="$TARGET/$PROFILE/outpost-server"
BENCH="$TARGET/$PROFILE/examples/sync_bench"

now_ms() { date +%s%3N; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# start_server DATA PORT: starts `outpost-server serve`, sets SERVER_PID, waits for "listening".
start_server() {
  local data="$1" port="$2"
  RUST_LOG=warn "$SERVER" serve --data "$data" --listen "127.0.0.1:$port" \
    >"$TMP/server.out" 2>"$TMP/server.err" &
  SERVER_PID=$!
  for _ in $(seq 1 1000); do
    grep -q '^listening on' "$TMP/server.out" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.err" >&2; return 1; }
    sleep 0.01
  done
  echo "the server did not start" >&2
  return 1
}
# hwm_kib PID: peak RSS of a running process.
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# cpu_s PID: CPU time (user + system) of a running process, seconds.
cpu_s() {
  sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($12 + $13) / hz}'
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
secs() { printf '%.2f' "$(echo "($2 - $1) / 1000" | bc -l)"; }
grouped() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }

ROWS=()

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
srv_hwm="$(hwm_kib "$SERVER_PID")"
srv_cpu="$(cpu_s "$SERVER_PID")"
stop_server
r="$(cat "$TMP/push.json")"
echo "   $r" >&2
pushed="$(jq .pushed <<<"$r")"
t="$(secs "$(jq .t_start <<<"$r")" "$(jq .t_pushed <<<"$r")")"
rate="$(echo "$pushed / $t" | bc)"
conv="$(same_digest "$TMP/push-console" "$TMP/push-server")"
ROWS+=("| Push throughput: one console, $(grouped "$pushed") ops (20% critical, 80% positions) to \`outpost-server serve\` over HTTPS (device certificate + session token), batches of 1,000 | **$(grouped "$rate") ops/s** ($t s until the outbox is empty; console peak RSS $(mib "$(jq .vm_hwm_kib <<<"$r")") MiB, server $(mib "$srv_hwm") MiB; CPU time console $(jq .cpu_s <<<"$r") s, server $srv_cpu s (push and pull back); converged: $conv) | \`bench/sync.sh\` (\`PUSH_OPS=$PUSH_OPS\`) |")

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
CONSOLE_PID=$!
sleep "$OFFLINE_S"   # the console's engine runs, fails, backs off: no server yet
t_launch="$(now_ms)"
start_server "$TMP/s5-server" "$port"
t_listen="$(now_ms)"
echo "   server listening $(secs "$t_launch" "$t_listen") s after launch" >&2
wait "$CONSOLE_PID"
CONSOLE_PID=""
srv_hwm="$(hwm_kib "$SERVER_PID")"
srv_cpu="$(cpu_s "$SERVER_PID")"
stop_server
r="$(cat "$TMP/s5.json")"
echo "   $r" >&2
t_crit="$(secs "$t_listen" "$(jq .t_critical_acked <<<"$r")")"
t_done="$(secs "$t_listen" "$(jq .t_caught_up <<<"$r")")"
t_first="$(secs "$t_listen" "$(jq .t_first_ack <<<"$r")")"
t_crit_first="$(secs "$(jq .t_first_ack <<<"$r")" "$(jq .t_critical_acked <<<"$r")")"
conv="$(same_digest "$TMP/s5-console" "$TMP/s5-server")"
total=$(( S5_POSITIONS + S5_CRITICAL + S5_NOTES ))
ROWS+=("| S5 backlog after reconnect ($(grouped "$S5_POSITIONS") positions, $(grouped "$S5_CRITICAL") critical, $S5_NOTES notes written offline over 8 h; engine already retrying when the server starts): all critical ops acked | **$t_crit s** after the server listens (first ack at $t_first s: the engine's retry/poke reconnect; critical done $t_crit_first s after the first ack) | \`bench/sync.sh\` (\`OFFLINE_S=$OFFLINE_S\`) |")
ROWS+=("| S5 backlog: fully caught up ($(grouped "$total") ops pushed, outbox empty, pulled to the server's newest gseq) | **$t_done s** after the server listens (converged: $conv) | \`bench/sync.sh\` |")
ROWS+=("| S5 backlog: peak memory (VmHWM) | console **$(mib "$(jq .vm_hwm_kib <<<"$r")") MiB**, server **$(mib "$srv_hwm") MiB** (CPU time console $(jq .cpu_s <<<"$r") s, server $srv_cpu s) | \`bench/sync.sh\` |")

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
srv_hwm="$(hwm_kib "$SERVER_PID")"
srv_cpu="$(cpu_s "$SERVER_PID")"
stop_server
r="$(cat "$TMP/pull.json")"
echo "   $r" >&2
pulled="$(jq .pulled <<<"$r")"
t="$(secs "$(jq .t_start <<<"$r")" "$(jq .t_caught_up <<<"$r")")"
rate="$(echo "$pulled / $t" | bc)"
conv="$(same_digest "$TMP/pull-console" "$PULL_SERVER")"
fill_rate="$(jq '.ops_per_s | floor' <<<"$fill")"
ROWS+=("| Pull throughput: a fresh console joins a server holding $(grouped "$gseq") ops ($FILL_ORIGINS origins, 97.6% positions), pages of 1,000 | **$(grouped "$rate") ops/s**, **$t s** in all (console peak RSS $(mib "$(jq .vm_hwm_kib <<<"$r")") MiB, server $(mib "$srv_hwm") MiB; CPU time console $(jq .cpu_s <<<"$r") s, server $srv_cpu s; converged: $conv) | \`bench/sync.sh\` (\`PULL_OPS=$PULL_OPS\`) |")
ROWS+=("| Server ingest without HTTP (filling the pull server: $FILL_ORIGINS in-memory consoles writing and pushing through \`SyncService\` at once; set-up, $(jq -r '.filled_at + ", load average " + .load_at_start' <<<"$fill")) | $(grouped "$fill_rate") ops/s | \`bench/sync.sh\` (\`FILL_ORIGINS=$FILL_ORIGINS\`) |")

# ---- table --------------------------------------------------------------------------------
echo
echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM; load average at start: $LOAD_BEFORE, at end: $(cut -d' ' -f1-3 /proc/loadavg)$([ "$SMOKE" = 1 ] && echo '; SMOKE counts')"
echo
echo "| what | figure | command |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
[ "$(printf '%s\n' "${ROWS[@]}" | grep -c 'converged: NO')" = 0 ] || { echo "a phase did not converge" >&2; exit 1; }
