#!/usr/bin/env bash
# Security benchmarks of issue 6, release build, everything on 127.0.0.1:
#
#   1. argon2id password verification with the production parameters (m = 19,456 KiB, t = 2,
#      p = 1): p50/p95 over ARGON2_N verifications;
#   2. a full sign-in round trip over TLS: a fresh HTTPS connection (agency CA pinned, device
#      certificate) posting /v1/login with password + TOTP to an in-process server with the
#      production security settings: p50/p95 over LOGIN_N sign-ins;
#   3. audit append throughput into a real audit.db: AUDIT_SINGLE records one transaction
#      each, and AUDIT_BATCHES batches of 100 records;
#   4. `outpost-server audit verify` on the batched audit.db (AUDIT_BATCHES x 100 records);
#   5. sync push throughput of one console (the op mix of bench/sync.sh: 20% critical, 80%
#      positions; PUSH_OPS ops) to `outpost-server serve` over TLS (device certificate +
#      session token, audit on) vs the in-process server without TLS or authentication
#      (`ServerConfig::plain_for_tests`, the sync tests' server).
#
#   bench/security.sh            # full counts
#   bench/security.sh --smoke    # tiny counts, debug build, < 60 s; checks only that every
#                                # sign-in succeeds, the chains verify and every push is acked
#   PUSH_OPS=50000 bench/security.sh
#
# The measuring tool is `security_bench` (crates/outpost-server/examples/security_bench.rs);
# the console is `sync_bench` (crates/outpost-sync/examples/sync_bench.rs, as in
# bench/sync.sh). Writes only to a temp directory. Prints progress to stderr and the section
# to stdout (and to BENCH_OUT, see bench/lib.sh); exits non-zero when a sign-in fails, a chain does not verify, or a push is
# not acked (or parked).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init security "$@"
if [ "$SMOKE" = 1 ]; then
  ARGON2_N="${ARGON2_N:-3}" LOGIN_N="${LOGIN_N:-3}"
  AUDIT_SINGLE="${AUDIT_SINGLE:-200}" AUDIT_BATCHES="${AUDIT_BATCHES:-20}"
  PUSH_OPS="${PUSH_OPS:-1000}" RUN_TIMEOUT_S="${RUN_TIMEOUT_S:-60}"
else
  ARGON2_N="${ARGON2_N:-20}" LOGIN_N="${LOGIN_N:-20}"
  AUDIT_SINGLE="${AUDIT_SINGLE:-2000}" AUDIT_BATCHES="${AUDIT_BATCHES:-1000}"
  PUSH_OPS="${PUSH_OPS:-20000}" RUN_TIMEOUT_S="${RUN_TIMEOUT_S:-900}"
fi

bench_build -p outpost-server --bin outpost-server --example security_bench
bench_build -p outpost-sync --example sync_bench
bench_built
SERVER="$TARGET/$PROFILE/outpost-server"
BENCH="$TARGET/$PROFILE/examples/security_bench"
SYNC_BENCH="$TARGET/$PROFILE/examples/sync_bench"
SERVER_PID=""

