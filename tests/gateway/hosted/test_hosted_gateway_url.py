"""The gateway URL the server accepts: https anywhere, plain http only to this machine. Tokens and the
user's password travel to the gateway, so the server (which every client starts with the URL: VS Code's
setting, Neovim's opt, `switchboard chat --gateway`) refuses the rest with a message that says why.

And only a plain URL that every parser reads alike: the VS Code client names the SecretStorage key of a
refresh token by the URL as WHATWG URL reads it, while httpx picks the host the token is posted to. The
cases both sides are tested against are in tests/fixtures/gateway_urls.json (the client's
test/unit/account.test.ts reads the same file)."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import server_env
from gateway.hosted.hosted_support import HostedGateway
from rawlsp import RawServer
from switchboard.config import GATEWAY_ENV, Settings, canonical_gateway_url, gateway_url_problem
from switchboard.hosted.gateway_http import GatewayHttp, GatewayUnreachable
from switchboard.providers.base import UpstreamError
from test_terminal import ChatProcess

REFUSED = [
    "http://gateway.example.com",
    "http://10.0.0.7:8080",
    "http://192.168.1.2",
    "http://127.0.0.1.nip.io",  # a name that merely starts like a loopback address
    "http://[::2]:8080",
    "ftp://127.0.0.1",
    "gateway.example.com",
]
ACCEPTED = [
    "https://gateway.example.com",
    "https://10.0.0.7:8443/base",
    "http://127.0.0.1:8000",
    "http://127.9.9.9",
    "http://localhost:8000",
    "http://LOCALHOST",
    "http://[::1]:8000",
]


SHARED = json.loads((Path(__file__).parents[2] / "fixtures" / "gateway_urls.json").read_text())
# The reviewer's URL: WHATWG URL reads the host before the backslash (the real gateway's key), httpx
# the one after it.
CONFUSED = "https://cloud.example.com\\@attacker.example/.."


@pytest.mark.parametrize(("url", "canonical", "host"), SHARED["accepted"])
def test_a_plain_url_is_used_in_the_canonical_form_the_client_keys_by(
    url: str, canonical: str, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert canonical_gateway_url(url) == (canonical, None)
    monkeypatch.setenv(GATEWAY_ENV, url)
    settings = Settings.from_env()
    assert (settings.gateway_url, settings.gateway_url_refused) == (canonical, None)
    # The host a token is posted to is the host the client's key names.
    assert httpx2.URL(canonical + "/.well-known/oauth-authorization-server").host == host


@pytest.mark.parametrize("url", SHARED["refused"])
def test_a_url_parsers_may_read_differently_is_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    canonical, problem = canonical_gateway_url(url)
    assert canonical is None and problem
    if "\0" in url:
        return  # no environment variable can hold it
    monkeypatch.setenv(GATEWAY_ENV, url)
    settings = Settings.from_env()
    assert settings.gateway_url is None and settings.gateway_url_refused == problem


def test_the_reviewers_url_would_have_sent_the_token_elsewhere() -> None:
    """Why the rules exist: read as it was, the URL's host differs between the two parsers."""
    assert httpx2.URL(CONFUSED + "/.well-known/oauth-authorization-server").host == "attacker.example"
    assert CONFUSED in SHARED["refused"]
    assert "backslash" in (gateway_url_problem(CONFUSED) or "")


@pytest.mark.parametrize("url", REFUSED)
def test_non_https_urls_to_other_hosts_are_refused_with_the_reason(url: str) -> None:
    problem = gateway_url_problem(url)
    assert problem is not None and "https://" in problem


@pytest.mark.parametrize("url", ACCEPTED)
def test_https_anywhere_and_http_to_loopback_are_accepted(url: str) -> None:
    assert gateway_url_problem(url) is None


def test_the_server_refuses_a_plain_http_gateway_and_says_why(ls_env: dict[str, str], workspace: str) -> None:
    server = RawServer({**ls_env, "SWITCHBOARD_GATEWAY_URL": "http://gateway.example.com:8080"})
    try:
        server.initialize(workspace)
        frame = server.call("switchboard/signIn", {})  # no device flow is started: no request leaves
        error = frame.get("error")
        assert error is not None, frame
        assert error["code"] == 1004 and error["data"]["reason"] == "no_gateway"
        assert "unencrypted" in error["message"] and "https://" in error["message"]
        shown = [f["params"]["message"] for f in server.frames_with_method("window/showMessage")]
        assert any("gateway.example.com" in message and "https://" in message for message in shown), shown
        usage = server.result("switchboard/usage", {})
        assert usage["accountInfo"]["mode"] == "local" and usage["accountInfo"].get("gatewayUrl") is None
        assert server.frames_with_method("switchboard/signInCode") == []
    finally:
        server.close()


def test_the_server_refuses_a_url_whose_host_parsers_disagree_on(tmp_path: Path, workspace: str) -> None:
    """No gateway runs here: a refused URL is never asked anything."""
    server = RawServer(server_env(tmp_path / "state", None, SWITCHBOARD_GATEWAY_URL=CONFUSED))
    try:
        server.initialize(workspace)
        frame = server.call("switchboard/signIn", {"refreshToken": "sbr_not_sent"})
        error = frame.get("error")
        assert error is not None, frame
        assert error["code"] == 1004 and error["data"]["reason"] == "no_gateway"
        assert "backslash" in error["message"]
        shown = [f["params"]["message"] for f in server.frames_with_method("window/showMessage")]
        assert any("backslash" in message for message in shown), shown
        assert server.result("switchboard/usage", {})["accountInfo"].get("gatewayUrl") is None
    finally:
        server.close()


