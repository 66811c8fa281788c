"""Run the mocha suite (client-ts/test/exthost) inside code-server's real Node extension host.

The equivalent of @vscode/test-electron's runTests for a browser workbench: the extension under development
and the tests module are passed in the workbench URL's `?payload=`; code-server must run with
`--vscode-option enable-smoke-test-driver` for a built workbench to honour them. The extension host's
console comes back through `window.codeAutomationLog`, its exit code through `window.codeAutomationExit`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.parse

from playwright.sync_api import sync_playwright

PORT = int(os.environ["CS_PORT"])
EXT = os.environ["EXT_DIR"]
TESTS = os.environ["TESTS_DIR"]
WS = os.environ["WS_DIR"]
TIMEOUT = float(os.environ.get("TEST_TIMEOUT", "240"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# extension-host chatter that is not test output
NOISE = ("Resolv", "Creating", "[", "Updating", "Ignoring fetching", "Started local extension host", "Loading development")


def fmt(args: list[object]) -> str:
    if not args:
        return ""
    if isinstance(args[0], str) and "%" in args[0]:
        rest = list(args[1:])
        out = re.sub(r"%[sdifoOc]", lambda m: str(rest.pop(0)) if rest else m.group(0), args[0])
        return " ".join([out, *(str(a) for a in rest)])
    return " ".join(str(a) for a in args)


def main() -> int:
    authority = f"127.0.0.1:{PORT}"
    payload = [
        ["extensionDevelopmentPath", f"vscode-remote://{authority}{EXT}"],
        ["extensionTestsPath", f"vscode-remote://{authority}{TESTS}"],
    ]
    url = f"http://{authority}/?folder={urllib.parse.quote(WS)}&payload={urllib.parse.quote(json.dumps(payload))}"
    result: dict[str, int] = {}

    def on_log(kind: str, args: list[object] | None = None) -> None:
        line = fmt(args or [])
        if kind == "info" and line.startswith(NOISE):
            return
        print(line, flush=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.expose_function("codeAutomationLog", on_log)
        page.expose_function("codeAutomationExit", lambda code, logs=None: result.setdefault("code", code))
        page.goto(url)
        started = time.time()
        while "code" not in result and time.time() - started < TIMEOUT:
            page.wait_for_timeout(200)
        if os.environ.get("SHOT"):
            page.screenshot(path=os.environ["SHOT"])
        browser.close()
    code = result.get("code")
    print("extension host exit code:", code if code is not None else f"TIMEOUT after {TIMEOUT:.0f}s", flush=True)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
