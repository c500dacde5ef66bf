#!/usr/bin/env bash
# Cold start to interactive map, and idle memory of the app + WebKit processes.
#
#   bench/startup.sh          # 5 launches on a fresh data dir each, release build
#   RUNS=10 IDLE_S=30 bench/startup.sh
#
# Each launch goes through tauri-driver + WebKitWebDriver (as the end-to-end test) under
# Xvfb; "interactive" is the moment window.__outpost.ready turns true (style loaded, tiles
# and units drawn). After the last launch the app idles IDLE_S seconds (no demo replay:
# `--pack` on the demo pack) and the RSS and PSS of the app and its WebKit processes are read
# from /proc. Needs the same tools as scripts/test (it installs nothing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

if [ -z "${OUTPOST_BIN:-}" ]; then
  (cd "$ROOT/ui" && npm run build >/dev/null)
  (cd "$ROOT" && cargo build --release -q -p outpost --features custom-protocol)
  export OUTPOST_BIN="$ROOT/target/release/outpost"
fi
[ -d "$ROOT/tests/e2e/node_modules" ] || (cd "$ROOT/tests/e2e" && npm ci --no-audit --no-fund)
exec dbus-run-session -- xvfb-run -a -s '-screen 0 1600x1000x24 -noreset' node "$ROOT/bench/startup.mjs"