def test_the_server_accepts_a_loopback_http_gateway(
    ls_env: dict[str, str], workspace: str, hosted: HostedGateway
) -> None:
    """The control: the same check lets the test gateway's http://127.0.0.1 (and localhost) through."""
    local = hosted.url.replace("127.0.0.1", "localhost")
    server = RawServer(
        {**ls_env, "SWITCHBOARD_GATEWAY_URL": local.replace("http://localhost", "HTTP://LocalHost") + "/"}
    )
    try:
        server.initialize(workspace)
        usage = server.result("switchboard/usage", {})
        assert usage["accountInfo"]["gatewayUrl"] == local  # canonical: lower case, no trailing slash
        shown = [f["params"]["message"] for f in server.frames_with_method("window/showMessage")]
        assert not any("unencrypted" in message for message in shown), shown
    finally:
        server.close()


def test_switchboard_chat_gateway_gets_the_servers_answer(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_"))}
    env.update(
        SWITCHBOARD_HOME=str(tmp_path / "state"),
        PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
        XDG_DATA_HOME=str(tmp_path / "keyring-data"),
        PYTHONUNBUFFERED="1",
    )
    project = tmp_path / "project"
    project.mkdir()
    chat = ChatProcess(["--gateway", "http://gateway.example.com", "--workspace", str(project)], env)
    try:
        chat.send("/signin")
        chat.expect(r"sign-in tokens would cross the network unencrypted", timeout=20)
        assert chat.finish() == 0
    finally:
        chat.kill()


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def plain_http() -> Iterator[int]:
    """A plain HTTP server on 127.0.0.1 (its port): a gateway address given as https:// by mistake."""
    yield from _serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet))


def _serving(server: http.server.ThreadingHTTPServer) -> Iterator[int]:
    """Serve on a thread of its own while the fixture lasts (its port), then shut down."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def self_signed(tmp_path: Path) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 (its port) whose certificate nobody trusts: it signed it itself."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    loopback = ipaddress.ip_address("127.0.0.1")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(loopback)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from _serving(server)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def unreachable_because(url: str) -> str:
    http = GatewayHttp(url)
    try:
        with pytest.raises(GatewayUnreachable) as caught:
            await http.endpoints()
        return str(caught.value)
    finally:
        await http.close()


async def test_a_tls_failure_is_named_apart_from_a_gateway_that_does_not_answer(
    plain_http: int, self_signed: int
) -> None:
    """https:// at a plain HTTP server, and a certificate nobody trusts: a TLS handshake that failed, with
    its reason, not "did not answer" (which says nothing listens there)."""
    not_https = await unreachable_because(f"https://127.0.0.1:{plain_http}")
    assert "TLS handshake failed" in not_https and "may not speak HTTPS" in not_https, not_https
    assert f"https://127.0.0.1:{plain_http}" in not_https and "did not answer" not in not_https
    untrusted = await unreachable_because(f"https://127.0.0.1:{self_signed}")
    assert "TLS handshake failed" in untrusted and "self-signed certificate" in untrusted, untrusted
    # The control: nothing listening is still "did not answer", not a TLS failure.
    nothing = await unreachable_because(f"https://127.0.0.1:{unused_port()}")
    assert "did not answer (ConnectError)" in nothing and "TLS" not in nothing, nothing


def test_signing_in_to_a_plain_http_gateway_given_as_https_says_the_tls_handshake_failed(
    tmp_path: Path, workspace: str, plain_http: int
) -> None:
    url = f"https://127.0.0.1:{plain_http}"
    server = RawServer(server_env(tmp_path / "state", None, SWITCHBOARD_GATEWAY_URL=url))
    try:
        server.initialize(workspace)
        frame = server.call("switchboard/signIn", {})
        error = frame.get("error")
        assert error is not None, frame
        assert error["code"] == 1004 and error["data"]["reason"] == "unreachable", error
        assert "TLS handshake failed" in error["message"] and url in error["message"], error
        assert "did not answer" not in error["message"], error
        assert server.frames_with_method("switchboard/signInCode") == []
    finally:
        server.close()


async def test_a_chat_whose_tls_handshake_failed_says_so(plain_http: int) -> None:
    """The chat's connection error (the SDK's, from httpx's) is classified the same way."""
    from switchboard.hosted.provider import _classify  # pyright: ignore[reportPrivateUsage]
    from switchboard.providers.base import StreamState

    async with httpx2.AsyncClient() as client:
        with pytest.raises(httpx2.ConnectError) as caught:
            await client.post(f"https://127.0.0.1:{plain_http}/v1/messages")
    error = _classify(caught.value, StreamState())
    assert isinstance(error, UpstreamError) and error.retryable and error.type == "connection_error"
    assert "TLS handshake failed" in error.message and "before answering" in error.message, error.message
