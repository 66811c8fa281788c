"""The Neovim plugin (editors/nvim), driven in a real headless Neovim against the real server and the fake
Anthropic API. Each scenario is a Lua script in tests/nvim/scenarios/ run by tests/nvim/harness.lua.

Neovim comes from `./dev test` (SWITCHBOARD_NVIM); without it these tests are skipped with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import TEST_KEY
from switchboard.fakeapi import FakeAnthropic

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "editors" / "nvim"
HARNESS = Path(__file__).resolve().parent / "nvim"
DEFAULT_NVIM = Path.home() / ".cache" / "switchboard-nvim" / "bin" / "nvim"


def nvim_binary() -> str:
    configured = os.environ.get("SWITCHBOARD_NVIM")
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(f"SWITCHBOARD_NVIM={configured} is not an executable Neovim")
        return configured
    if os.access(DEFAULT_NVIM, os.X_OK):
        return str(DEFAULT_NVIM)
    pytest.skip("no Neovim: run ./dev test (it installs one) or set SWITCHBOARD_NVIM")


def path_without_switchboard() -> str:
    """PATH minus folders holding a `switchboard` executable: the plugin must find the checkout's .venv."""
    keep = [
        p
        for p in os.environ.get("PATH", "").split(os.pathsep)
        if p and not (Path(p) / "switchboard").exists()
    ]
    return os.pathsep.join(keep)


def run_scenario(
    tmp_path: Path,
    name: str,
    fake_api: FakeAnthropic | None,
    *,
    opts: dict[str, Any] | None = None,
    env: dict[str, str | None] | None = None,
    timeout: float = 90,
) -> dict[str, Any]:
    nvim = nvim_binary()
    home = tmp_path / "xdg"
    for sub in ("config", "data", "state", "cache"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    pack = home / "data" / "nvim" / "site" / "pack" / "switchboard" / "start"
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "switchboard").symlink_to(PLUGIN, target_is_directory=True)
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True, exist_ok=True)
    (project / "main.py").write_text(
        "import sqlite3\n\n\ndef connect(path):\n    return sqlite3.connect(path)\n\n\n"
        "print(connect(':memory:'))\n",
        encoding="utf-8",
    )
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    result_file = tmp_path / "result.json"
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_", "NVIM", "XDG_"))
        and k not in ("VIMINIT", "MYVIMRC")
    }
    full_env.update(
        PATH=path_without_switchboard(),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
        SWITCHBOARD_HOME=str(state),
        SWITCHBOARD_CONFIG_DIR=str(state / "config"),
        SWITCHBOARD_MAX_RETRIES="0",
        SWITCHBOARD_REQUEST_TIMEOUT="5",
        ANTHROPIC_API_KEY=TEST_KEY,
        SWITCHBOARD_TEST_SCENARIO=name,
        SWITCHBOARD_TEST_RESULT=str(result_file),
        SWITCHBOARD_TEST_OPTS=json.dumps(opts or {}),
        PYTHONUNBUFFERED="1",
    )
    if fake_api is not None:
        full_env["ANTHROPIC_BASE_URL"] = fake_api.base_url
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    proc = subprocess.run(
        [nvim, "--headless", "-i", "NONE", "-u", str(HARNESS / "init.lua")],
        cwd=project,
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result_file.exists(), (
        f"Neovim wrote no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    result: dict[str, Any] = json.loads(result_file.read_text())
    output = proc.stdout + proc.stderr
    report = json.dumps(result, indent=1, ensure_ascii=False) + "\n" + output
    assert result["ok"], report
    assert "E5108" not in output and "stack traceback" not in output, report
    return result


def test_cli_prints_its_version_for_health_checks() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "switchboard", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().startswith("switchboard 0.")


def test_chat_streams_the_answer_with_model_reason_and_credits(
    tmp_path: Path, fake_api: FakeAnthropic
) -> None:
    run_scenario(tmp_path, "chat_streams", fake_api)
