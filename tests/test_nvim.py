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
from switchboard.fakeapi.faults import Fault

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


def test_gm_switches_the_model_and_the_next_answer_keeps_the_history(
    tmp_path: Path, fake_api: FakeAnthropic
) -> None:
    run_scenario(tmp_path, "model_switch", fake_api)


def test_locked_and_unknown_models_get_the_servers_message_and_use_auto(
    tmp_path: Path, fake_api: FakeAnthropic
) -> None:
    run_scenario(tmp_path, "locked_and_unknown_model", fake_api)


def test_ctrl_c_mid_stream_keeps_the_partial_answer(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    run_scenario(tmp_path, "cancel", fake_api)


def test_visual_selection_is_attached_with_file_and_lines(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    run_scenario(tmp_path, "selection_context", fake_api)


def test_history_reopens_a_conversation_and_new_starts_one(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    run_scenario(tmp_path, "history_and_new", fake_api)


def test_retry_with_a_stronger_model_and_yank_code(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    run_scenario(tmp_path, "retry_and_yank", fake_api)


def test_no_api_key_is_shown_and_the_prompt_kept(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    run_scenario(tmp_path, "no_key", fake_api, env={"ANTHROPIC_API_KEY": None})


def test_exhausted_credits_turn_the_statusline_and_offer_usage(
    tmp_path: Path, fake_api: FakeAnthropic
) -> None:
    run_scenario(tmp_path, "credits_exhausted", fake_api, env={"SWITCHBOARD_MAX_OUTPUT_TOKENS": "64000"})


def test_upstream_failure_offers_retry(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    fake_api.add_fault(Fault("error_event", after_deltas=2))
    run_scenario(tmp_path, "upstream_retry", fake_api)


def test_usage_float_shows_plan_credits_models_and_days(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    run_scenario(tmp_path, "usage_float", fake_api)


def test_float_and_horizontal_layouts(tmp_path: Path) -> None:
    run_scenario(tmp_path, "layouts", None, opts={"chat": {"layout": "float", "width": 60}})


def test_checkhealth_reports_server_version_key_and_plan(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    run_scenario(tmp_path, "checkhealth", fake_api)


def test_older_neovim_gets_a_clear_message(tmp_path: Path) -> None:
    run_scenario(tmp_path, "version_gate", None)


def test_a_real_old_neovim_gets_the_message_and_no_lua_error(tmp_path: Path) -> None:
    old = os.environ.get("SWITCHBOARD_OLD_NVIM")
    if not old:
        pytest.skip("no old Neovim: ./dev test installs Debian's (0.7) and sets SWITCHBOARD_OLD_NVIM")
    pack = tmp_path / "data" / "nvim" / "site" / "pack" / "switchboard" / "start"
    pack.mkdir(parents=True)
    (pack / "switchboard").symlink_to(PLUGIN, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NVIM", "XDG_"))}
    env.update({f"XDG_{d.upper()}_HOME": str(tmp_path / d) for d in ("config", "data", "state", "cache")})
    setup = "+lua io.stdout:write(vim.version().minor, ' setup=', tostring(require('switchboard').setup({})))"
    command = "+lua io.stdout:write(' command=', vim.fn.exists(':Switchboard'))"
    proc = subprocess.run(
        [old, "--headless", "-i", "NONE", "-u", "NORC", setup, command, "+qa!"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = proc.stdout + proc.stderr
    minor = int(output.split()[0]) if output.split()[0].isdigit() else -1
    assert 0 <= minor < 10, f"SWITCHBOARD_OLD_NVIM={old} is not a Neovim older than 0.10:\n{output}"
    assert f"switchboard.nvim needs Neovim 0.10 or newer; this is Neovim 0.{minor}." in output, output
    assert "setup=false command=0" in output, output
    assert "E5108" not in output and "Error" not in output, output


def test_one_server_per_project_root_found_on_path_or_venv(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    run_scenario(tmp_path, "servers_per_root", fake_api)


def test_help_file_has_valid_tags_and_links(tmp_path: Path) -> None:
    run_scenario(tmp_path, "help_tags", None)


def test_estimate_while_typing_and_thinking(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    run_scenario(tmp_path, "estimate_and_thinking", fake_api)


def test_busy_model_offers_retry_and_try_the_suggested_model(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    fake_api.add_fault(Fault("status", status=529, model="claude-sonnet-4-5-20250929", count=None))
    run_scenario(tmp_path, "busy_model", fake_api)


def test_deleted_conversation_and_too_large_context(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    run_scenario(tmp_path, "gone_and_too_large", fake_api)


def test_server_dying_mid_answer_is_reported_and_restarted(tmp_path: Path, fake_api: FakeAnthropic) -> None:
    run_scenario(tmp_path, "server_dies", fake_api)
