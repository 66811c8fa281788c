"""Security, through the real server process: forged entitlements, the API key's secrecy, and hostile
paths, URIs and ids that try to move state or reach another workspace's data (issue 6, "Security").

Every test drives `switchboard serve` over stdio against the fake Anthropic API and checks the outcome a
user (or an attacker) would see, plus what reached the fake API and what ended up on disk.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from conftest import Session, SessionFactory, server_env
from rawlsp import RawServer
from switchboard.fakeapi import FakeAnthropic, Fault
from switchboard.plans.dev_issuer import (
    DEV_ISSUER,
    encode_jws,
    init,
    key_id,
    load_private_key,
    public_jwk,
    public_pem,
    replace_payload,
    sign_token,
)
from switchboard.plans.period import utc_now

OPUS = "claude-opus-4.5"
OPUS_ANTHROPIC = "claude-opus-4-5-20251101"
# Recognisable keys: if any byte sequence below shows up where it should not, the key leaked.
CANARY_ENV = "sk-ant-api03-CANARY-ENV-5f0c2e9a7b3d41c8e6f2a9d0b7c4e1f3"
CANARY_INIT = "sk-ant-api03-CANARY-INIT-9d4b7e2c1a8f63d05b9e2c7a4f1d8e6b"
OCT_SECRET = b"a-shared-hmac-secret-that-must-never-verify-anything"


# --- helpers -------------------------------------------------------------------------------------------


class Issuer:
    """The dev issuer (a stand-in for the account service) with the JWKS the server is told to trust."""

    def __init__(self, root: Path) -> None:
        self.paths, _ = init(root)
        self.key = load_private_key(root)
        self.kid = key_id(self.key.public_key())

    def token(self, plan: str, **kwargs: Any) -> str:
        return sign_token(self.key, plan, **kwargs)

    def claims(self, plan: str) -> dict[str, Any]:
        now = int(utc_now().timestamp())
        return {"iss": DEV_ISSUER, "sub": "dev-user", "plan": plan, "iat": now, "exp": now + 86_400}


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer(tmp_path / "issuer")


def write_jwks(path: Path, keys: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"keys": keys}), encoding="utf-8")
    return path


def oct_jwk(secret: bytes, kid: str) -> dict[str, str]:
    """A symmetric key in the trusted JWKS: the classic way to smuggle HS256 past a verifier."""
    return {
        "kty": "oct",
        "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode(),
        "kid": kid,
        "alg": "HS256",
    }


def messages_sent(fake: FakeAnthropic) -> list[dict[str, Any]]:
    return [r.body or {} for r in fake.received() if r.path == "/v1/messages"]


def models_sent(fake: FakeAnthropic) -> list[str]:
    return [str(body.get("model")) for body in messages_sent(fake)]


async def outcome(session: Session, method: str, params: Any) -> tuple[Any, JsonRpcException | None]:
    try:
        return await session.request(method, params), None
    except JsonRpcException as exc:
        return None, exc


def isolated_env(
    tmp_path: Path, state_dir: Path, fake: FakeAnthropic, **overrides: str | None
) -> dict[str, str]:
    """The test env, with HOME, XDG dirs, TMPDIR and cwd inside `tmp_path/outside`: nothing can escape."""
    outside = tmp_path / "outside"
    for name in ("home", "xdg-data", "xdg-config", "xdg-cache", "xdg-state", "tmp", "cwd"):
        (outside / name).mkdir(parents=True, exist_ok=True)
    env = server_env(state_dir, fake, **overrides)
    env.update(
        HOME=str(outside / "home"),
        XDG_DATA_HOME=str(outside / "xdg-data"),
        XDG_CONFIG_HOME=str(outside / "xdg-config"),
        XDG_CACHE_HOME=str(outside / "xdg-cache"),
        XDG_STATE_HOME=str(outside / "xdg-state"),
        TMPDIR=str(outside / "tmp"),
    )
    return env


def start_audited(tmp_path: Path, env: dict[str, str], workspace: str, init_options: Any = None) -> RawServer:
    server = RawServer(env, cwd=tmp_path / "outside" / "cwd")  # every stdout and stderr byte is kept
    params: dict[str, Any] = {
        "processId": None,
        "rootUri": workspace,
        "capabilities": {"window": {"workDoneProgress": True}},
        "workspaceFolders": [{"uri": workspace, "name": "project"}],
    }
    if init_options is not None:
        params["initializationOptions"] = init_options
    server.request(0, "initialize", params)
    assert "result" in server.wait_for(0, timeout=60)
    server.notify("initialized", {})
    return server


def tree(root: Path, exclude: Path) -> set[str]:
    """Every file and directory under `root` (relative), except those under `exclude`."""
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path != exclude and exclude not in path.parents
    }


def needles(secret: str) -> dict[str, bytes]:
    """The key and recognisable pieces of it (a masked `sk-ant-…1f3` is fine; 12 secret chars are not)."""
    body = secret.removeprefix("sk-ant-api03-")
    return {
        "the key": secret.encode(),
        "the key's secret part": body.encode(),
        "its first 12 secret characters": body[:12].encode(),
        "its last 12 characters": body[-12:].encode(),
        "the key in base64": base64.b64encode(secret.encode()),
        "the key in UTF-16": secret.encode("utf-16-le"),
    }


def files_under(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            try:
                yield str(path), path.read_bytes()
            except OSError:  # a WAL file checkpointed away between listing and reading
                continue


def find_leaks(secrets: list[str], places: dict[str, bytes]) -> list[str]:
    """One line per (key, place) where any recognisable form of a key shows up."""
    found: list[str] = []
    for secret in secrets:
        forms = needles(secret)
        for place, data in places.items():
            hits = [what for what, needle in forms.items() if needle in data]
            if hits:
                found.append(f"{secret[:22]}… in {place} ({', '.join(hits)})")
    return found


def scan_disk(root: Path) -> dict[str, bytes]:
    return dict(files_under(root))


# --- entitlements -------------------------------------------------------------------------------------


Forge = Callable[[Issuer, Ed25519PrivateKey], str]


def _hs256_with(secret: bytes, kid: str | None = None) -> Forge:
    def forge(issuer: Issuer, _other: Ed25519PrivateKey) -> str:
        return issuer.token("power", alg_override="HS256", hmac_secret=secret, kid=kid or issuer.kid)

    return forge


def _raw_public(issuer: Issuer) -> bytes:
    return issuer.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# (name, forge, words the planReason must contain (any of them))
FORGERIES: list[tuple[str, Forge, tuple[str, ...]]] = [
    ("alg none", lambda i, _o: i.token("power", alg_override="none"), ("eddsa",)),
    ("alg NONE", lambda i, _o: i.token("power", alg_override="NONE"), ("eddsa",)),
    ("alg nOnE", lambda i, _o: i.token("power", alg_override="nOnE"), ("eddsa",)),
    (
        "HS256 keyed with the trusted public key's PEM (key confusion)",
        lambda i, o: _hs256_with(public_pem(i.key.public_key()))(i, o),
        ("eddsa",),
    ),
    (
        "HS256 keyed with the trusted public key's raw bytes",
        lambda i, o: _hs256_with(_raw_public(i))(i, o),
        ("eddsa",),
    ),
    (
        "HS256 keyed with the trusted JWK's x (key confusion)",
        lambda i, o: _hs256_with(public_jwk(i.key.public_key())["x"].encode())(i, o),
        ("eddsa",),
    ),
    (
        "HS256 keyed with an oct key that sits in the trusted JWKS",
        _hs256_with(OCT_SECRET, "oct-key"),
        ("eddsa",),
    ),
    (
        "HS512 keyed with the trusted public key's PEM",
        lambda i, _o: i.token("power", alg_override="HS512", hmac_secret=public_pem(i.key.public_key())),
        ("eddsa",),
    ),
    (
        "ES256 header over an Ed25519 signature",
        lambda i, _o: encode_jws({"alg": "ES256", "kid": i.kid}, i.claims("power"), i.key.sign),
        ("eddsa",),
    ),
    (
        "tampered payload (pro → power, signature kept)",
        lambda i, _o: replace_payload(i.token("pro"), i.claims("power")),
        ("trusted", "signature"),
    ),
    (
        "signature stripped",
        lambda i, _o: i.token("power").rsplit(".", 1)[0] + ".",
        ("trusted", "signature", "malformed"),
    ),
    ("expired", lambda i, _o: i.token("power", days=-1), ("expired",)),
    (
        "not valid yet (iat a day ahead)",
        lambda i, _o: i.token("power", now=utc_now() + timedelta(days=1)),
        ("not valid yet",),
    ),
    ("missing exp", lambda i, _o: i.token("power", omit_claims=["exp"]), ("exp",)),
    ("untrusted key", lambda _i, o: sign_token(o, "power"), ("trusted",)),
    ("trusted kid, signed by another key", lambda i, o: sign_token(o, "power", kid=i.kid), ("trusted",)),
    (
        "embedded jwk header with the attacker's key",
        lambda i, o: encode_jws(
            {"alg": "EdDSA", "kid": i.kid, "jwk": public_jwk(o.public_key(), kid=i.kid)},
            i.claims("power"),
            o.sign,
        ),
        ("trusted",),
    ),
    (
        "jku header pointing at the attacker's JWKS",
        lambda i, o: encode_jws(
            {"alg": "EdDSA", "kid": "evil", "jku": "http://127.0.0.1:9/jwks.json"}, i.claims("power"), o.sign
        ),
        ("trusted",),
    ),
    (
        "issuer that does not match the trusted key",
        lambda i, _o: i.token("power", iss="evil-corp"),
        ("issuer",),
    ),
    ("unknown plan", lambda i, _o: i.token("enterprise"), ("plan",)),
    (
        "plan claim that is not a string",
        lambda i, _o: i.token("power", extra_claims={"plan": ["power"]}),
        ("plan",),
    ),
    ("not a JWT at all", lambda _i, _o: "definitely-not-a-token", ("malformed",)),
    ("two tokens glued together", lambda i, _o: i.token("power") + "." + i.token("power"), ("malformed",)),
]


async def test_a_forged_sign_in_after_a_valid_pro_one_drops_to_free_and_reaches_no_opus(
    start_server: SessionFactory, fake_api: FakeAnthropic, issuer: Issuer, tmp_path: Path, workspace: str
) -> None:
    """Decision: a bad `switchboard/signIn` replaces the entitlement, so the user drops to Free with the
    reason; it never keeps (let alone raises) the plan of the earlier valid token."""
    jwks = write_jwks(
        tmp_path / "trust" / "jwks.json",
        [*json.loads(issuer.paths.jwks.read_text())["keys"], oct_jwk(OCT_SECRET, "oct-key")],
    )
    session = await start_server(fake_api, SWITCHBOARD_TRUSTED_KEYS=str(jwks))
    attacker = Ed25519PrivateKey.generate()
    problems: list[str] = []
    for name, forge, reason_words in FORGERIES:
        signed_in = (await session.request("switchboard/signIn", {"token": issuer.token("pro")}))["usage"]
        assert signed_in["plan"] == "pro", f"the valid Pro sign-in before {name!r} failed: {signed_in}"
        try:
            await _assert_forgery_lands_on_free(
                session, fake_api, workspace, forge(issuer, attacker), reason_words
            )
        except AssertionError as failure:
            problems.append(f"{name}: {failure}")
    assert not problems, "forged sign-ins that were not refused properly:\n" + "\n".join(problems)

    # Positive control: the same checks would have seen a request reach Opus.
    await session.request("switchboard/signIn", {"token": issuer.token("pro")})
    result = await session.chat("hi", modelId=OPUS)
    assert result["routedModel"] == OPUS
    assert models_sent(fake_api) == [OPUS_ANTHROPIC]


async def _assert_forgery_lands_on_free(
    session: Session, fake: FakeAnthropic, workspace: str, token: str, reason_words: tuple[str, ...]
) -> None:
    sent_before = len(messages_sent(fake))
    report = (await session.request("switchboard/signIn", {"token": token}))["usage"]
    assert report["plan"] == "free", f"signIn gave plan {report['plan']!r}"
    reason = report["planReason"]
    assert reason.endswith("you are on Free") and any(w in reason.lower() for w in reason_words), reason
    assert session.notified("switchboard/usageChanged")[-1]["plan"] == "free"
    assert (await session.request("switchboard/usage", {}))["plan"] == "free"
    models = {m["id"]: m for m in (await session.request("switchboard/models", {}))["models"]}
    assert models[OPUS]["available"] is False
    _, chat = await outcome(
        session, "switchboard/chat", {"workspaceUri": workspace, "prompt": "hi", "modelId": OPUS}
    )
    assert chat is not None and chat.code == 1001 and chat.data["plan"] == "free", f"chat: {chat!r}"
    _, select = await outcome(
        session, "switchboard/selectModel", {"workspaceUri": workspace, "modelId": OPUS}
    )
    assert select is not None and select.code == 1001, f"selectModel: {select!r}"
    _, command = await outcome(
        session,
        "workspace/executeCommand",
        lsp.ExecuteCommandParams(command="switchboard.selectModel", arguments=[workspace, OPUS]),
    )
    assert command is not None and command.code == 1001, f"executeCommand: {command!r}"
    assert len(messages_sent(fake)) == sent_before, "the fake API received a request"


async def test_a_jwks_holding_only_a_symmetric_key_verifies_nothing(
    start_server: SessionFactory, fake_api: FakeAnthropic, tmp_path: Path, issuer: Issuer
) -> None:
    jwks = write_jwks(tmp_path / "trust" / "oct-only.json", [oct_jwk(OCT_SECRET, "oct-key")])
    forged = issuer.token("power", alg_override="HS256", hmac_secret=OCT_SECRET, kid="oct-key")
    session = await start_server(
        fake_api, init_options={"entitlement": forged}, SWITCHBOARD_TRUSTED_KEYS=str(jwks)
    )
    usage = await session.request("switchboard/usage", {})
    assert usage["plan"] == "free" and usage["planReason"].endswith("you are on Free")
    # A properly signed EdDSA token is not trusted either: the JWKS trusts no Ed25519 key at all.
    report = (await session.request("switchboard/signIn", {"token": issuer.token("power")}))["usage"]
    assert report["plan"] == "free" and "trusted" in report["planReason"].lower()
    refused = await session.error(
        "switchboard/chat", {"workspaceUri": session.workspace, "prompt": "hi", "modelId": OPUS}
    )
    assert refused.code == 1001
    assert messages_sent(fake_api) == []


OPUS_SPELLINGS = [
    OPUS_ANTHROPIC,
    "claude-opus-4-5",
    "CLAUDE-OPUS-4.5",
    " claude-opus-4.5",
    "claude-opus-4.5\u0000",
    "opus",
]


async def test_no_spelling_of_opus_gets_past_the_plan(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str
) -> None:
    session = await start_server(fake_api)
    problems: list[str] = []
    for model_id in OPUS_SPELLINGS:
        for method in ("switchboard/chat", "switchboard/selectModel", "switchboard/estimate"):
            params = {"workspaceUri": workspace, "prompt": "hi", "modelId": model_id}
            result, error = await outcome(session, method, params)
            if method == "switchboard/estimate":
                continue  # takes no model: it only must not call one
            if error is None or error.code not in (-32602, 1001):
                problems.append(f"{method} {model_id!r}: {error or result}")
    for model_id in OPUS_SPELLINGS:
        _, error = await outcome(
            session,
            "workspace/executeCommand",
            lsp.ExecuteCommandParams(
                command="switchboard.selectModel",
                arguments=[{"workspaceUri": workspace, "modelId": model_id}],
            ),
        )
        if error is None or error.code not in (-32602, 1001):
            problems.append(f"executeCommand selectModel {model_id!r}: {error}")
    assert not problems, "\n".join(problems)
    assert messages_sent(fake_api) == []


async def test_auto_retry_and_fallback_on_free_never_reach_opus(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str, issuer: Issuer
) -> None:
    """Auto's router, "retry with a stronger model" and the busy-model fallback all respect the plan,
    even when the client holds a forged Power token."""
    forged = issuer.token("power", alg_override="none")
    session = await start_server(
        fake_api,
        init_options={"entitlement": forged, "plan": "power"},
        SWITCHBOARD_TRUSTED_KEYS=str(issuer.paths.jwks),
        SWITCHBOARD_MAX_RETRIES="0",
    )
    assert (await session.request("switchboard/usage", {}))["plan"] == "free"
    hard = (
        "Design a linearizable distributed lock service with fencing tokens, prove its safety under "
        "partitions, then write the full implementation with tests and a formal TLA+ spec."
    )
    first = await session.chat(hard)
    answer = await session.chat(
        hard + " Go deeper.", conversationId=first["conversationId"], modelId="claude-haiku-4.5"
    )
    # Retry with a stronger model until the plan runs out of stronger models.
    turn_id = answer["turnId"]
    for _ in range(4):
        retried, error = await outcome(
            session,
            "switchboard/retry",
            {"workspaceUri": workspace, "conversationId": first["conversationId"], "turnId": turn_id},
        )
        if error is not None:
            assert error.code in (-32601, -32602), error  # not available / already the strongest allowed
            break
        turn_id = retried["turnId"]
    _, explicit = await outcome(
        session,
        "switchboard/retry",
        {
            "workspaceUri": workspace,
            "conversationId": first["conversationId"],
            "turnId": turn_id,
            "modelId": OPUS,
        },
    )
    assert explicit is not None and explicit.code in (-32601, -32602, 1001), explicit
    # Every model Auto may use on Free is busy: the fallback must not step up to Opus.
    fake_api.add_fault(Fault("status", status=529, count=None, model="claude-sonnet-4-5-20250929"))
    fake_api.add_fault(Fault("status", status=529, count=None, model="claude-sonnet-4-20250514"))
    fake_api.add_fault(Fault("status", status=529, count=None, model="claude-haiku-4-5-20251001"))
    _, busy = await outcome(session, "switchboard/chat", {"workspaceUri": workspace, "prompt": hard})
    assert busy is not None and busy.code == 1003, busy
    fake_api.clear_faults()
    sent = models_sent(fake_api)
    assert len(sent) >= 3 and not [m for m in sent if "opus" in m], sent


# --- the API key --------------------------------------------------------------------------------------


def _audit(server: RawServer, root: Path, secrets: list[str], label: str) -> list[str]:
    places = {f"{label} stdout (every frame)": bytes(server.stdout_bytes)}
    places.update({f"{label} file {p}": data for p, data in scan_disk(root).items()})
    return find_leaks(secrets, places)


def _force_internal_errors(server: RawServer) -> None:
    """Errors the server does not anticipate, through the protocol: each ends in a traceback in the server
    log and an error line in the editor's output channel (`window/logMessage`), never a pop-up (the scan
    below covers all three)."""

    def logged() -> int:
        return len([f for f in server.frames_with_method("window/logMessage") if f["params"]["type"] == 1])

    before = logged()
    server.notify("window/workDoneProgress/cancel", {"token": {"not": "hashable"}})
    server.notify("$/cancelRequest", {"id": {"not": "hashable"}})  # pygls raises on this one
    server.notify("$/cancelRequest", {})
    deadline = time.monotonic() + 5
    while logged() < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged() >= before + 1, "the malformed notification was not reported in the output channel"
    assert not server.frames_with_method("window/showMessage"), "an internal error popped up in the editor"
    assert "result" in server.call("switchboard/models", {}), "the server is not usable after internal errors"


def test_the_key_from_the_environment_never_leaks_even_when_rejected(
    tmp_path: Path, state_dir: Path, workspace: str
) -> None:
    with FakeAnthropic(api_key="other") as fake:
        # ANTHROPIC_LOG=debug makes the SDK log every request it builds: the scrubber must still hold.
        env = isolated_env(tmp_path, state_dir, fake, ANTHROPIC_API_KEY=CANARY_ENV, ANTHROPIC_LOG="debug")
        server = start_audited(tmp_path, env, workspace)
        try:
            rejected = server.call(
                "switchboard/chat", {"workspaceUri": workspace, "prompt": "hello", "workDoneToken": "t1"}
            )
            assert rejected["error"]["code"] == 1004 and "ANTHROPIC_API_KEY" in rejected["error"]["message"]
            conversation = server.result("switchboard/conversations", {"workspaceUri": workspace})
            for listed in conversation["conversations"]:
                server.result(
                    "switchboard/conversation", {"workspaceUri": workspace, "conversationId": listed["id"]}
                )
            server.result("switchboard/usage", {})
            server.result("switchboard/estimate", {"workspaceUri": workspace, "prompt": "hello"})
            _force_internal_errors(server)
            while_running = _audit(server, tmp_path, [CANARY_ENV], "while running:")
        finally:
            server.close()
        headers = [r.headers for r in fake.received() if r.path == "/v1/messages"]
    assert headers and CANARY_ENV in json.dumps(headers), "positive control: the key was sent upstream"
    leaks = while_running + _audit(server, tmp_path, [CANARY_ENV], "after exit:")
    leaks += find_leaks([CANARY_ENV], {"stderr": server.stderr})
    assert (state_dir / "logs" / "server.log").exists()
    assert not leaks, "\n".join(leaks)


def test_a_key_from_initialization_options_never_leaks_on_any_path(
    tmp_path: Path, state_dir: Path, workspace: str
) -> None:
    """Success, cancellation, an HTTP error after retries, a mid-stream error event, a 401, a dropped
    connection and internal errors: neither key reaches a log, the state directory, stderr or the client."""
    with FakeAnthropic(api_key=CANARY_INIT) as fake:
        env = isolated_env(
            tmp_path, state_dir, fake, ANTHROPIC_API_KEY=CANARY_ENV, SWITCHBOARD_MAX_RETRIES="1"
        )
        server = start_audited(tmp_path, env, workspace, init_options={"apiKey": CANARY_INIT})
        try:
            chat = {"workspaceUri": workspace, "modelId": "claude-haiku-4.5"}
            ok = server.result("switchboard/chat", {**chat, "prompt": "hello", "workDoneToken": "ok"})
            follow = {**chat, "conversationId": ok["conversationId"]}

            for fault, code in [
                (Fault("status", status=500, count=None), 1003),  # retried, then given up
                (Fault("error_event", after_deltas=1, count=None), 1003),
                (Fault("drop", after_deltas=1, count=None), 1003),
                (Fault("status", status=401, count=None), 1004),
            ]:
                fake.add_fault(fault)
                failed = server.call("switchboard/chat", {**follow, "prompt": f"fault {fault.kind}"})
                fake.clear_faults()
                assert failed["error"]["code"] == code, (fault, failed)

            server.request(
                "slow",
                "switchboard/chat",
                {**follow, "prompt": "[[fake:slow=0.05 words=200]] long", "workDoneToken": "c"},
            )
            server.wait_for_progress("c", lambda v: v.get("type") == "text", timeout=30)
            server.notify("$/cancelRequest", {"id": "slow"})
            assert server.wait_for("slow", timeout=30)["error"]["code"] == -32800

            opened = server.result(
                "switchboard/conversation",
                {"workspaceUri": workspace, **{"conversationId": ok["conversationId"]}},
            )
            assert {t["status"] for t in opened["turns"]} >= {"complete", "failed", "cancelled"}
            server.result("switchboard/conversations", {"workspaceUri": workspace})
            server.result("switchboard/usage", {})
            _force_internal_errors(server)
            while_running = _audit(server, tmp_path, [CANARY_INIT, CANARY_ENV], "while running:")
        finally:
            server.close()
        auth = [r.headers.get("authorization", "") + r.headers.get("x-api-key", "") for r in fake.received()]
    assert any(CANARY_INIT in a for a in auth), "positive control: the editor's key was used upstream"
    assert b"Traceback" in server.stderr, "no internal error was exercised"
    assert (state_dir / "logs" / "server.log").stat().st_size > 0
    leaks = while_running + _audit(server, tmp_path, [CANARY_INIT, CANARY_ENV], "after exit:")
    leaks += find_leaks([CANARY_INIT, CANARY_ENV], {"stderr": server.stderr})
    assert not leaks, "\n".join(leaks)


def test_an_upstream_error_that_echoes_the_key_is_redacted(
    tmp_path: Path, state_dir: Path, workspace: str
) -> None:
    """Some gateways (an `ANTHROPIC_BASE_URL` proxy) echo the key they refused in their error message. The
    server forwards upstream messages to the client and stores them with the turn: it must scrub the key."""
    with FakeAnthropic(api_key=CANARY_INIT) as fake:
        env = isolated_env(
            tmp_path, state_dir, fake, ANTHROPIC_API_KEY=CANARY_ENV, SWITCHBOARD_MAX_RETRIES="0"
        )
        server = start_audited(tmp_path, env, workspace, init_options={"apiKey": CANARY_INIT})
        try:
            chat = {"workspaceUri": workspace, "modelId": "claude-haiku-4.5"}
            fake.add_fault(Fault("status", status=400, message=f"Key {CANARY_INIT} may not use this model"))
            first = server.call("switchboard/chat", {**chat, "prompt": "a 400"})
            fake.add_fault(Fault("error_event", after_deltas=1, message=f"overloaded for key {CANARY_INIT}"))
            second = server.call("switchboard/chat", {**chat, "prompt": "mid-stream"})
            fake.add_fault(
                Fault("status", status=403, message=f"Authorization: Bearer {CANARY_INIT} refused")
            )
            third = server.call("switchboard/chat", {**chat, "prompt": "a 403"})
            assert [f["error"]["code"] for f in (first, second, third)] == [1003, 1003, 1003]
            for listed in server.result("switchboard/conversations", {"workspaceUri": workspace})[
                "conversations"
            ]:
                server.result(
                    "switchboard/conversation", {"workspaceUri": workspace, "conversationId": listed["id"]}
                )
            while_running = _audit(server, tmp_path, [CANARY_INIT, CANARY_ENV], "while running:")
        finally:
            server.close()
    leaks = while_running + _audit(server, tmp_path, [CANARY_INIT, CANARY_ENV], "after exit:")
    leaks += find_leaks([CANARY_INIT, CANARY_ENV], {"stderr": server.stderr})
    assert not leaks, "\n".join(leaks)


# --- state, ledger, workspaces and conversations -------------------------------------------------------


def test_nothing_the_client_sends_moves_the_state_directory_or_the_ledger(
    tmp_path: Path, state_dir: Path, workspace: str, issuer: Issuer
) -> None:
    evil = tmp_path / "outside" / "evil"
    attacker = Ed25519PrivateKey.generate()
    attacker_jwks = write_jwks(
        tmp_path / "outside" / "attacker" / "jwks.json", [public_jwk(attacker.public_key())]
    )
    attacker_token = sign_token(attacker, "power")
    moves = {
        key: str(evil / "x")
        for key in (
            "stateDir", "state_dir", "home", "SWITCHBOARD_HOME", "switchboardHome", "dataDir", "storagePath",
            "globalStoragePath", "logDir", "configDir", "SWITCHBOARD_CONFIG_DIR", "cwd",
        )
    }  # fmt: skip
    moves.update(
        ledger=str(evil / "ledger.sqlite3"),
        ledgerPath=str(evil / "ledger.sqlite3"),
        ledgerDb="../../outside/evil/ledger.sqlite3",
        conversationsDb=str(evil / "conversations.sqlite3"),
        database="file:" + str(evil / "db.sqlite3") + "?mode=rwc",
        SWITCHBOARD_TRUSTED_KEYS=str(attacker_jwks),
        trustedKeysFile=str(attacker_jwks),
        trustedKeys={"keys": [public_jwk(attacker.public_key())]},
        jwks={"keys": [public_jwk(attacker.public_key())]},
        env={"SWITCHBOARD_HOME": str(evil), "SWITCHBOARD_TRUSTED_KEYS": str(attacker_jwks)},
        settings={"switchboard": {"home": str(evil), "ledger": str(evil / "l.db")}},
        entitlement=attacker_token,
        plan="power",
        unknownOption={"nested": [1, None, "x" * 10_000]},
    )
    with FakeAnthropic() as fake:
        env = isolated_env(tmp_path, state_dir, fake, SWITCHBOARD_TRUSTED_KEYS=str(issuer.paths.jwks))
        before = tree(tmp_path, state_dir)
        server = start_audited(tmp_path, env, workspace, init_options=moves)
        try:
            server.notify("workspace/didChangeConfiguration", {"settings": {"switchboard": moves}})
            extras = {k: v for k, v in moves.items() if isinstance(v, str)}
            first = server.result(
                "switchboard/chat", {**extras, "workspaceUri": workspace, "prompt": "hello"}
            )
            # A second `initialize` (which LSP forbids) with the same options moves nothing either.
            server.call(
                "initialize",
                {"processId": None, "rootUri": (tmp_path / "outside").as_uri(), "capabilities": {},
                 "initializationOptions": moves},
            )  # fmt: skip
            server.result("switchboard/chat", {**extras, "workspaceUri": workspace, "prompt": "again",
                                               "conversationId": first["conversationId"]})  # fmt: skip
            usage = server.result("switchboard/usage", extras)
            assert usage["plan"] == "free"
            server.result("switchboard/setOverage", {**extras, "enabled": False})
            signed = server.result("switchboard/signIn", {**moves, "token": attacker_token})["usage"]
            assert signed["plan"] == "free" and "trusted" in signed["planReason"].lower()
            server.result("switchboard/models", extras)
            server.result("switchboard/estimate", {**extras, "workspaceUri": workspace, "prompt": "x"})
            server.result("switchboard/conversations", {**extras, "workspaceUri": workspace})
        finally:
            server.close()
    assert not evil.exists()
    assert tree(tmp_path, state_dir) == before, "files appeared outside the state directory"
    ledger = sqlite3.connect(state_dir / "ledger.sqlite3")
    try:
        charged = ledger.execute("SELECT COUNT(*), SUM(credits) FROM turns WHERE charged = 1").fetchone()
        assert charged[0] == 2 and charged[1] == round(usage["usedCredits"] * 100)
        assert ledger.execute("SELECT DISTINCT plan FROM turns").fetchall() == [("free",)]
    finally:
        ledger.close()
    assert (state_dir / "conversations.sqlite3").exists() and (state_dir / "logs" / "server.log").exists()


HOSTILE_WORKSPACES = [
    "../../etc",
    "../../../../../../etc/passwd",
    "file:///../../etc",
    "file:///../../../../etc/passwd",
    "file:///%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc",
    "file:///..%2f..%2f..%2fetc",
    "file:",
    "file://",
    "file:///",
    "/",
    "///",
    ".",
    "..",
    "untitled:",
    "untitled:Untitled-1",
    "vscode-remote://ssh-remote+host/../../root",
    "file:///C:/Windows/System32",
    "file:///c%3A/Windows/..",
    "C:\\Windows\\System32\\..\\..",
    "\\\\server\\share\\..",
    "file:///tmp/x\u0000/../../etc",
    "\u0000",
    "x" * 4096,
    "x" * 5000,
    "file:///' OR 1=1 --",
    "'; DROP TABLE conversations; --",
    '"; DROP TABLE conversations; --',
    "file:///x'); DROP TABLE workspaces; --",
    "%",
    "_",
    "*",
    "file:///%",
    "file:///tmp/%",
]


def _related(workspace: str) -> list[str]:
    """URIs near the legitimate workspace that name a different folder (or none)."""
    parent = workspace.rsplit("/", 1)[0]
    return [
        workspace + "/..",
        workspace + "/../other",
        workspace + "/%2e%2e",
        parent,
        parent + "/",
        workspace[:-1],
        workspace + "%",
        workspace + "_",
        workspace + "\u0000",
        workspace + "\u0000/../../etc",
        workspace.upper(),
        workspace + "/sub",
    ]


def test_workspace_uris_and_conversation_ids_cannot_escape_or_reach_another_workspace(
    tmp_path: Path, state_dir: Path, workspace: str
) -> None:
    other = (tmp_path / "other").as_uri()
    with FakeAnthropic() as fake:
        env = isolated_env(tmp_path, state_dir, fake)
        server = start_audited(tmp_path, env, workspace)
        try:
            alpha = server.result(
                "switchboard/chat", {"workspaceUri": workspace, "prompt": "ALPHA-SECRET plan"}
            )
            server.result(
                "switchboard/selectModel", {"workspaceUri": workspace, "modelId": "claude-haiku-4.5"}
            )
            bravo = server.result("switchboard/chat", {"workspaceUri": other, "prompt": "BRAVO-SECRET plan"})
            private = {alpha["conversationId"], alpha["turnId"], bravo["conversationId"], bravo["turnId"]}
            before = tree(tmp_path, state_dir)

            problems: list[str] = []
            for uri in [*HOSTILE_WORKSPACES, *_related(workspace)]:
                problems += _probe_workspace(server, uri, alpha, private)
            problems += _probe_conversation_ids(server, workspace, other, alpha, bravo)

            # The same folder spelled with trailing slashes is the same workspace (and only that).
            for same in (workspace + "/", workspace + "//"):
                listed = server.result("switchboard/conversations", {"workspaceUri": same})["conversations"]
                if [c["id"] for c in listed] != [alpha["conversationId"]]:
                    problems.append(f"{same!r} is the same folder but lists {listed}")
            listed = server.result("switchboard/conversations", {"workspaceUri": workspace})["conversations"]
            assert [c["id"] for c in listed] == [alpha["conversationId"]] and listed[0]["turnCount"] == 2
            opened = server.result(
                "switchboard/conversation", {"workspaceUri": other, "conversationId": bravo["conversationId"]}
            )
            assert "BRAVO-SECRET" in opened["turns"][0]["text"] and opened["turns"][1]["status"] == "complete"
            assert (
                server.result("switchboard/models", {"workspaceUri": workspace})["selected"]
                == "claude-haiku-4.5"
            )
        finally:
            server.close()
    assert not problems, "\n".join(problems)
    leaked = [b for b in messages_sent(fake) if "ALPHA-SECRET" in json.dumps(b)]
    assert len(leaked) == 1, "ALPHA's conversation was sent upstream from another workspace"
    assert tree(tmp_path, state_dir) == before, "files appeared outside the state directory"
    _assert_state_dir_is_sane(state_dir)


def _probe_workspace(server: RawServer, uri: str, alpha: dict[str, Any], private: set[str]) -> list[str]:
    """Every request that takes a workspace, with a hostile one: a clean result or a clean error, and
    never another workspace's data."""
    conversation = {"workspaceUri": uri, "conversationId": alpha["conversationId"]}
    # (method, params, whether it must be refused): refusals are 1005 (or -32601 for a method not there).
    calls: list[tuple[str, dict[str, Any], bool]] = [
        ("switchboard/conversations", {"workspaceUri": uri}, False),
        ("switchboard/conversation", conversation, True),
        ("switchboard/deleteConversation", conversation, True),
        ("switchboard/estimate", {**conversation, "prompt": "x"}, True),
        ("switchboard/chat", {**conversation, "prompt": "continue"}, True),
        ("switchboard/retry", {**conversation, "turnId": alpha["turnId"]}, True),
        ("switchboard/models", {"workspaceUri": uri}, False),
        ("switchboard/selectModel", {"workspaceUri": uri, "modelId": "claude-sonnet-4.0"}, False),
        ("workspace/executeCommand", {"command": "switchboard.newConversation", "arguments": [uri]}, False),
        ("switchboard/chat", {"workspaceUri": uri, "prompt": "hello from a hostile workspace"}, False),
    ]
    problems: list[str] = []
    for method, params, must_refuse in calls:
        frame = server.call(method, params, timeout=30)
        text = json.dumps(frame)
        where = f"{method} workspaceUri={uri[:60]!r}"
        if "error" in frame:
            # -32602: the URI itself is refused as invalid, which is fine.
            allowed = (1005, -32601, -32602) if must_refuse else (-32602,)
            if frame["error"]["code"] not in allowed:
                problems.append(f"{where}: unexpected error {frame['error']}")
        elif must_refuse:
            problems.append(f"{where}: answered {text[:200]} instead of refusing")
        # Ids the request itself named may be echoed in the refusal; anything else private is a leak.
        sent = json.dumps(params)
        if any(s in text and s not in sent for s in (*private, "ALPHA-SECRET", "BRAVO-SECRET")):
            problems.append(f"{where}: another workspace's data in {text[:200]}")
    return problems


