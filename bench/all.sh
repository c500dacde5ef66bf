#!/usr/bin/env bash
# Runs every benchmark once and writes BENCHMARKS.md (issue 7).
#
#   bench/all.sh                    # build everything, run all benchmarks, write BENCHMARKS.md
#   bench/all.sh --only sync,ingest # rerun some; BENCHMARKS.md keeps the others' last sections
#   bench/all.sh --smoke            # every benchmark's --smoke (tiny counts, debug builds);
#                                   # writes a temp file, never BENCHMARKS.md or bench/results
#   bench/all.sh --assemble         # run nothing: rewrite BENCHMARKS.md from bench/results
#   bench/all.sh --list             # the benchmarks, their scripts, in order
#
# Options: --out FILE (instead of BENCHMARKS.md, or the temp file of --smoke), --no-build
# (skip the build pass), -v (stream each benchmark's output instead of only logging it).
# Environment: BENCH_TIMEOUT_S (per benchmark; default 5400, 1800 with --smoke);
# BENCH_RESULTS (instead of bench/results, e.g. to try all.sh on a copy); every
# benchmark's own knobs pass through (see bench/README.md; names repeat across scripts, so
# use them with --only), e.g. RUNS=7 bench/all.sh --only desktop.
#
# How it works:
#   1. build pass: each selected script runs with --build-only (bench/lib.sh: it exits at
#      bench_built, after its cargo/npm builds), so no build runs between measurements;
#   2. each benchmark runs once, in the order below, with BENCH_OUT set to a fresh directory;
#      its output goes to target/bench/logs/NAME.log; a progress line per benchmark on stderr;
#      a failing benchmark is reported and the run goes on;
#   3. the section (NAME.md) and target rows (NAME.targets.tsv) each successful benchmark wrote
#      are kept in bench/results/ (checked in), with NAME.run (when, commit, wall time); a
#      failed benchmark keeps its previous files and gets NAME.failed;
#   4. BENCHMARKS.md is assembled from bench/results: a header (date, machine, commit, wall
#      time, how to reproduce), the runs table, the targets table (every NAME.targets.tsv), then
#      each benchmark's section followed by its methodology from bench/notes/NAME.md.
# Exits non-zero when any benchmark failed (after writing BENCHMARKS.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh" # for bench_machine and the helpers; all.sh calls no bench_init

# name:script, in the order of BENCHMARKS.md
BENCHES=(pack:pack.sh desktop:desktop.sh map:map.sh peers:peers.sh latency:latency.sh
  sync:sync.sh ingest:ingest.sh routing:routing.sh security:security.sh)

SMOKE=0 ONLY="" OUT="" ASSEMBLE=0 BUILD=1 VERBOSE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --only) ONLY="${2:?--only needs a comma-separated list of benchmarks}"; shift ;;
    --only=*)
      ONLY="${1#--only=}"
      [ -n "$ONLY" ] || { echo "bench/all.sh: --only= needs a comma-separated list of benchmarks" >&2; exit 2; }
      ;;
    --out) OUT="${2:?--out needs a file}"; shift ;;
    --out=*) OUT="${1#--out=}" ;;
    --assemble) ASSEMBLE=1 ;;
    --no-build) BUILD=0 ;;
    -v | --verbose) VERBOSE=1 ;;
    --list) for b in "${BENCHES[@]}"; do echo "${b%%:*} bench/${b#*:}"; done; exit 0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/all.sh: unknown argument $1 (see bench/all.sh --help)" >&2; exit 2 ;;
  esac
  shift
done

script_of() {
  local b
  for b in "${BENCHES[@]}"; do [ "${b%%:*}" = "$1" ] && { echo "${b#*:}"; return 0; }; done
  return 1
}
SELECTED=()
if [ -n "$ONLY" ]; then
  IFS=',' read -ra WANT <<<"$ONLY"
  for b in "${BENCHES[@]}"; do
    for w in "${WANT[@]}"; do [ "$w" = "${b%%:*}" ] && SELECTED+=("${b%%:*}"); done
  done
  for w in "${WANT[@]}"; do
    script_of "$w" >/dev/null || {
      echo "bench/all.sh: no benchmark \"$w\"; the benchmarks: $(printf '%s ' "${BENCHES[@]%%:*}")" >&2
      exit 2
    }
  done
else
  for b in "${BENCHES[@]}"; do SELECTED+=("${b%%:*}"); done
fi

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "$SMOKE" = 1 ]; then
  RESULTS="$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench-all.XXXXXX")"
  OUT="${OUT:-$RESULTS/BENCHMARKS.md}"
  LOGS="$RESULTS/logs"
  MODE=(--smoke)
  RUN_LIMIT_S="${BENCH_TIMEOUT_S:-1800}"
