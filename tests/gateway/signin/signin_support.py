"""Sign-in test helpers: an OAuth client over HTTP, a browser filling in /device, accounts."""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import psycopg
from psycopg.rows import dict_row

from gateway.gateway_support import Replica, access_lines, whole_lines
from switchboard.gateway import accounts

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
VSCODE = "switchboard-vscode"
PASSWORD = "correct horse battery"
# The replica without trusted proxies is configured with this device-authorization limit per address.
EXPOSED_DEVICE_AUTHORIZATIONS = 3


def new_address() -> str:
    """A client address of the test's own (198.18.0.0/15 is for benchmarking, never routed)."""
    return f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"


class OAuthClient:
    """An OAuth client on one address, which the trusted proxy in front of the replica reports."""

    def __init__(self, base_url: str, address: str | None = None, client_id: str = VSCODE) -> None:
        self.base_url, self.client_id = base_url, client_id
        self.address = address or new_address()
        self.http = httpx2.Client(base_url=base_url, timeout=10, headers={"x-forwarded-for": self.address})

    def post(self, path: str, **form: str) -> httpx2.Response:
        return self.http.post(path, data=form)

    def start(self, scope: str | None = None) -> dict[str, Any]:
        form = (
            {"client_id": self.client_id} if scope is None else {"client_id": self.client_id, "scope": scope}
        )
        response = self.post("/oauth/device_authorization", **form)
        assert response.status_code == 200, response.text
        return response.json()

    def poll(self, device_code: str, client_id: str | None = None) -> httpx2.Response:
        return self.post(
            "/oauth/token",
            grant_type=DEVICE_GRANT,
            device_code=device_code,
            client_id=client_id or self.client_id,
        )

    def refresh(self, refresh_token: str, scope: str | None = None) -> httpx2.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.client_id}
        return self.post("/oauth/token", **(form if scope is None else {**form, "scope": scope}))

    def close(self) -> None:
        self.http.close()


class Browser:
    """A person at the /device page: a cookie jar, the real form, its CSRF token."""

    def __init__(self, base_url: str, address: str | None = None) -> None:
        self.address = address or new_address()
        self.http = httpx2.Client(base_url=base_url, timeout=10, headers={"x-forwarded-for": self.address})

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def open(self, user_code: str | None = None) -> httpx2.Response:
        params = {"user_code": user_code} if user_code is not None else None
        return self.http.get("/device", params=params)

    def sign_in(self, user_code: str, email: str, password: str = PASSWORD) -> httpx2.Response:
        """Step one: open the page (with the code in its link), fill in the email and password, Continue.
        A pending code answers with the confirmation (`confirm`); anything else with the form again."""
        page = self.open(user_code)
        assert page.status_code == 200, page.text
        form = {
            "csrf_token": csrf_token(page.text),
            "user_code": field_value(page.text, "user_code"),
            "email": email,
            "password": password,
            "action": "sign_in",
        }
        return self.http.post("/device", data=form)

    def confirm(self, confirmation_page: httpx2.Response, action: str = "approve") -> httpx2.Response:
        """Step two: Approve or Deny on the confirmation page."""
        html = confirmation_page.text
        form = {
            "csrf_token": csrf_token(html),
            "confirmation": field_value(html, "confirmation"),
            "action": action,
        }
        return self.http.post("/device", data=form)

    def submit(
        self, user_code: str, email: str, password: str = PASSWORD, action: str = "approve"
    ) -> httpx2.Response:
        """Both steps, as a person does them: the answer to the second, or to the first if it refused."""
        signed_in = self.sign_in(user_code, email, password)
        if signed_in.status_code != 200 or 'name="confirmation"' not in signed_in.text:
            return signed_in
        return self.confirm(signed_in, action)


def csrf_token(html: str) -> str:
    return field_value(html, "csrf_token")


def field_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


@dataclass
class Person:
    id: str
    email: str


class SignInAccounts:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    async def create(self, plan: str = "pro", email: str | None = None) -> Person:
        email = email or f"person-{uuid.uuid4().hex[:12]}@example.test"
        async with await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True, row_factory=dict_row
        ) as conn:
            account = await accounts.create_account(conn, email, PASSWORD, plan)
        return Person(account.id, email)

    async def execute(self, statement: Any, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        async with await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True, row_factory=dict_row
        ) as conn:
            cursor = await conn.execute(statement, params)
            return list(await cursor.fetchall()) if cursor.description else []


def settled_log(replica: Replica, expected: str, timeout: float = 30) -> str:
    """The replica's log once `expected` is in it (the access line is written just after the answer)."""
    return _log_once(replica, lambda text: expected in text, timeout)


def settled_access_log(
    replica: Replica, expected: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> str:
    """The replica's log once an access line satisfies `expected`. Replicas are shared by the session's
    tests, so a line any test could have written (a revocation's 200) does not say this test's has come."""
    return _log_once(replica, lambda text: any(expected(line) for line in access_lines(text)), timeout)


def _log_once(replica: Replica, ready: Callable[[str], bool], timeout: float) -> str:
    """The replica's log, up to its last whole line, once `ready` says so (or at `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        text = whole_lines(replica.log())
        if ready(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.05)