def _probe_conversation_ids(
    server: RawServer, workspace: str, other: str, alpha: dict[str, Any], bravo: dict[str, Any]
) -> list[str]:
    real = alpha["conversationId"]
    hostile_ids = [
        "' OR 1=1 --",
        "' OR '1'='1",
        '" OR ""="',
        "x'; DROP TABLE turns; --",
        "%",
        "_",
        "*",
        "../" + real,
        "../../conversations.sqlite3",
        "/etc/passwd",
        "C:\\Windows\\win.ini",
        real + "' OR 1=1 --",
        real + "\u0000",
        real.upper(),
        " " + real,
        real[:-1] + "%",
        bravo["conversationId"],  # another workspace's conversation, by its real id
    ]
    problems: list[str] = []
    for conversation_id in hostile_ids:
        params = {"workspaceUri": workspace, "conversationId": conversation_id}
        calls = [
            ("switchboard/conversation", params),
            ("switchboard/deleteConversation", params),
            ("switchboard/estimate", {**params, "prompt": "x"}),
            ("switchboard/chat", {**params, "prompt": "continue"}),
            ("switchboard/retry", {**params, "turnId": bravo["turnId"]}),
        ]
        for method, call_params in calls:
            frame = server.call(method, call_params, timeout=30)
            code = frame.get("error", {}).get("code")
            if code not in (1005, -32602, -32601):
                problems.append(
                    f"{method} id={conversation_id!r}: expected 1005, got {json.dumps(frame)[:200]}"
                )
            if "BRAVO-SECRET" in json.dumps(frame):
                problems.append(f"{method} id={conversation_id!r}: BRAVO's conversation reached workspace A")
    # And the other way round: workspace B cannot name A's conversation, nor retry A's turn.
    for method, params in [
        ("switchboard/conversation", {"workspaceUri": other, "conversationId": real}),
        ("switchboard/retry", {"workspaceUri": other, "conversationId": real, "turnId": alpha["turnId"]}),
        ("switchboard/chat", {"workspaceUri": other, "conversationId": real, "prompt": "continue"}),
        ("switchboard/deleteConversation", {"workspaceUri": other, "conversationId": real}),
    ]:
        frame = server.call(method, params, timeout=30)
        if frame.get("error", {}).get("code") not in (1005, -32601):
            problems.append(f"{method} from workspace B on A's conversation: {json.dumps(frame)[:200]}")
    return problems