else
  RESULTS="${BENCH_RESULTS:-$ROOT/bench/results}"
  OUT="${OUT:-$ROOT/BENCHMARKS.md}"
  LOGS="$TARGET/bench/logs"
  MODE=()
  RUN_LIMIT_S="${BENCH_TIMEOUT_S:-5400}"
fi
mkdir -p "$RESULTS" "$LOGS"

# dur SECONDS -> 2m10s
dur() {
  local s="$1"
  if [ "$s" -ge 3600 ]; then printf '%dh%02dm%02ds' $((s / 3600)) $((s % 3600 / 60)) $((s % 60))
  elif [ "$s" -ge 60 ]; then printf '%dm%02ds' $((s / 60)) $((s % 60))
  else printf '%ds' "$s"
  fi
}
say() { printf '%s\n' "$*" >&2; }
# run_logged LOG CMD...: runs CMD with its stdout and stderr in LOG (and on stderr with -v),
# under the per-benchmark timeout.
run_logged() {
  local log="$1"
  shift
  # In the background + wait, so an interrupt (Ctrl-C, TERM) reaches this shell at once: the
  # trap below stops the benchmark (timeout passes TERM on; the script's own trap cleans up)
  # and all.sh ends without writing results or BENCHMARKS.md.
  if [ "$VERBOSE" = 1 ]; then
    timeout -k 30 "$RUN_LIMIT_S" "$@" > >(tee -a "$log" >&2) 2>&1 &
  else
    timeout -k 30 "$RUN_LIMIT_S" "$@" >>"$log" 2>&1 &
  fi
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=""
  return "$rc"
}
CHILD=""
interrupted() {
  say ""
  say "bench/all.sh: interrupted; stopping $([ -n "$CHILD" ] && echo "the running benchmark" || echo "")"
  if [ -n "$CHILD" ]; then
    kill -TERM "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  say "bench/all.sh: nothing written to $(basename "$OUT") or the results (logs: ${LOGS#"$ROOT"/})"
  exit 130
}
trap interrupted INT TERM
# tail_log LOG: the first lines that look like errors, then the last lines (a backtrace can
# fill the tail).
tail_log() {
  local hits
  # Not the JSON result lines ("failed":0) nor the section's table rows, which also say "fail".
  hits="$(grep -v -E '^[[:space:]]*[{|]' "$1" | grep -i -m 5 -E 'panicked|error|fail|invalid|lost|refused|no sample|missed' || true)"
  if [ -n "$hits" ]; then
    echo "      first error lines:"
    cut -c1-240 <<<"$hits" | sed 's/^/        /'
  fi >&2
  echo "      last lines:" >&2
  { grep -v -E '^[[:space:]]*[{|]' "$1" || true; } | tail -n 10 | cut -c1-240 | sed 's/^/        /' >&2
}

FAILED=()
T_ALL=$SECONDS
N=${#SELECTED[@]}
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
COMMIT="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY=""
[ -n "$(cd "$ROOT" && git status --porcelain --untracked-files=no 2>/dev/null)" ] && DIRTY=" (with uncommitted changes)"
STARTED="$(date -u '+%Y-%m-%d %H:%M UTC')"

if [ "$ASSEMBLE" = 0 ]; then
  say "bench/all.sh$([ "$SMOKE" = 1 ] && echo ' --smoke'): $N benchmark(s): ${SELECTED[*]}; commit $COMMIT$DIRTY; load average $LOAD0; logs in $LOGS"
  if [ "$SMOKE" = 0 ] && awk -v l="${LOAD0%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
    say "warning: load average $LOAD0 on $(nproc) cores: other work is running; the figures will be indicative"
  fi

  # ---- 1. build pass -------------------------------------------------------------------------
  declare -A BUILD_FAILED=()
  T_BUILD=$SECONDS
  if [ "$BUILD" = 1 ]; then
    i=0
    for name in "${SELECTED[@]}"; do
      i=$((i + 1))
      script="$ROOT/bench/$(script_of "$name")"
      [ -f "$script" ] || continue
      if ! grep -q 'bench_built' "$script"; then
        say "[build $i/$N] $name … builds as it runs (no bench_built in ${script#"$ROOT"/})"
        continue
      fi
      log="$LOGS/$name.build.log"
      : >"$log"
      t0=$SECONDS
      if run_logged "$log" bash "$script" "${MODE[@]}" --build-only; then
        say "[build $i/$N] $name … built in $(dur $((SECONDS - t0)))"
      else
        rc=$?
        say "[build $i/$N] $name … BUILD FAILED (exit $rc) after $(dur $((SECONDS - t0))); log ${log#"$ROOT"/}:"
        tail_log "$log"
        BUILD_FAILED[$name]=1
      fi
    done
  fi
  T_BUILD=$((SECONDS - T_BUILD))

  # ---- 2. the runs ---------------------------------------------------------------------------
  # fail WHY: benchmark $name (number $i) failed; its last good section stays.
  fail() {
    say "[$i/$N] $name … FAILED: $1"
    FAILED+=("$name")
    date -u '+%Y-%m-%d %H:%M UTC' >"$RESULTS/$name.failed"
    echo "$1" >>"$RESULTS/$name.failed"
  }
  T_RUNS=$SECONDS
  i=0
  for name in "${SELECTED[@]}"; do
    i=$((i + 1))
    rel="bench/$(script_of "$name")"
    script="$ROOT/$rel"
    log="$LOGS/$name.log"
    : >"$log"
    if [ ! -f "$script" ]; then
      fail "$rel does not exist"
      continue
    fi
    if [ -n "${BUILD_FAILED[$name]:-}" ]; then
      fail "its build failed (log ${LOGS#"$ROOT"/}/$name.build.log)"
      continue
    fi
    out_dir="$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench-out-$name.XXXXXX")"
    say "[$i/$N] $name … running $rel${MODE[*]:+ ${MODE[*]}} (log ${log#"$ROOT"/})"
    t0=$SECONDS
    when="$(date -u '+%Y-%m-%d %H:%M UTC')"
    if BENCH_OUT="$out_dir" run_logged "$log" bash "$script" "${MODE[@]}"; then rc=0; else rc=$?; fi
    took=$((SECONDS - t0))
    shopt -s nullglob
    sections=("$out_dir"/*.md)
    targets=("$out_dir"/*.targets.tsv)
    shopt -u nullglob
    if [ "$rc" != 0 ]; then
      fail "exit $rc$([ "$rc" = 124 ] && echo " (timed out after $(dur "$RUN_LIMIT_S"))") after $(dur "$took"); log ${log#"$ROOT"/}"
      tail_log "$log"
    elif [ "${#sections[@]}" != 1 ]; then
      fail "it wrote ${#sections[@]} sections to BENCH_OUT, not one (does it call bench_section?)"
    else
      cp "${sections[0]}" "$RESULTS/$name.md"
      if [ "${#targets[@]}" -ge 1 ]; then cp "${targets[0]}" "$RESULTS/$name.targets.tsv"; else : >"$RESULTS/$name.targets.tsv"; fi
      printf '%s\t%s\t%s\t%s\n' "$when" "$took" "$COMMIT$DIRTY" "$rel${MODE[*]:+ ${MODE[*]}}" >"$RESULTS/$name.run"
      rm -f "$RESULTS/$name.failed"
      gaps="$(awk -F'\t' '$4 == "gap"' "$RESULTS/$name.targets.tsv" | wc -l)"
      say "[$i/$N] $name … done in $(dur "$took")$([ "$SMOKE" = 0 ] && [ "$gaps" -gt 0 ] && echo " ($gaps target(s) missed)")"
    fi
    rm -rf "$out_dir"
  done
  T_RUNS=$((SECONDS - T_RUNS))
  if [ "$N" = "${#BENCHES[@]}" ]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$STARTED" "$((SECONDS - T_ALL))" "$T_BUILD" "$COMMIT$DIRTY" \
      "$(bench_machine)" "${#FAILED[@]}" >"$RESULTS/all.run"
  fi
fi

# ---- 3. BENCHMARKS.md ----------------------------------------------------------------------
# cell TEXT: a table cell (no pipes or newlines)
cell() { tr '\n' ' ' <<<"$1" | sed 's/|/\\|/g; s/ *$//'; }
# tsv FILE: FILE with its tabs turned into \x1f, so `IFS=$'\x1f' read` keeps empty fields
# (a tab in IFS is whitespace: runs of tabs would collapse into one separator).
tsv() { tr '\t' '\037' <"$1"; }
assemble() {
  local name rel f when took build commit cmd full nfail
  echo "# Benchmarks"
  echo
  echo "Generated by \`bench/all.sh$([ "$SMOKE" = 1 ] && echo " --smoke")\` from \`${RESULTS#"$ROOT"/}/\` (the last section of each benchmark) and \`bench/notes/\` (how each is measured); do not edit by hand. Every figure was measured by the run named in its section; performance targets live here, never in timed tests."
  echo
  if [ "$SMOKE" = 1 ]; then
    echo "**Smoke run: tiny counts on debug builds. These figures are not measurements.**"
    echo
  fi
  if [ -f "$RESULTS/all.run" ]; then
    IFS=$'\037' read -r when took build commit full nfail < <(tsv "$RESULTS/all.run")
    echo "$([ "$SMOKE" = 1 ] && echo "This smoke run" || echo "Last full run"): $when, commit $commit, $(dur "$took") in all (of which the build pass $(dur "$build")); $nfail benchmark(s) failed; machine: $full."
  else
    echo "No full run of \`bench/all.sh\` yet; each section says when it was measured."
  fi
  echo
  echo "Reproduce: \`bench/all.sh\` (every benchmark, then this file), or \`bench/all.sh --only NAME,…\` to rerun some;"
  echo "one command per benchmark below and in [bench/README.md](bench/README.md) (knobs, run times)."
  echo
  echo "| benchmark | command | measured | took | last run |"
  echo "|---|---|---|---|---|"
  for b in "${BENCHES[@]}"; do
    name="${b%%:*}" rel="bench/${b#*:}"
    if [ -f "$RESULTS/$name.run" ]; then
      IFS=$'\037' read -r when took commit cmd < <(tsv "$RESULTS/$name.run")
      f="ok"
      [ -f "$RESULTS/$name.failed" ] && f="**failed** $(head -1 "$RESULTS/$name.failed"): $(cell "$(sed 1d "$RESULTS/$name.failed")")"
      echo "| [$name](#$name) | \`$cmd\` | $when, $commit | $(dur "$took") | $f |"
    elif [ -f "$RESULTS/$name.failed" ]; then
      echo "| $name | \`$rel\` | never | | **failed** $(head -1 "$RESULTS/$name.failed"): $(cell "$(sed 1d "$RESULTS/$name.failed")") |"
    else
      echo "| $name | \`$rel\` | never | | not run |"
    fi
  done
  echo
  echo "## Targets"
  echo
  if ! grep -qs . "$RESULTS"/*.targets.tsv; then
    echo "_No target measured yet._"
  else
    echo "| benchmark | what | target | figure | result | why (when a gap) |"
    echo "|---|---|---|---|---|---|"
  fi
  for b in "${BENCHES[@]}"; do
    name="${b%%:*}"
    [ -s "$RESULTS/$name.targets.tsv" ] || continue
    while IFS=$'\037' read -r what target figure result why; do
      [ -n "$what" ] || continue
      [ "$result" = gap ] && result="**gap**"
      echo "| $name | $(cell "$what") | $(cell "$target") | $(cell "$figure") | $result | $(cell "${why:-}") |"
    done < <(tsv "$RESULTS/$name.targets.tsv")
  done
  for b in "${BENCHES[@]}"; do
    name="${b%%:*}" rel="bench/${b#*:}"
    echo
    echo "<a id=\"$name\"></a>"
    echo
    if [ -f "$RESULTS/$name.md" ]; then
      cat "$RESULTS/$name.md"
    else
      echo "## $name"
      echo
      echo "_Not measured yet: \`$rel\`._"
    fi
    if [ -f "$ROOT/bench/notes/$name.md" ]; then
      echo
      echo "### How it is measured"
      echo
      # Its headings go under this one (outside code blocks).
      awk '/^```/ { code = !code } !code && /^#+ / { sub(/^#+ /, "#### ") } { print }' \
        "$ROOT/bench/notes/$name.md"
    fi
  done
}
TMP_OUT="$(mktemp "${TMPDIR:-/tmp}/outpost-BENCHMARKS.XXXXXX")"
assemble >"$TMP_OUT"
mv "$TMP_OUT" "$OUT"
chmod 644 "$OUT"

if [ "$ASSEMBLE" = 1 ]; then
  say "wrote ${OUT#"$ROOT"/} from ${RESULTS#"$ROOT"/}"
  exit 0
fi
say "bench/all.sh: ${#SELECTED[@]} benchmark(s) in $(dur $((SECONDS - T_ALL))) (build pass $(dur "$T_BUILD"), runs $(dur "$T_RUNS")); wrote ${OUT#"$ROOT"/}$([ "$SMOKE" = 0 ] && echo " and ${RESULTS#"$ROOT"/}/")"
if [ "${#FAILED[@]}" -gt 0 ]; then
  say "bench/all.sh: FAILED: ${FAILED[*]} (their sections keep the last good run; logs in $LOGS)"
  exit 1
fi
