"""Plans and credits enforced by the real server process, against the fake API and a real ledger file."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from lsprotocol import types as lsp

from conftest import Session, SessionFactory, server_env
from rawlsp import RawServer
from switchboard.fakeapi import FakeAnthropic
from switchboard.plans import credits_for
from switchboard.plans.dev_issuer import init, load_private_key, sign_token
from switchboard.protocol.messages import Usage

# A long answer (cut at the server's 8,192-token output cap): about 16 credits on Sonnet 4.5.
LONG = "[[fake:words=9000]]"


class Issuer:
    def __init__(self, root: Path) -> None:
        self.paths, _ = init(root)
        self.key = load_private_key(root)

    def token(self, plan: str, **kwargs: Any) -> str:
        return sign_token(self.key, plan, **kwargs)


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer(tmp_path / "issuer")


def trusted_env(issuer: Issuer) -> dict[str, str]:
    return {"SWITCHBOARD_TRUSTED_KEYS": str(issuer.paths.jwks)}


def requests_to_fake(fake: FakeAnthropic) -> int:
    return sum(1 for r in fake.received() if r.path == "/v1/messages")


async def test_free_cannot_select_or_send_to_opus(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str
) -> None:
    session = await start_server(fake_api)
    models = {m["id"]: m for m in (await session.request("switchboard/models", {}))["models"]}
    assert models["claude-opus-4.5"]["available"] is False
    assert models["claude-opus-4.5"]["unavailableReason"] == "Claude Opus 4.5 needs Pro, Pro+ or Power"
    assert all(m["available"] for k, m in models.items() if k != "claude-opus-4.5")

    refused = await session.error(
        "switchboard/selectModel", {"workspaceUri": workspace, "modelId": "claude-opus-4.5"}
    )
    assert refused.code == 1001
    assert refused.data == {
        "modelId": "claude-opus-4.5",
        "plan": "free",
        "allowedPlans": ["pro", "pro_plus", "power"],
    }
    sent = await session.error(
        "switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": "claude-opus-4.5"}
    )
    assert sent.code == 1001
    assert requests_to_fake(fake_api) == 0


async def test_pro_can_use_opus_and_is_charged_by_the_multiplier(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str, issuer: Issuer
) -> None:
    session = await start_server(
        fake_api, init_options={"entitlement": issuer.token("pro")}, **trusted_env(issuer)
    )
    usage = await session.request("switchboard/usage", {})
    assert usage["plan"] == "pro" and usage["includedCredits"] == 1000
    await session.request(
        "switchboard/selectModel", {"workspaceUri": workspace, "modelId": "claude-opus-4.5"}
    )
    result = await session.chat("Design a cache")
    assert result["routedModel"] == "claude-opus-4.5"
    expected = credits_for("claude-opus-4.5", Usage.model_validate(result["usage"]))
    assert Decimal(str(result["credits"])) == expected > 0
    report = await session.request("switchboard/usage", {})
    assert Decimal(str(report["usedCredits"])) == expected
    assert report["byModel"] == [
        {
            "modelId": "claude-opus-4.5",
            "routedModel": "claude-opus-4.5",
            "turns": 1,
            "credits": float(expected),
        }
    ]
    assert session.notified("switchboard/usageChanged")[-1]["usedCredits"] == float(expected)
    conversation = await session.request(
        "switchboard/conversation", {"workspaceUri": workspace, "conversationId": result["conversationId"]}
    )
    assert conversation["turns"][-1]["credits"] == float(expected)


async def test_auto_is_billed_at_one_times_whatever_it_routed_to(
    start_server: SessionFactory, fake_api: FakeAnthropic
) -> None:
    session = await start_server(fake_api)
    result = await session.chat("Explain this module's design and suggest a refactor")
    assert result["modelId"] == "auto"
    assert Decimal(str(result["credits"])) == credits_for("auto", Usage.model_validate(result["usage"]))


async def test_free_credits_run_out_exactly_at_the_allowance(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str
) -> None:
    session = await start_server(fake_api)
    charged: list[Decimal] = []
    while True:
        try:
            result = await session.chat(f"Write a lot {LONG}", modelId="claude-sonnet-4.5")
        except Exception as exc:
            error = exc
            break
        charged.append(Decimal(str(result["credits"])))
        assert len(charged) < 10, "credits never ran out"
    assert getattr(error, "code", None) == 1002
    assert error.data == {  # type: ignore[attr-defined]
        "plan": "free",
        "remainingCredits": 0.0,
        "overageAvailable": False,
        "overageEnabled": False,
        "neededCredits": None,
    }
    assert "50" in str(error) or "Free" in str(error)
    assert sum(charged[:-1]) < 50 <= sum(charged), (
        "the last turn started with credits left and finished past zero"
    )
    report = await session.request("switchboard/usage", {})
    assert Decimal(str(report["usedCredits"])) == sum(charged)
    assert report["remainingCredits"] == 0
    alerts = [
        m.message
        for m in session.notified(lsp.WINDOW_SHOW_MESSAGE)
        if "%" in m.message or "credits" in m.message
    ]
    assert len(alerts) == 2, "one alert at 80% and one at 100%"
    assert len(report["alerts"]) == 2
    overage = await session.error("switchboard/setOverage", {"enabled": True})
    assert overage.code == 1001
    sent_before = requests_to_fake(fake_api)
    again = await session.error("switchboard/chat", {"workspaceUri": workspace, "prompt": "one more"})
    assert again.code == 1002 and requests_to_fake(fake_api) == sent_before


async def test_overage_on_a_paid_plan_continues_and_is_reported(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path, issuer: Issuer
) -> None:
    # Start the account near its allowance by charging the shared ledger directly from a first session.
    session = await start_server(
        fake_api, init_options={"entitlement": issuer.token("pro")}, **trusted_env(issuer)
    )
    report = await session.request("switchboard/setOverage", {"enabled": True, "budgetUsd": 1.0})
    assert report["overage"] == {
        "available": True,
        "enabled": True,
        "budgetUsd": 1.0,
        "credits": 0.0,
        "costUsd": 0.0,
    }
    _fill_ledger(state_dir, account="dev-user", credits_hundredths=99_900)
    first = await session.chat(f"Go past the allowance {LONG}", modelId="claude-sonnet-4.5")
    report = await session.request("switchboard/usage", {})
    assert report["remainingCredits"] == 0
    assert report["overage"]["credits"] > 0
    assert report["overage"]["costUsd"] == pytest.approx(report["overage"]["credits"] * 0.04, abs=0.01)
    assert first["credits"] > 0
    # The $1 budget buys 25 credits of overage: the next turn runs (and is capped), the one after is refused.
    await session.chat(f"More {LONG}", modelId="claude-sonnet-4.5")
    capped = await session.request("switchboard/usage", {})
    assert capped["overage"]["credits"] == 25 and capped["overage"]["costUsd"] == 1.0
    refused = await session.error("switchboard/chat", {"workspaceUri": session.workspace, "prompt": "again"})
    assert refused.code == 1002 and refused.data["overageAvailable"] is True
    assert refused.data["overageEnabled"] is True, "overage is on: its budget is what ran out"


def _fill_ledger(state_dir: Path, *, account: str, credits_hundredths: int) -> None:
    """Records an earlier turn the way a second server process would (through the ledger API)."""
    from switchboard.plans.entitlement import Entitlement
    from switchboard.plans.ledger import Ledger
    from switchboard.plans.meter import Meter

    meter = Meter(Ledger(state_dir / "ledger.sqlite3"))
    entitlement = Entitlement("pro", account, "switchboard-dev-issuer", None, "test")
    usage = Usage(output_tokens=round(credits_hundredths / 100 / 1.3 / 15 * 1_000_000 / 100))
    meter.charge(
        "earlier-turn",
        entitlement,
        model_id="claude-sonnet-4.5",
        routed_model="claude-sonnet-4.5",
        usage=usage,
    )


@pytest.mark.parametrize(
    ("forge", "reason_word"),
    [
        ("alg_none", "eddsa"),
        ("hs256_with_public_key", "eddsa"),
        ("tampered", "signature"),
        ("expired", "expired"),
        ("untrusted", "trusted"),
        ("unknown_plan", "plan"),
    ],
)
async def test_forged_entitlements_fall_back_to_free(
    start_server: SessionFactory,
    fake_api: FakeAnthropic,
    issuer: Issuer,
    tmp_path: Path,
    forge: str,
    reason_word: str,
) -> None:
    token = _forged(issuer, tmp_path, forge)
    session = await start_server(fake_api, init_options={"entitlement": token}, **trusted_env(issuer))
    usage = await session.request("switchboard/usage", {})
    assert usage["plan"] == "free"
    assert reason_word in usage["planReason"].lower()
    refused = await session.error(
        "switchboard/chat", {"workspaceUri": session.workspace, "prompt": "hi", "modelId": "claude-opus-4.5"}
    )
    assert refused.code == 1001
    assert requests_to_fake(fake_api) == 0


def _forged(issuer: Issuer, tmp_path: Path, forge: str) -> str:
    from cryptography.hazmat.primitives import serialization

    from switchboard.plans.dev_issuer import public_pem, replace_payload

    if forge == "alg_none":
        return issuer.token("power", alg_override="none")
    if forge == "hs256_with_public_key":
        return issuer.token("power", alg_override="HS256", hmac_secret=public_pem(issuer.key.public_key()))
    if forge == "tampered":
        good = issuer.token("free")
        return replace_payload(
            good, {"iss": "switchboard-dev-issuer", "sub": "x", "plan": "power", "iat": 1, "exp": 4102444800}
        )
    if forge == "expired":
        return issuer.token("power", days=-1)
    if forge == "untrusted":
        return sign_token(Ed25519PrivateKey.generate(), "power")
    assert forge == "unknown_plan"
    del serialization
    return issuer.token("enterprise")


async def test_sign_in_raises_the_plan_and_initialization_options_cannot_move_state(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path, tmp_path: Path, issuer: Issuer
) -> None:
    elsewhere = tmp_path / "attacker"
    session = await start_server(
        fake_api,
        init_options={
            "plan": "power",
            "stateDir": str(elsewhere),
            "ledger": str(elsewhere / "l.db"),
            "trustedKeys": {},
        },
        **trusted_env(issuer),
    )
    assert (await session.request("switchboard/usage", {}))["plan"] == "free"
    await session.chat("hello")
    assert not elsewhere.exists()
    assert (state_dir / "ledger.sqlite3").exists() and (state_dir / "conversations.sqlite3").exists()

    signed_in = await session.request("switchboard/signIn", {"token": issuer.token("pro_plus")})
    report = signed_in["usage"]
    assert signed_in["refreshToken"] is None and signed_in["account"]["mode"] == "local"
    assert report["plan"] == "pro_plus" and report["includedCredits"] == 2000
    assert session.notified("switchboard/usageChanged")[-1]["plan"] == "pro_plus"
    models = {m["id"]: m for m in (await session.request("switchboard/models", {}))["models"]}
    assert models["claude-opus-4.5"]["available"] is True


async def test_a_selection_the_plan_no_longer_allows_falls_back_to_auto(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str, issuer: Issuer
) -> None:
    session = await start_server(
        fake_api, init_options={"entitlement": issuer.token("pro")}, **trusted_env(issuer)
    )
    await session.request(
        "switchboard/selectModel", {"workspaceUri": workspace, "modelId": "claude-opus-4.5"}
    )
    await session.request("switchboard/signIn", {"token": issuer.token("free")})
    changed = session.notified("switchboard/modelChanged")[-1]
    assert changed["selected"] == "auto" and "Opus" in changed["notice"]
    assert (await session.request("switchboard/models", {"workspaceUri": workspace}))["selected"] == "auto"


async def test_estimate_previews_every_model(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str
) -> None:
    session = await start_server(fake_api)
    first = await session.chat("A first question")
    estimate = await session.request(
        "switchboard/estimate",
        {
            "workspaceUri": workspace,
            "prompt": "And a follow-up?" * 50,
            "conversationId": first["conversationId"],
        },
    )
    by_id = {e["modelId"]: e for e in estimate["estimates"]}
    assert set(by_id) == {
        "auto",
        "claude-haiku-4.5",
        "claude-sonnet-4.0",
        "claude-sonnet-4.5",
        "claude-opus-4.5",
    }
    assert by_id["claude-opus-4.5"]["allowed"] is False and by_id["claude-haiku-4.5"]["allowed"] is True
    haiku, sonnet = by_id["claude-haiku-4.5"], by_id["claude-sonnet-4.5"]
    assert haiku["inputTokens"] == sonnet["inputTokens"] > 200, "history is included"
    # Both round up to 0.01 credits, so the ratio holds to within a cent or so.
    assert sonnet["estimatedCredits"] == pytest.approx(haiku["estimatedCredits"] * 1.3 / 0.4, abs=0.05)
    assert all(e["fitsContext"] for e in estimate["estimates"])
    assert requests_to_fake(fake_api) == 1, "estimating calls no model"


async def test_two_server_processes_charge_one_ledger_exactly(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path, workspace: str
) -> None:
    first = await start_server(fake_api)
    second = await start_server(fake_api)

    async def chats(session: Session) -> list[dict[str, Any]]:
        return [await session.chat(f"Question {i}", modelId="claude-haiku-4.5") for i in range(6)]

    results = [r for batch in await asyncio.gather(chats(first), chats(second)) for r in batch]
    total = sum(Decimal(str(r["credits"])) for r in results)
    report = await first.request("switchboard/usage", {})
    assert Decimal(str(report["usedCredits"])) == total
    db = sqlite3.connect(state_dir / "ledger.sqlite3")
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert tables
    db.close()
    assert len({r["turnId"] for r in results}) == 12


async def test_entitlement_from_environment(
    start_server: SessionFactory, fake_api: FakeAnthropic, issuer: Issuer, state_dir: Path
) -> None:
    env = server_env(
        state_dir, fake_api, SWITCHBOARD_ENTITLEMENT=issuer.token("power"), **trusted_env(issuer)
    )
    session = await start_server(fake_api, env=env)
    usage = await session.request("switchboard/usage", {})
    assert usage["plan"] == "power" and usage["includedCredits"] == 10_000 and usage["account"] == "dev-user"


# --- the month rolls over while the server runs -------------------------------------------------------


def test_credits_reset_at_the_month_boundary_while_the_server_runs(
    fake_api: FakeAnthropic, state_dir: Path, workspace: str
) -> None:
    """The real server under libfaketime, started 25 seconds before December: a chat is charged to
    November, then `usageChanged` arrives for December with the full allowance, unprompted. (The margin is
    the server's start-up and first chat, over 10 s when the suite runs in parallel on two cores.)"""
    faketime = shutil.which("faketime")
    if faketime is None:
        pytest.fail("this test needs libfaketime: apt-get install faketime (./dev test installs it)")
    env = server_env(state_dir, fake_api, TZ="UTC")
    command = [faketime, "2026-11-30 23:59:35", sys.executable, "-m", "switchboard", "serve"]
    server = RawServer(env, command=command)
    try:
        server.initialize(workspace)
        chat = {"workspaceUri": workspace, "prompt": "hello", "modelId": "claude-haiku-4.5"}
        charged = server.result("switchboard/chat", chat)["credits"]
        november = server.result("switchboard/usage", {})
        assert november["periodStart"] == "2026-11-01T00:00:00Z", "the clock is not faked"
        assert november["usedCredits"] == charged > 0

        deadline = time.monotonic() + 60
        december: list[dict[str, Any]] = []
        while not december and time.monotonic() < deadline:
            time.sleep(0.2)
            december = [
                f["params"]
                for f in server.frames_with_method("switchboard/usageChanged")
                if f["params"]["periodStart"] == "2026-12-01T00:00:00Z"
            ]
        assert december, "no usageChanged for the new month"
        assert (december[0]["usedCredits"], december[0]["remainingCredits"]) == (0, 50)
        assert december[0]["periodEnd"] == "2027-01-01T00:00:00Z"
        assert server.result("switchboard/usage", {})["periodStart"] == "2026-12-01T00:00:00Z"
    finally:
        server.close()