def _assert_state_dir_is_sane(state_dir: Path) -> None:
    """Both databases intact; no file in the state directory is named after anything a client sent."""
    conversations = sqlite3.connect(state_dir / "conversations.sqlite3")
    try:
        assert conversations.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {
            row[0] for row in conversations.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert {"workspaces", "conversations", "turns"} <= tables
        assert conversations.execute("SELECT COUNT(*) FROM turns").fetchone()[0] > 0
    finally:
        conversations.close()
    ledger = sqlite3.connect(state_dir / "ledger.sqlite3")
    try:
        assert ledger.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert ledger.execute("SELECT COUNT(*) FROM turns").fetchone()[0] > 0
    finally:
        ledger.close()
    for path in state_dir.rglob("*"):
        name = path.name
        assert all(ch.isalnum() or ch in "._-" for ch in name), f"odd file in the state directory: {path}"
        assert not any(
            marker in name.lower() for marker in ("etc", "passwd", "drop", "windows", "untitled")
        ), path


async def test_sql_metacharacters_in_prompts_and_titles_are_stored_verbatim(
    start_server: SessionFactory, fake_api: FakeAnthropic, workspace: str, state_dir: Path
) -> None:
    """The conversation title comes from the prompt: quotes and SQL in it are data, never SQL."""
    prompts = ["'; DROP TABLE conversations; --", 'Robert"); DELETE FROM turns; --', "%' OR '1'='1"]
    session = await start_server(fake_api)
    conversation_ids = [(await session.chat(prompt))["conversationId"] for prompt in prompts]
    listed = (await session.request("switchboard/conversations", {"workspaceUri": workspace}))[
        "conversations"
    ]
    assert sorted(c["title"] for c in listed) == sorted(prompts)
    for conversation_id, prompt in zip(conversation_ids, prompts, strict=True):
        opened = await session.request(
            "switchboard/conversation", {"workspaceUri": workspace, "conversationId": conversation_id}
        )
        assert opened["turns"][0]["text"] == prompt and opened["turns"][1]["status"] == "complete"
    db = sqlite3.connect(state_dir / "conversations.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 6
    finally:
        db.close()


# --- internal errors ----------------------------------------------------------------------------------


async def test_an_internal_error_answers_with_a_reference_not_a_traceback(
    start_server: SessionFactory, fake_api: FakeAnthropic, state_dir: Path
) -> None:
    """A corrupt conversation database is a fault nothing anticipates: the client gets `-32603` with a
    reference it can quote, the server log gets the traceback under the same reference, and the server
    goes on serving what does not need that database."""
    session = await start_server(fake_api)
    await session.chat("hello", modelId="claude-haiku-4.5")
    for path in state_dir.glob("conversations.sqlite3*"):
        path.write_bytes(b"this is not a database " * 512)

    error = await session.error("switchboard/conversations", {"workspaceUri": session.workspace})

    assert error.code == -32603
    reference = error.data["reference"]
    assert error.data == {"reference": reference} and len(reference) == 8
    assert f"reference {reference}" in error.message
    answer = json.dumps({"message": error.message, "data": error.data})
    assert "Traceback" not in answer and str(state_dir) not in answer and ".py" not in answer
    assert "plan" in await session.request("switchboard/usage", {})
    log = (state_dir / "logs" / "server.log").read_text(encoding="utf-8")
    assert reference in log and "Traceback" in log
