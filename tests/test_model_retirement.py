"""A model Anthropic retires (Claude Opus 4.5 on 2027-01-22): the picker and a selection say when, and from
that day Anthropic's "not found" for it is explained as the retirement, not as an unknown failure.

The real server runs on a calendar of the test's choosing (tests/dated_server.py), on a Pro plan, against
the fake Anthropic API. Nothing here depends on the day the suite runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import Session, SessionFactory
from switchboard.fakeapi import FakeAnthropic, Fault
from test_plans_server import Issuer, trusted_env

OPUS = "claude-opus-4.5"
OPUS_ID = "claude-opus-4-5-20251101"
DATED_SERVER = str(Path(__file__).with_name("dated_server.py"))


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer(tmp_path / "issuer")


async def pro_server_on(
    day: str, start_server: SessionFactory, fake: FakeAnthropic, issuer: Issuer, **env: str
) -> Session:
    """A Pro user's server whose calendar says `day`."""
    return await start_server(
        fake,
        init_options={"entitlement": issuer.token("pro")},
        command=[DATED_SERVER, day],
        **trusted_env(issuer),
        **env,
    )


async def listed(session: Session) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in (await session.request("switchboard/models", {}))["models"]}


async def test_before_the_day_the_picker_and_the_selection_say_when_opus_retires(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str, issuer: Issuer
) -> None:
    session = await pro_server_on("2027-01-21", start_server, fake_api, issuer)
    models = await listed(session)
    assert models[OPUS]["retiresOn"] == "2027-01-22" and models[OPUS]["available"] is True
    assert all(m["retiresOn"] is None for name, m in models.items() if name != OPUS)

    selected = await session.request("switchboard/selectModel", {"workspaceUri": workspace, "modelId": OPUS})
    assert selected == {
        "selected": OPUS,
        "notice": "Anthropic retires Claude Opus 4.5 on 2027-01-22: from that day it can no longer answer.",
    }
    # modelChanged tells other views of the change; its notice is kept for changes the server made itself.
    assert session.notified("switchboard/modelChanged")[-1] == {"selected": OPUS, "notice": None}
    haiku = await session.request(
        "switchboard/selectModel", {"workspaceUri": workspace, "modelId": "claude-haiku-4.5"}
    )
    assert haiku["notice"] is None
    answer = await session.chat("Still here?", modelId=OPUS)
    assert answer["routedModel"] == OPUS


async def test_from_the_day_anthropics_not_found_is_explained_as_the_retirement_and_costs_nothing(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str, issuer: Issuer
) -> None:
    session = await pro_server_on("2027-01-22", start_server, fake_api, issuer)
    selected = await session.request("switchboard/selectModel", {"workspaceUri": workspace, "modelId": OPUS})
    assert selected["notice"] == (
        "Anthropic retired Claude Opus 4.5 on 2027-01-22: it can no longer answer. Choose another model."
    )
    fake_api.add_fault(Fault("status", status=404, model=OPUS_ID, count=None))
    refused = await session.error(
        "switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "workDoneToken": "t1"}
    )
    assert refused.code == 1003
    assert str(refused).startswith(
        "Anthropic retired Claude Opus 4.5 on 2027-01-22: it can no longer answer. "
        "Choose another model, e.g. Claude Sonnet 4.5."
    )
    assert refused.data["status"] == 404 and refused.data["type"] == "not_found_error"
    assert refused.data["suggestedModel"] == "claude-sonnet-4.5" and refused.data["retryable"] is False
    usage = await session.request("switchboard/usage", {})
    assert usage["usedCredits"] == 0, "a turn Anthropic refused costs nothing"
    # Other models answer as before.
    assert (await session.chat("And Haiku?", modelId="claude-haiku-4.5"))["routedModel"] == "claude-haiku-4.5"


async def test_a_not_found_before_the_day_is_not_blamed_on_the_retirement(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str, issuer: Issuer
) -> None:
    session = await pro_server_on("2027-01-21", start_server, fake_api, issuer)
    fake_api.add_fault(Fault("status", status=404, model=OPUS_ID))
    refused = await session.error(
        "switchboard/chat",
        {"workspaceUri": workspace, "prompt": "hi", "modelId": OPUS, "workDoneToken": "t1"},
    )
    assert refused.code == 1003 and "retired" not in str(refused)
    assert "could not be found" in str(refused)


@pytest.mark.parametrize(
    ("pinned", "retires_on", "notice"),
    [
        (
            "claude-opus-4-5",
            "2027-01-22",
            "Anthropic retired Claude Opus 4.5 on 2027-01-22: it can no longer answer. Choose another model.",
        ),
        ("claude-opus-4-5-experimental", None, None),
    ],
)
async def test_a_pinned_model_retires_with_the_id_it_calls(
    start_server: SessionFactory,
    fake_api: FakeAnthropic,
    workspace: str,
    issuer: Issuer,
    pinned: str,
    retires_on: str | None,
    notice: str | None,
) -> None:
    """The retirement follows the Anthropic id called: the alias retires with its snapshot, another id not."""
    session = await pro_server_on(
        "2027-02-01", start_server, fake_api, issuer, SWITCHBOARD_MODEL_CLAUDE_OPUS_4_5=pinned
    )
    opus = (await listed(session))[OPUS]
    assert (opus["retiresOn"], opus["anthropicModel"]) == (retires_on, pinned)
    selected = await session.request("switchboard/selectModel", {"workspaceUri": workspace, "modelId": OPUS})
    assert selected["notice"] == notice