# start_server OUTFILE CMD...: starts a server, sets SERVER_PID and ADDR ("listening on ADDR").
start_server() {
  local out="$1"; shift
  RUST_LOG=warn "$@" >"$out" 2>"$out.err" &
  SERVER_PID=$!
  bench_track_pid "$SERVER_PID"
  for _ in $(seq 1 1000); do
    if grep -q '^listening on' "$out" 2>/dev/null; then
      ADDR="$(awk '/^listening on/ {print $3}' "$out")"
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$out.err" >&2; return 1; }
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

FAIL=0
# row WHAT FIGURE [KNOBS]: a table row whose command is "KNOBS bench/security.sh".
row() {
  local cmd="bench/security.sh"
  [ "$SMOKE" = 1 ] && cmd="bench/security.sh --smoke"
  bench_row "$1" "$2" "" "${3:+$3 }$cmd"
}

# ---- 1. argon2id ---------------------------------------------------------------------------
echo "== 1. argon2id verification, production parameters, $ARGON2_N times" >&2
r="$("$BENCH" argon2 --n "$ARGON2_N")" || FAIL=1
echo "   $r" >&2
row "argon2id password verification, production parameters ($(jq -r .params <<<"$r")), $ARGON2_N verifications" \
  "**p50 $(jq .p50_ms <<<"$r") ms, p95 $(jq .p95_ms <<<"$r") ms** (max $(jq .max_ms <<<"$r") ms; hashing once $(jq .hash_ms <<<"$r") ms)" "ARGON2_N=$ARGON2_N"

# ---- 2. sign-in over TLS -------------------------------------------------------------------
echo "== 2. sign-in round trip over TLS, $LOGIN_N times" >&2
r="$("$BENCH" login --n "$LOGIN_N")" || FAIL=1
echo "   $r" >&2
[ "$(jq .ok <<<"$r")" = "$LOGIN_N" ] || FAIL=1
row "Sign-in round trip over TLS: a fresh HTTPS connection (agency CA pinned, device certificate) posting \`/v1/login\` (password + TOTP; argon2id with the production parameters, session + grant written, audited), $LOGIN_N sign-ins" \
  "**p50 $(jq .p50_ms <<<"$r") ms, p95 $(jq .p95_ms <<<"$r") ms** (max $(jq .max_ms <<<"$r") ms; every sign-in answered a session)" "LOGIN_N=$LOGIN_N"

# ---- 3. audit append -----------------------------------------------------------------------
echo "== 3. audit append: $AUDIT_SINGLE single records, $AUDIT_BATCHES batches of 100" >&2
r="$("$BENCH" audit --dir "$TMP/audit" --single "$AUDIT_SINGLE" --batches "$AUDIT_BATCHES")" || FAIL=1
echo "   $r" >&2
[ "$(jq .intact <<<"$r")" = true ] || FAIL=1
row "Audit append into a real audit.db (hash chain, one SQLite transaction per append): single records" \
  "**$(grouped "$(jq .single_per_s <<<"$r")") records/s** ($(grouped "$AUDIT_SINGLE") records in $(jq -r '.single_s * 100 | floor / 100' <<<"$r") s)" "AUDIT_SINGLE=$AUDIT_SINGLE"
row "Audit append, batches of 100 records (one transaction per batch, as a push's per-op records)" \
  "**$(grouped "$(jq .batched_per_s <<<"$r")") records/s** ($(grouped "$(jq .batched <<<"$r")") records in $(jq -r '.batched_s * 100 | floor / 100' <<<"$r") s)" "AUDIT_BATCHES=$AUDIT_BATCHES"

# ---- 4. audit verify -----------------------------------------------------------------------
n=$(( AUDIT_BATCHES * 100 ))
echo "== 4. outpost-server audit verify, $n records" >&2
t0="$(now_ms)"
if out="$("$SERVER" audit verify --data "$TMP/audit/batched")"; then rc=0; else rc=$?; fi
t1="$(now_ms)"
echo "   exit $rc: $(head -1 <<<"$out")" >&2
grep -q "intact: $n records" <<<"$out" && [ "$rc" = 0 ] || { echo "audit verify: $out" >&2; FAIL=1; }
row "\`outpost-server audit verify\` of $(grouped "$n") records (the whole process: open, recompute every SHA-256, check the links)" \
  "**$(secs "$t0" "$t1") s** (exit $rc: \"$(head -1 <<<"$out")\")" "AUDIT_BATCHES=$AUDIT_BATCHES"

# ---- 5. push over TLS vs plain -------------------------------------------------------------
crit=$(( PUSH_OPS / 5 ))
declare -A RATE
for mode in tls plain; do
  echo "== 5. push, $mode: $PUSH_OPS ops ($crit critical, $(( PUSH_OPS - crit )) positions)" >&2
  "$SYNC_BENCH" gen --data "$TMP/$mode-console" --critical "$crit" \
    --positions $(( PUSH_OPS - crit )) --notes 0 >"$TMP/$mode-gen.json"
  if [ "$mode" = tls ]; then
    "$SERVER" cert init --data "$TMP/tls-server" --name 127.0.0.1 >/dev/null
    "$SYNC_BENCH" provision --server-data "$TMP/tls-server" --console "$TMP/tls-console" \
      --out "$TMP/tls-auth" >/dev/null
    start_server "$TMP/tls-server.out" "$SERVER" serve --data "$TMP/tls-server" --listen 127.0.0.1:0
    url="https://$ADDR" auth=(--auth "$TMP/tls-auth")
  else
    start_server "$TMP/plain-server.out" "$BENCH" plain-serve --data "$TMP/plain-server"
    url="http://$ADDR" auth=()
  fi
  # A console whose ops are parked never catches up: sync_bench gives up after the timeout.
  if ! "$SYNC_BENCH" run --data "$TMP/$mode-console" --server "$url" "${auth[@]}" \
    --timeout-s "$RUN_TIMEOUT_S" >"$TMP/$mode.json"; then
    echo "   the console did not catch up within $RUN_TIMEOUT_S s (ops parked or refused?)" >&2
    exit 1
  fi
  srv_cpu="$(cpu_s "$SERVER_PID")"
  stop_server
  r="$(cat "$TMP/$mode.json")"
  echo "   $r" >&2
  pushed="$(jq .pushed <<<"$r")"
  [ "$pushed" = "$PUSH_OPS" ] && [ "$(jq .parked <<<"$r")" = 0 ] || { echo "   not every push acked" >&2; FAIL=1; }
  t="$(secs "$(jq .t_start <<<"$r")" "$(jq .t_pushed <<<"$r")")"
  RATE[$mode]="$(echo "$pushed / $t" | bc)"
  if [ "$mode" = tls ]; then
    label="\`outpost-server serve\` over HTTPS (device certificate + session token per request; every critical op audited)"
  else
    label="the in-process server over plain HTTP, no authentication, no audit (\`ServerConfig::plain_for_tests\`)"
  fi
  row "Push throughput, one console, $(grouped "$pushed") ops (20% critical, 80% positions; bench/sync.sh's mix), batches of 1,000, to $label" \
    "**$(grouped "${RATE[$mode]}") ops/s** ($t s until the outbox is empty; acked $(grouped "$pushed"), parked $(jq .parked <<<"$r"); CPU time console $(jq .cpu_s <<<"$r") s, server $srv_cpu s)" "PUSH_OPS=$PUSH_OPS"
done
ratio="$(printf '%.2f' "$(echo "${RATE[tls]} / ${RATE[plain]}" | bc -l)")"

row "Push over TLS with authentication and audit ÷ the plain server (ops/s)" "**${ratio}×**" "PUSH_OPS=$PUSH_OPS"

bench_section "Security (issue 6)" \
  "Password hashing, sign-in over TLS, the audit trail, push over TLS; everything on 127.0.0.1."
[ "$FAIL" = 0 ] || { echo "a sign-in failed, an audit chain did not verify, or a push was not acked" >&2; exit 1; }
