# Shared preamble of the bench/*.sh scripts. Source it, then call `bench_init NAME "$@"`:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   bench_init ingest "$@"          # sets SMOKE, PROFILE, PFLAG, TARGET, TMP, LOAD_BEFORE
#   bench_build -p outpost-server --bin outpost-server --example ingest_bench
#   bench_built                     # after the last build step: `--build-only` stops here
#   bench_track_pid "$SERVER_PID"   # killed (with its process group, if it leads one) on exit
#   ...
#   bench_row "what" "figure" "target" "command"      # one row of the section's table
#   bench_target "what" "target" "figure" met|gap "why, when a gap"
#   bench_section "Title" "intro paragraph (markdown)"   # prints the section (see below)
#
# Output contract (bench/all.sh relies on it):
# - progress goes to stderr; the section goes to stdout, and, when BENCH_OUT=DIR is set, also
#   to DIR/NAME.md; target rows go to DIR/NAME.targets.tsv (tab-separated: what, target,
#   figure, met|gap, why);
# - a script exits non-zero when its run is invalid (lost data, a check failed); a missed
#   target is not a failure (it is reported as a gap).
# - `--smoke` runs tiny counts on the debug build; the test suite runs it; its figures are not
#   measurements and are never written to BENCHMARKS.md.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

BENCH_PIDS=()
BENCH_ROWS=()
BENCH_TARGETS=()

# bench_init NAME [ARGS...]: reads --smoke and --build-only; makes the temp dir and the
# cleanup trap; picks the build profile (release, or debug with --smoke; BENCH_PROFILE
# overrides).
bench_init() {
  BENCH_NAME="$1"
  shift
  SMOKE=0
  BUILD_ONLY=0
  for a in "$@"; do
    case "$a" in
      --smoke) SMOKE=1 ;;
      --build-only) BUILD_ONLY=1 ;;
      -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
      *)
        echo "$0: unknown argument \"$a\" (the arguments: --smoke, --build-only, --help; knobs are environment variables)" >&2
        exit 2
        ;;
    esac
  done
  LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
  BENCH_STARTED="$(date -u '+%Y-%m-%d %H:%M UTC')"
  TMP="$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench-$BENCH_NAME.XXXXXX")"
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # Whatever the script's tools make in the temp folder (node's os.tmpdir(), mktemp) lands
  # inside $TMP and goes with it, also when the run is interrupted.
  export TMPDIR="$TMP"
  PROFILE="${BENCH_PROFILE:-$([ "$SMOKE" = 1 ] && echo debug || echo release)}"
  PFLAG=()
  [ "$PROFILE" = release ] && PFLAG=(--release)
  TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
}

bench_track_pid() { BENCH_PIDS+=("$1"); }

# bench_int NAME MIN: fails unless the variable NAME holds a whole number >= MIN (a knob).
bench_int() {
  local v="${!1:-}"
  if ! [[ "$v" =~ ^[0-9]+$ ]] || [ "$v" -lt "$2" ]; then
    echo "$0: $1=\"$v\" is not a whole number >= $2" >&2
    exit 2
  fi
}

# bench_int_list NAME MIN: the same for a space- or comma-separated list of whole numbers.
bench_int_list() {
  local v="${!1:-}" x
  [ -n "$v" ] || { echo "$0: $1 is empty" >&2; exit 2; }
  for x in ${v//,/ }; do
    if ! [[ "$x" =~ ^[0-9]+$ ]] || [ "$x" -lt "$2" ]; then
      echo "$0: $1=\"$v\": \"$x\" is not a whole number >= $2" >&2
      exit 2
    fi
  done
}

# bench_need_ui: ui/node_modules must be there (map.sh and desktop.sh build or drive the UI).
bench_need_ui() {
  if [ ! -d "$ROOT/ui/node_modules" ]; then
    echo "installing ui/ packages (npm ci) ..." >&2
    (cd "$ROOT/ui" && npm ci --no-audit --no-fund >&2)
  fi
}

bench_cleanup() {
  local pid
  # A second INT/TERM (timeout signals the script and then its whole group) must not cut the
  # clean-up short before the temp folder is gone.
  trap '' INT TERM
  for pid in "${BENCH_PIDS[@]}"; do
    # A process group leader (started with setsid) takes its children with it.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}

# bench_build CARGO_BUILD_ARGS...: `cargo build` in the chosen profile, quietly.
bench_build() {
  echo "building $PROFILE: $*" >&2
  (cd "$ROOT" && cargo build "${PFLAG[@]}" -q "$@")
}

# bench_built: call once after the script's last build step (cargo, npm). With --build-only
# (bench/all.sh builds every benchmark before it measures any) the script ends here.
bench_built() {
  if [ "$BUILD_ONLY" = 1 ]; then
    echo "$BENCH_NAME: built ($PROFILE)" >&2
    exit 0
  fi
}

now_ms() { date +%s%3N; }
# secs T0_MS T1_MS -> seconds with 2 decimals
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1000 }'; }
# grouped 1234567 -> 1,234,567
grouped() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
# cpu_s PID -> user + system CPU time in seconds (1 decimal)
cpu_s() {
  sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($12 + $13) / hz}'
}
# hwm_mib PID -> peak resident memory (VmHWM) in MiB
hwm_mib() { awk '/^VmHWM:/ {printf "%d", ($2 + 512) / 1024}' "/proc/$1/status"; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# One line naming this machine, for section headers.
bench_machine() {
  local cpu mem os
  cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  mem="$(awk '/^MemTotal:/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
  os="$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  echo "$(nproc) cores (${cpu:-unknown CPU}), $mem RAM, ${os:-Linux}"
}

# bench_row WHAT FIGURE TARGET COMMAND
bench_row() { BENCH_ROWS+=("| $1 | $2 | $3 | \`$4\` |"); }

# bench_target WHAT TARGET FIGURE met|gap [WHY]
bench_target() { BENCH_TARGETS+=("$1	$2	$3	$4	${5:-}"); }

# bench_section TITLE [INTRO]: prints "## TITLE", when and where it was measured, INTRO, and
# the table of bench_row rows; copies it (and the targets) to BENCH_OUT when set.
bench_section() {
  local title="$1" intro="${2:-}" out
  out="$(
    echo "## $title"
    echo
    if [ "$SMOKE" = 1 ]; then
      echo "_Smoke run (tiny counts, $PROFILE build): these figures are not measurements._"
    else
      echo "Measured $BENCH_STARTED, $PROFILE build, commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown); $(bench_machine); load average at start $LOAD_BEFORE, at end $(cut -d' ' -f1-3 /proc/loadavg)."
    fi
    echo
    [ -n "$intro" ] && { echo "$intro"; echo; }
    echo "| what | figure | target | command |"
    echo "|---|---|---|---|"
    printf '%s\n' "${BENCH_ROWS[@]}"
  )"
  echo "$out"
  if [ -n "${BENCH_OUT:-}" ]; then
    mkdir -p "$BENCH_OUT"
    echo "$out" >"$BENCH_OUT/$BENCH_NAME.md"
    : >"$BENCH_OUT/$BENCH_NAME.targets.tsv"
    [ "${#BENCH_TARGETS[@]}" -gt 0 ] && printf '%s\n' "${BENCH_TARGETS[@]}" >"$BENCH_OUT/$BENCH_NAME.targets.tsv"
  fi
  return 0
}
