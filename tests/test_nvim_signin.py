"""The Neovim plugin's sign-in to Switchboard Cloud, against the real server and a real gateway on a
throwaway PostgreSQL (tests/hosted_stack.py). The scenarios are Lua (tests/nvim/scenarios/signin_*.lua);
the device code is approved over HTTP on the gateway's /device page, as a user would in the browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hosted_stack import HostedStack, running_stack
from test_nvim import nvim_binary, run_scenario


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostedStack]:
    nvim_binary()  # skips early, before PostgreSQL starts, when there is no Neovim
    with running_stack(tmp_path_factory.mktemp("cloud")) as stack:
        yield stack


def test_signin_runs_the_device_flow_charges_at_the_gateway_and_signs_out(
    tmp_path: Path, cloud: HostedStack
) -> None:
    code_file = tmp_path / "user-code"
    approver = cloud.approve_when_written(code_file)
    used_before = cloud.usage()["usedCredits"]
    run_scenario(
        tmp_path,
        "signin_device",
        None,
        opts={"gateway_url": cloud.url},
        env={"SWITCHBOARD_TEST_CODE_FILE": str(code_file), "ANTHROPIC_API_KEY": None},
        timeout=120,
    )
    approver.join(1)
    # The statusline's last figure is the gateway's own: what PostgreSQL says is left.
    report = cloud.usage()
    assert report["usedCredits"] > used_before
    shown = float((tmp_path / "user-code.credits").read_text())
    assert shown == pytest.approx(report["remainingCredits"], abs=0.01)
    # Signing out revoked the session at the gateway: the refresh token Neovim was given is dead.
    refresh_token = (tmp_path / "user-code.token").read_text()
    meta = cloud.metadata()
    refused = cloud.http.post(
        meta["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "switchboard-nvim"},
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text


def test_q_in_the_code_float_cancels_the_signin(tmp_path: Path, cloud: HostedStack) -> None:
    run_scenario(tmp_path, "signin_cancel", None, opts={"gateway_url": cloud.url})


def test_a_stored_session_is_resumed_and_its_token_rotated(tmp_path: Path, cloud: HostedStack) -> None:
    token = cloud.refresh_token()
    run_scenario(
        tmp_path,
        "signin_resume",
        None,
        opts={"gateway_url": cloud.url, "refresh_token": token},
    )


def test_a_chat_sent_while_the_server_starts_waits_for_the_stored_session(
    tmp_path: Path, cloud: HostedStack
) -> None:
    run_scenario(
        tmp_path,
        "signin_resume_chat",
        None,
        opts={"gateway_url": cloud.url, "refresh_token": cloud.refresh_token()},
        env={"ANTHROPIC_API_KEY": None},
    )
