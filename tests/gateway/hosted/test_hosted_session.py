"""The language server's gateway session in process, against a real gateway replica on PostgreSQL: the clock
it refreshes by, a 401 for a token it believed live, and the rotated refresh token when a later step of a
sign-in or refresh fails. Faults are injected in the network between the session and the gateway
(`GatewayFaults`); everything else is real."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from gateway.gateway_support import run_cli
from gateway.hosted.hosted_support import (
    VSCODE,
    GatewayFaults,
    HostedGateway,
    restart_gateway,
    start_gateway,
    unauthorized,
)
from gateway.signin.signin_support import OAuthClient, Person, SignInAccounts
from switchboard.config import Settings
from switchboard.fakeapi import FakeAnthropic, Fault
from switchboard.features.account import AccountFeature
from switchboard.features.host import Services
from switchboard.hosted.gateway_http import GatewayRefused
from switchboard.hosted.provider import GatewayProvider
from switchboard.hosted.session import GatewaySession, SignInFailed
from switchboard.protocol.errors import AuthRequired, PlanForbidsModel, UpstreamFailed
from switchboard.protocol.messages import SetOverageParams, UsageParams
from switchboard.providers.base import (
    ProviderRequest,
    StreamCallbacks,
    StreamState,
    TurnRefused,
    TurnTags,
    UpstreamError,
)

JWKS = "/.well-known/jwks.json"
TOKEN = "/oauth/token"
DEVICE = "/oauth/device_authorization"
USAGE = "/v1/switchboard/usage"
MESSAGES = "/v1/messages"
OVERAGE = "/v1/switchboard/overage"


class Clock:
    """The wall clock as the session sees it: moved by hand (a machine asleep moves it, not the loop's)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Opened:
    def __init__(self, session: GatewaySession, faults: GatewayFaults, clock: Clock) -> None:
        self.session, self.faults, self.clock = session, faults, clock
        self.handed: list[tuple[str | None, str | None]] = []  # what on_credentials told the client
        session.on_credentials.append(lambda token, reason: self.handed.append((token, reason)))


@pytest.fixture(scope="module")
def people(database_url: str) -> SignInAccounts:
    return SignInAccounts(database_url)


@pytest.fixture
async def opened(hosted: HostedGateway) -> AsyncIterator[Opened]:
    faults, clock = GatewayFaults(), Clock()
    session = GatewaySession(hosted.url, lambda: VSCODE, clock=clock, transport=faults)
    try:
        yield Opened(session, faults, clock)
    finally:
        await session.close()


async def stored_token(hosted: HostedGateway, person: Person) -> str:
    """A refresh token from a device flow another device ran (what a client keeps and resumes with)."""
    return await asyncio.to_thread(hosted.refresh_token_for, person.email)


def alive(hosted: HostedGateway, refresh_token: str) -> bool:
    """Whether the gateway still takes `refresh_token` (spending it: use it last)."""
    client = OAuthClient(hosted.url, client_id=VSCODE)
    try:
        return client.refresh(refresh_token).status_code == 200
    finally:
        client.close()


def garbled(grant: dict[str, Any]) -> dict[str, Any]:
    """The token endpoint's answer with an access token that verifies against no key."""
    return {**grant, "access_token": grant["access_token"][:-8] + "AAAAAAAA"}


async def test_a_machine_that_slept_past_the_refresh_time_refreshes_before_its_next_request(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened
) -> None:
    person = await people.create("pro")
    await opened.session.resume(await stored_token(hosted, person))
    await opened.session.access_token()
    refreshes = opened.faults.count("POST", TOKEN)
    await opened.session.access_token()
    assert opened.faults.count("POST", TOKEN) == refreshes, "refreshed although nothing was due"

    opened.clock.now += 3600  # an hour asleep: the event loop's clock stood still, the wall clock did not
    await opened.session.access_token()
    assert opened.faults.count("POST", TOKEN) == refreshes + 1, "the token was not refreshed before use"
    assert opened.handed and opened.handed[-1][0], "the rotated refresh token did not reach the client"
    report = await opened.session.usage()
    assert report.account_info.email == person.email


async def test_a_401_for_a_token_believed_live_refreshes_once_and_asks_again(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened
) -> None:
    person = await people.create("pro")
    await opened.session.resume(await stored_token(hosted, person))  # a first POST to the token endpoint
    opened.faults.answer_next("GET", USAGE, 401, unauthorized())
    report = await opened.session.usage()
    assert report.plan == "pro" and opened.faults.count("GET", USAGE) == 2
    assert opened.faults.count("POST", TOKEN) == 2 and opened.handed[-1][0]

    # A gateway that refuses the fresh token too gets no second refresh (no loop): the 401 is the answer.
    refreshes = opened.faults.count("POST", TOKEN)
    opened.faults.answer_next("GET", USAGE, 401, unauthorized("revoked"))
    opened.faults.answer_next("GET", USAGE, 401, unauthorized("revoked"))
    with pytest.raises(GatewayRefused) as refused:
        await opened.session.usage()
    assert refused.value.status == 401 and opened.faults.count("POST", TOKEN) == refreshes + 1


async def test_a_chat_refused_with_401_before_any_output_is_sent_once_more_after_a_refresh(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened
) -> None:
    person = await people.create("pro")
    await opened.session.resume(await stored_token(hosted, person))
    provider = GatewayProvider(opened.session, timeout=10, max_retries=0, transport=opened.faults)
    turn_id = uuid.uuid4().hex
    request = ProviderRequest(
        anthropic_model="claude-haiku-4-5-20251001",
        system=[],
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=64,
        tags=TurnTags(turn_id=turn_id, model_id="claude-haiku-4.5"),
    )
    texts: list[str] = []
    state = StreamState()
    opened.faults.answer_next("POST", MESSAGES, 401, unauthorized())
    try:
        callbacks = StreamCallbacks(on_text=texts.append, on_thinking=lambda _: None)
        await provider.stream(request, state, callbacks)
    finally:
        await provider.close()
    assert "".join(texts) and state.charge is not None
    assert opened.faults.count("POST", MESSAGES) == 2
    assert opened.faults.count("POST", TOKEN) == 2  # the resume's, and the one refresh
    rows = await people.execute(
        "SELECT status, credits_h, attempts FROM turns WHERE account_id = %s AND turn_id = %s",
        (person.id, turn_id),
    )
    assert [(r["status"], r["attempts"]) for r in rows] == [("complete", 1)]  # the 401 reserved nothing
    assert state.charge.credits == rows[0]["credits_h"] / 100


def key_id(access_token: str) -> str:
    """The `kid` of a JWT's header: the key that signed it."""
    header = access_token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


async def test_a_token_signed_by_a_key_rotated_in_since_the_sign_in_rereads_the_keys_once(
    hosted_env: dict[str, str], people: SignInAccounts, tmp_path: Path
) -> None:
    """Key rotation: the gateway is deployed again with a new signing key first, the old ones still listed
    (tokens they signed stay valid). The session's next refresh brings an access token signed by a key its
    cached JWKS does not have: it reads the JWKS once more, stays signed in, and chats."""
    gateway = start_gateway(hosted_env, tmp_path / "gateway.log")  # its own: this test restarts it
    faults = GatewayFaults()
    session = GatewaySession(gateway.url, lambda: VSCODE, transport=faults)
    handed: list[tuple[str | None, str | None]] = []
    session.on_credentials.append(lambda token, reason: handed.append((token, reason)))
    provider = GatewayProvider(session, timeout=10, max_retries=0, transport=faults)
    try:
        person = await people.create("pro")
        await session.resume(await asyncio.to_thread(gateway.refresh_token_for, person.email))
        signed_before = key_id(await session.access_token())
        assert faults.count("GET", JWKS) == 1

        rotated_in = tmp_path / "rotated-in.pem"
        await asyncio.to_thread(run_cli, ["keys", "new", str(rotated_in)], hosted_env)
        keys = os.pathsep.join([str(rotated_in), hosted_env["SWITCHBOARD_GATEWAY_SIGNING_KEYS"]])
        rotated_env = {**hosted_env, "SWITCHBOARD_GATEWAY_SIGNING_KEYS": keys}
        await asyncio.to_thread(restart_gateway, gateway, rotated_env)

        await session.refresh()
        assert session.signed_in, "the session ended over a key it had not seen yet"
        assert key_id(await session.access_token()) != signed_before, "not signed by the rotated-in key"
        assert faults.count("GET", JWKS) == 2, "the keys were not read again (or more than once)"
        assert handed[-1][0] and handed[-1][1] is None
        assert faults.count("POST", TOKEN) == 2  # the resume's and the refresh's: no retry after a failure

        texts: list[str] = []
        state = StreamState()
        callbacks = StreamCallbacks(on_text=texts.append, on_thinking=lambda _: None)
        await provider.stream(hello("claude-haiku-4.5", "claude-haiku-4-5-20251001"), state, callbacks)
        assert "".join(texts) and state.charge is not None and state.charge.credits > 0
        assert faults.count("POST", TOKEN) == 2 and faults.count("GET", JWKS) == 2
    finally:
        await provider.close()
        await session.close()
        gateway.stop()


async def test_a_resume_that_cannot_read_the_gateways_keys_leaves_the_stored_token_alive(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened
) -> None:
    person = await people.create("pro")
    token = await stored_token(hosted, person)
    opened.faults.answer_next("GET", JWKS, 503, {"error": "down for a moment"})
    with pytest.raises(SignInFailed) as failed:
        await opened.session.resume(token)
    assert failed.value.reason == "unreachable"
    assert opened.faults.count("POST", TOKEN) == 0, "the stored token was spent before the keys were read"
    assert not opened.handed and not opened.session.signed_in
    assert alive(hosted, token)


async def test_a_resume_whose_new_access_token_does_not_verify_hands_over_the_rotated_token(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened
) -> None:
    person = await people.create("pro")
    token = await stored_token(hosted, person)
    opened.faults.rewrite_next("POST", TOKEN, garbled)
    with pytest.raises(SignInFailed) as failed:
        await opened.session.resume(token)
    assert failed.value.reason == "unreachable" and "does not verify" in str(failed.value)
    assert not opened.session.signed_in
    assert len(opened.handed) == 1
    rotated, reason = opened.handed[0]
    assert rotated and rotated != token and reason is None
    assert alive(hosted, rotated), "the token handed over is not the live one"


async def test_a_refresh_whose_new_access_token_does_not_verify_keeps_the_rotated_token(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened
) -> None:
    person = await people.create("pro")
    await opened.session.resume(await stored_token(hosted, person))
    opened.faults.rewrite_next("POST", TOKEN, garbled)
    await opened.session.refresh()  # fails after the gateway rotated: kept signed in, retried later
    assert opened.session.signed_in
    rotated = opened.handed[-1][0]
    assert rotated
    # The retry presents the rotated token, not the spent one (which would revoke the whole family).
    await opened.session.refresh()
    assert opened.session.signed_in and opened.handed[-1][0] not in (None, rotated)
    report = await opened.session.usage()
    assert report.account_info.email == person.email


async def test_a_refresh_that_brings_another_plan_says_so_and_one_that_does_not_stays_quiet(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened
) -> None:
    person = await people.create("free")
    await opened.session.resume(await stored_token(hosted, person))
    changes: list[str] = []
    opened.session.on_plan_change.append(lambda: changes.append("changed"))
    await opened.session.refresh()
    assert changes == []
    await people.execute("UPDATE accounts SET plan = 'pro' WHERE id = %s", (person.id,))
    await opened.session.refresh()
    entitlement = opened.session.entitlement
    assert changes == ["changed"] and entitlement is not None and entitlement.plan == "pro"


async def test_forgetting_a_session_hands_over_its_latest_token_not_the_one_its_sign_in_returned(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened
) -> None:
    """A sign-in whose figures do not come forgets the session (account.py). A 401 in between refreshed
    it: what the client must keep is the rotated token, not the spent one the sign-in returned (presenting
    that at the next start would revoke the family). A session that has ended hands nothing over."""
    person = await people.create("pro")
    returned = await opened.session.resume(await stored_token(hosted, person))
    opened.faults.answer_next("GET", USAGE, 401, unauthorized())
    await opened.session.usage()  # refreshed once in between
    rotated = opened.handed[-1][0]
    assert rotated and rotated != returned
    opened.session.forget()
    assert opened.handed[-1] == (rotated, None) and not opened.session.signed_in
    handed = len(opened.handed)
    opened.session.forget()  # nothing held any more: nothing to hand over
    assert len(opened.handed) == handed
    assert alive(hosted, rotated)


async def test_closing_during_a_refresh_waits_for_the_rotated_token_and_hands_it_over(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened
) -> None:
    """The editor shuts the server down while a refresh is in flight. The gateway has already rotated the
    token, so the client must get the new one before the process ends: the one it holds is spent."""
    person = await people.create("pro")
    returned = await opened.session.resume(await stored_token(hosted, person))
    opened.faults.delay_next("POST", TOKEN, 1.0)
    refreshing = asyncio.ensure_future(opened.session.refresh())
    while opened.faults.count("POST", TOKEN) < 2:  # the resume's POST, then this refresh's
        await asyncio.sleep(0.01)
    await opened.session.close()
    assert refreshing.done() and opened.handed, "close() returned before the rotated token was handed over"
    rotated = opened.handed[-1][0]
    assert rotated not in (None, returned)
    assert alive(hosted, rotated)


async def test_a_late_refused_refresh_of_a_session_signed_out_meanwhile_leaves_the_new_one_alone(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened
) -> None:
    """A refresh is on its way when the user signs out (which revokes its family) and resumes another
    account's session. The gateway refuses the old family's refresh: that is the old session ending, which
    happened already. The new session stays, and the client is not told to delete its stored token."""
    first, second = await people.create("pro"), await people.create("pro")
    await opened.session.resume(await stored_token(hosted, first))
    release = opened.faults.hold_next("POST", TOKEN)
    refreshing = asyncio.ensure_future(opened.session.refresh())
    while opened.faults.count("POST", TOKEN) < 2:  # the resume's POST, then this refresh's (held)
        await asyncio.sleep(0.01)
    await opened.session.sign_out()
    await opened.session.resume(await stored_token(hosted, second))
    handed = len(opened.handed)
    release.set()
    await refreshing
    assert opened.session.signed_in, "the old session's refused refresh ended the new one"
    assert (await opened.session.usage()).account_info.email == second.email
    assert opened.handed[handed:] == [], "the old session's end reached the client"


@pytest.mark.parametrize(
    ("field", "link"),
    [
        ("verification_uri", "command:workbench.action.terminal.new"),
        ("verification_uri", "cloud.example.com/device"),
        ("verification_uri_complete", "file:///etc/passwd"),
        ("verification_uri_complete", "javascript:alert(1)"),
    ],
)
async def test_a_device_code_whose_link_is_not_a_web_page_is_refused(
    opened: Opened, field: str, link: str
) -> None:
    """Clients open the verification link in a browser (or print it to follow): the server refuses a code
    whose link is not http(s), with a reason, and shows no code."""
    opened.faults.rewrite_next("POST", DEVICE, lambda answer: {**answer, field: link})
    codes: list[Any] = []
    with pytest.raises(SignInFailed) as failed:
        await opened.session.device_sign_in(codes.append)
    assert failed.value.reason == "unreachable"
    assert f"{field} that is not an http(s) link" in str(failed.value)
    assert codes == [], "the code was shown with a link that must not be opened"
    assert opened.faults.count("POST", TOKEN) == 0 and not opened.session.signed_in


async def test_a_chat_refused_again_after_a_successful_refresh_is_retryable_not_a_session_that_ended(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened
) -> None:
    """The refresh succeeded, so the session lives: a second 401 is a retryable 1003, not `session_ended`
    (which would send the editor to sign in again). Only a refused refresh ends the session."""
    person = await people.create("pro")
    await opened.session.resume(await stored_token(hosted, person))
    provider = GatewayProvider(opened.session, timeout=10, max_retries=0, transport=opened.faults)
    request = ProviderRequest(
        anthropic_model="claude-haiku-4-5-20251001",
        system=[],
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=64,
        tags=TurnTags(turn_id=uuid.uuid4().hex, model_id="claude-haiku-4.5"),
    )
    callbacks = StreamCallbacks(on_text=lambda _: None, on_thinking=lambda _: None)
    opened.faults.answer_next("POST", MESSAGES, 401, unauthorized())
    opened.faults.answer_next("POST", MESSAGES, 401, unauthorized())
    try:
        with pytest.raises(UpstreamError) as caught:
            await provider.stream(request, StreamState(), callbacks)
        assert caught.value.retryable and caught.value.status == 401
        assert "still active" in caught.value.message
        assert opened.session.signed_in and opened.faults.count("POST", TOKEN) == 2

        # A refresh the gateway refuses does end it: then, and only then, session_ended.
        await people.execute("UPDATE accounts SET revoked_at = now() WHERE id = %s", (person.id,))
        opened.faults.answer_next("POST", MESSAGES, 401, unauthorized())
        with pytest.raises(TurnRefused) as ended:
            await provider.stream(request, StreamState(), callbacks)
        assert ended.value.error.code == 1004
    finally:
        await provider.close()


def hello(model_id: str, anthropic_model: str) -> ProviderRequest:
    return ProviderRequest(
        anthropic_model=anthropic_model,
        system=[],
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=64,
        tags=TurnTags(turn_id=uuid.uuid4().hex, model_id=model_id),
    )


async def refused_chat(opened: Opened, request: ProviderRequest) -> Exception:
    """What the provider raises for `request`, sent through the real gateway."""
    provider = GatewayProvider(opened.session, timeout=10, max_retries=0, transport=opened.faults)
    callbacks = StreamCallbacks(on_text=lambda _: None, on_thinking=lambda _: None)
    try:
        with pytest.raises((TurnRefused, UpstreamError)) as caught:
            await provider.stream(request, StreamState(), callbacks)
    finally:
        await provider.close()
    return caught.value


@pytest.mark.parametrize(
    "refresh_answer",
    [
        (503, {"type": "error", "error": {"type": "api_error", "message": "database restarting"}}),
        (400, {"error": "slow_down", "error_description": "Too many refreshes."}),
    ],
    ids=["token-endpoint-down", "slow-down"],
)
async def test_a_chat_refused_while_its_refresh_cannot_be_done_is_retryable_not_a_session_that_ended(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened, refresh_answer: tuple[int, dict[str, Any]]
) -> None:
    """The chat's 401 makes the session refresh, and the token endpoint cannot do it now (down, or rate
    limiting): the gateway did not refuse the session, so it lives and the chat is a retryable 1003
    (docs/protocol.md, "Gateway errors"), not `session_ended`, which would send the editor to sign in."""
    person = await people.create("pro")
    await opened.session.resume(await stored_token(hosted, person))
    opened.faults.answer_next("POST", MESSAGES, 401, unauthorized())
    opened.faults.answer_next("POST", TOKEN, *refresh_answer)
    refused = await refused_chat(opened, hello("claude-haiku-4.5", "claude-haiku-4-5-20251001"))
    assert isinstance(refused, UpstreamError), refused
    assert (refused.status, refused.retryable) == (401, True) and "still active" in refused.message
    assert opened.session.signed_in and opened.faults.count("POST", TOKEN) == 2
    assert all(token is not None for token, _ in opened.handed), "the client was told the session ended"


@pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
async def test_a_403_for_a_token_without_the_chat_scope_is_no_plan_refusal(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened
) -> None:
    """A session granted only the billing scope: the gateway refuses a chat with 403 `permission_error`
    (`insufficient_scope`). That is not the plan forbidding the model (1001, which offers an upgrade), but a
    1003 with the gateway's message (sign in again), not retryable. The gateway's own `plan_forbids_model`
    403 is still 1001, naming the model."""
    person = await people.create("free")
    token = await asyncio.to_thread(hosted.refresh_token_for, person.email, VSCODE, "billing")
    await opened.session.resume(token)
    unscoped = await refused_chat(opened, hello("claude-haiku-4.5", "claude-haiku-4-5-20251001"))
    assert isinstance(unscoped, UpstreamError), unscoped
    assert (unscoped.status, unscoped.type, unscoped.retryable) == (403, "permission_error", False)
    assert "sign in again" in unscoped.message and opened.session.signed_in

    await opened.session.sign_out()
    await opened.session.resume(await stored_token(hosted, person))
    forbidden = await refused_chat(opened, hello("claude-opus-4.5", "claude-opus-4-5-20251101"))
    assert isinstance(forbidden, TurnRefused) and isinstance(forbidden.error, PlanForbidsModel), forbidden
    assert forbidden.error.data["modelId"] == "claude-opus-4.5" and forbidden.error.data["plan"] == "free"


async def test_a_402_the_gateway_passes_on_from_the_anthropic_api_is_not_the_users_credits(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened, upstream: FakeAnthropic
) -> None:
    """The Anthropic API refuses the gateway's vendor account with 402 `billing_error`: the vendor's problem,
    which the gateway answers as a 502 not to be retried. A Pro user with credits left must not read "out of
    Free credits" (1002): it is a 1003 that says the gateway's upstream account has a billing problem."""
    person = await people.create("pro")
    await opened.session.resume(await stored_token(hosted, person))
    upstream.add_fault(Fault("status", status=402, model="claude-haiku-4-5-20251001"))
    refused = await refused_chat(opened, hello("claude-haiku-4.5", "claude-haiku-4-5-20251001"))
    assert isinstance(refused, UpstreamError), refused
    assert (refused.status, refused.type, refused.retryable) == (502, "api_error", False)
    assert "billing problem" in refused.message


class _Editor:
    def notify(self, method: str, params: dict[str, Any]) -> None:
        pass

    def show_message(self, message: str, kind: object) -> None:
        pass

    def default_workspace(self) -> str | None:
        return None


class _Upstream:
    def __init__(self, session: GatewaySession) -> None:
        self.gateway = session

    @property
    def hosted(self) -> bool:
        return self.gateway.signed_in


def account_feature(session: GatewaySession, state_dir: Path) -> AccountFeature:
    """The language server's account feature (usage, setOverage) on `session`."""
    settings = Settings(
        state_dir=state_dir,
        api_key=None,
        base_url=None,
        request_timeout=10,
        max_retries=0,
        max_output_tokens=1000,
    )
    return AccountFeature(cast(Any, _Editor()), Services(settings, cast(Any, _Upstream(session))))


ACCOUNT_CALLS: dict[str, tuple[str, str, Callable[[AccountFeature], Awaitable[object]]]] = {
    "usage": ("GET", USAGE, lambda feature: feature.usage(UsageParams())),
    "setOverage": (
        "POST",
        OVERAGE,
        lambda feature: feature.set_overage(SetOverageParams(enabled=True, budget_usd=20)),
    ),
}


@pytest.mark.parametrize("call", list(ACCOUNT_CALLS))
async def test_usage_or_overage_refused_again_after_a_successful_refresh_is_retryable_not_session_ended(
    hosted: HostedGateway, people: SignInAccounts, opened: Opened, tmp_path: Path, call: str
) -> None:
    """As for a chat: the refresh after the first 401 succeeded, so the session lives and a second 401 is a
    retryable 1003, not `session_ended` (which would send the editor to sign in again). Only a refused
    refresh ends the session, and only then is it 1004."""
    method, path, send = ACCOUNT_CALLS[call]
    person = await people.create("pro")
    await opened.session.resume(await stored_token(hosted, person))
    feature = account_feature(opened.session, tmp_path)
    opened.faults.answer_next(method, path, 401, unauthorized())
    opened.faults.answer_next(method, path, 401, unauthorized())
    with pytest.raises(UpstreamFailed) as caught:
        await send(feature)
    assert caught.value.code == 1003
    assert caught.value.data["retryable"] is True and caught.value.data["status"] == 401
    assert "still active" in caught.value.message
    assert opened.session.signed_in and opened.faults.count("POST", TOKEN) == 2
    assert opened.handed[-1][1] is None, "the client was told the session ended"

    # A refresh the gateway refuses does end it: then, and only then, session_ended.
    await people.execute("UPDATE accounts SET revoked_at = now() WHERE id = %s", (person.id,))
    opened.faults.answer_next(method, path, 401, unauthorized())
    with pytest.raises(AuthRequired) as ended:
        await send(feature)
    assert ended.value.code == 1004 and ended.value.data["reason"] == "session_ended"
    assert not opened.session.signed_in
