"""The account feature signed in, in process: the gateway session is a stand-in, so the order of the checks
before a turn and what reaches the editor can be seen without a gateway (the hosted tests in
tests/gateway/hosted run the real server against a real one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from switchboard.config import Settings
from switchboard.features.account import AccountFeature
from switchboard.features.host import Services
from switchboard.hosted.session import SignInFailed
from switchboard.plans import Entitlement
from switchboard.protocol.errors import PlanForbidsModel, UpstreamFailed
from switchboard.protocol.messages import AccountInfo, UsageReport


class Editor:
    def __init__(self) -> None:
        self.notified: list[tuple[str, dict[str, Any]]] = []
        self.shown: list[str] = []

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.notified.append((method, params))

    def show_message(self, message: str, kind: object) -> None:
        self.shown.append(message)

    def default_workspace(self) -> str | None:
        return None


class Session:
    """A signed-in session on `plan` whose gateway answers usage with `reports` in turn, or is down."""

    def __init__(self, plan: str, reports: list[UsageReport] | None = None) -> None:
        self.entitlement = Entitlement(
            cast(Any, plan), "acct-1", "gateway", None, f"{plan} (Switchboard Cloud)"
        )
        self.reports = reports
        self.usage_calls = 0
        self.signed_in = True
        self.on_credentials: list[Any] = []
        self.on_plan_change: list[Any] = []
        self.on_ended: list[Any] = []

    def account_info(self) -> AccountInfo:
        return AccountInfo(mode="hosted", email="ada@example.com")

    async def usage(self) -> UsageReport:
        self.usage_calls += 1
        if not self.reports:
            raise SignInFailed("unreachable", "Switchboard Cloud is down.")
        return self.reports.pop(0)


class Upstream:
    def __init__(self, session: Session) -> None:
        self.gateway = session
        self.hosted = True


def account(tmp_path: Path, session: Session) -> tuple[AccountFeature, Editor]:
    settings = Settings(
        state_dir=tmp_path,
        api_key=None,
        base_url=None,
        request_timeout=10,
        max_retries=0,
        max_output_tokens=1000,
    )
    editor = Editor()
    services = Services(settings, cast(Any, Upstream(session)))
    return AccountFeature(cast(Any, editor), services), editor


async def test_a_forbidden_model_is_refused_with_at_most_one_report_fetch(tmp_path: Path) -> None:
    """No report cached and the gateway down: Opus on Free is 1001 (the access token's plan says so), not
    1003. Before refusing, the report (which names the plan: an upgrade made at the gateway) is asked for
    once; again only after PLAN_RECHECK_SECONDS, so refusals in a row cost no further round trip."""
    session = Session("free")
    feature, _ = account(tmp_path, session)
    with pytest.raises(PlanForbidsModel):
        await feature.check("claude-opus-4.5")
    assert session.usage_calls == 1
    with pytest.raises(PlanForbidsModel):
        await feature.check("claude-opus-4.5")
    assert session.usage_calls == 1
    # Positive control: an allowed model needs the gateway's figures, which do not come.
    with pytest.raises(UpstreamFailed):
        await feature.check("claude-sonnet-4.5")
    assert session.usage_calls == 2


def report(alerts: list[str], period_start: str = "2026-11-01T00:00:00Z", plan: str = "free") -> UsageReport:
    return UsageReport.model_validate(
        {
            "plan": plan,
            "plan_name": plan.title(),
            "plan_reason": "Switchboard Cloud",
            "period_start": period_start,
            "period_end": "2026-12-01T00:00:00Z",
            "included_credits": 50,
            "used_credits": 0,
            "remaining_credits": 50,
            "overage": {"available": False, "enabled": False, "credits": 0, "cost_usd": 0},
            "by_model": [],
            "daily": [],
            "alerts": alerts,
        }
    )


async def test_the_gateways_new_alerts_are_shown_once_each(tmp_path: Path) -> None:
    at_80, at_100 = "You've used 80%.", "You've used all."
    session = Session(
        "free",
        [
            report([at_80]),  # at sign-in: passed before, not shown again
            report([at_80]),
            report([at_80, at_100]),
            report([at_80, "You've used all. Overage is on."]),  # the 100 % one reworded: not new
            report([], "2026-12-01T00:00:00Z"),
            report([at_80], "2026-12-01T00:00:00Z"),  # a new month's
        ],
    )
    feature, editor = account(tmp_path, session)
    for _ in range(6):
        await feature.usage(cast(Any, type("P", (), {"workspace_uri": None})()))
    assert editor.shown == [at_100, at_80]
