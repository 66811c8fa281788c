"""The browser pages: /device (enter a code, sign in, approve or deny), and what every page shares (the
headers, rendering, CSRF and the password check; /account is in `account_pages`). Plain HTML forms, no
script, nothing loaded from elsewhere, a strict Content-Security-Policy.

CSRF: a double-submit token. The GET sets a random token in an HttpOnly, SameSite=Strict cookie and in the
form; a POST whose two copies differ is refused. Another site can neither read the cookie nor make the
browser send it with a cross-site POST.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..accounts import Account, find_account_by_email, get_account, normalize_email, password_matches
from ..service import Gateway
from . import browser, device, ratelimit
from .clients import client_name
from .codes import display_user_code, normalize_user_code
from .confirmations import CONFIRMATION_SECONDS, Confirmations
from .forms import FormError, client_address, read_form

log = logging.getLogger("switchboard.gateway.signin")

CSS = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}"
    "main{max-width:34rem;margin:2rem auto;padding:0 1rem}"
    ".brand{font-weight:600;color:#444}"
    "label{display:block;font-weight:600;margin-top:1rem}"
    "input{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #767676;"
    "border-radius:4px}"
    "#user_code{font-family:ui-monospace,monospace;letter-spacing:.15em;text-transform:uppercase}"
    "input:focus,button:focus{outline:3px solid #1a5fb4;outline-offset:2px}"
    ".hint{margin:.25rem 0 0;color:#555;font-size:.9rem}"
    ".actions{margin-top:1.5rem;display:flex;gap:1rem}"
    "button{font:inherit;padding:.5rem 1.25rem;border-radius:4px;border:1px solid #1a5fb4;"
    "background:#1a5fb4;color:#fff;cursor:pointer}"
    "button.secondary{background:#fff;color:#1a5fb4}"
    ".error{color:#a51d2d;font-weight:600}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;padding:.4rem;border-bottom:1px solid #ccc}"
    "caption{text-align:left;color:#555}code{font-family:ui-monospace,monospace}"
)
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
_TEMPLATES = Environment(
    loader=PackageLoader("switchboard.gateway.signin", "templates"), autoescape=select_autoescape(["html"])
)
# Verifying against this hash when the email is unknown makes a wrong email cost as long as a wrong password.
_DUMMY_HASH = PasswordHasher().hash(secrets.token_hex(16))


def render(
    name: str, status: int = 200, headers: dict[str, str] | None = None, **values: Any
) -> HTMLResponse:
    html = _TEMPLATES.get_template(name).render(css=CSS, **values)
    return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def secure_pages(gateway: Gateway) -> bool:
    """Whether the pages are served over https: their cookies are then Secure and `__Host-` prefixed (which
    also stops a sibling subdomain from planting them)."""
    return gateway.settings.public_base_url.startswith("https://")


# --- CSRF ---------------------------------------------------------------------------------------------


def csrf_cookie_name(gateway: Gateway) -> str:
    return "__Host-switchboard_csrf" if secure_pages(gateway) else "switchboard_csrf"


def csrf_token_for(request: Request, gateway: Gateway) -> str:
    existing = request.cookies.get(csrf_cookie_name(gateway), "")
    return existing if len(existing) == 43 else secrets.token_urlsafe(32)


def with_csrf_cookie(response: Response, gateway: Gateway, token: str) -> Response:
    response.set_cookie(
        csrf_cookie_name(gateway),
        token,
        httponly=True,
        samesite="strict",
        secure=secure_pages(gateway),
        path="/",
    )
    return response


def same_token(expected: str, presented: str) -> bool:
    """A constant-time comparison of a CSRF token (as bytes: `hmac.compare_digest` raises on text that is
    not ASCII, which a forged form may send)."""
    return hmac.compare_digest(expected.encode(), presented.encode())


# --- The browser session (`browser`), which signing in on /account or /device starts --------------------


def session_cookie_name(gateway: Gateway) -> str:
    return "__Host-switchboard_session" if secure_pages(gateway) else "switchboard_session"


def with_session_cookie(response: Response, gateway: Gateway, session_id: str, seconds: int) -> Response:
    response.set_cookie(
        session_cookie_name(gateway),
        session_id,
        max_age=seconds,
        path="/",
        secure=secure_pages(gateway),
        httponly=True,
        samesite="lax",
    )
    return response


def without_session_cookie(response: Response, gateway: Gateway) -> Response:
    response.delete_cookie(
        session_cookie_name(gateway), path="/", secure=secure_pages(gateway), httponly=True
    )
    return response


# --- /device -----------------------------------------------------------------------------------------
#
# Two steps. (1) The code, the email and the password: checked in that order (the per-address limit, the
# code's shape, the password, the per-account limit on wrong codes), and only then is the code looked up. A
# pending code answers with (2) the confirmation: which program asks to sign in, what it could do, and Approve
# or Deny, which post a confirmation ticket (`confirmations`) instead of the password. Step one signs the
# browser in (the /account page's session), and a ticket decides nothing once that session has ended (signed
# out on /account, which the page links to, or by the operator; or expired). Nothing about a code is
# shown to anyone who has not signed in, so the page is no oracle for guessing codes (RFC 8628 §5.1), and a
# person sent a link sees what it asks for before deciding (§3.3, §5.4).


async def device_page(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    if request.method == "POST":
        return await _device_post(request, gateway)
    token = csrf_token_for(request, gateway)
    typed = request.query_params.get("user_code", "")[:20]
    compact = normalize_user_code(typed)
    shown = display_user_code(compact) if compact else typed
    page = render("device.html", title="Sign in a device", csrf_token=token, user_code=shown, email="")
    return with_csrf_cookie(page, gateway, token)


# What each scope lets the signed-in program do, as the confirmation says it (RFC 8628 §5.4: a person sent a
# link with the code filled in should see what they would grant, and to whom).
SCOPE_WORDS = {
    "chat": "send chats to Claude that use your credits, and see your usage",
    "billing": "turn overage on or off and change its spending budget",
}


@dataclass(frozen=True)
class Attempt:
    user_code: str
    email: str
    password: str


class Refusal(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


async def _device_post(request: Request, gateway: Gateway) -> Response:
    cookie_token = request.cookies.get(csrf_cookie_name(gateway), "")
    try:
        form = await read_form(request)
    except FormError as error:
        message = f"The form was unreadable: {error}."
        return render("message.html", 400, title="Something went wrong", message=message)
    if not cookie_token or not same_token(cookie_token, form.get("csrf_token", "")):
        return render(
            "message.html",
            403,
            title="Please try again",
            message="This form expired or came from another site. Open the sign-in page again.",
        )
    if "confirmation" in form:
        return await _device_decide(request, gateway, cookie_token, form)
    attempt = Attempt(form.get("user_code", ""), form.get("email", "").strip(), form.get("password", ""))
    try:
        account, compact, asking = await _sign_in_for_code(request, gateway, attempt)
    except Refusal as refusal:
        return _device_refused(request, refusal, cookie_token, attempt.user_code, attempt.email)
    request.state.account = account.id
    request.state.device_result = "confirming"
    session_id, started, lasts = await _browser_session(request, gateway, account.id)
    confirmation = confirmations(gateway).issue(cookie_token, session_id, account.id, compact, started)
    page = render(
        "device_confirm.html",
        title="Approve this sign-in?",
        csrf_token=cookie_token,
        confirmation=confirmation,
        user_code=display_user_code(compact),
        email=account.email,
        asking=asking,
    )
    return with_session_cookie(page, gateway, session_id, lasts)


async def _browser_session(request: Request, gateway: Gateway, account_id: str) -> tuple[str, bool, int]:
    """The browser's live session if it is this account's, made to last at least as long as a confirmation
    (one started 200 s ago by another /device sign-in would otherwise end before the ticket); else a new
    one, living as long as a confirmation (a session of another account this browser had ends: the browser
    is this account's now). Whether it is new (started for this confirmation), and the seconds it has left
    (for its cookie, set again: a reused session's cookie may end sooner)."""
    present = request.cookies.get(session_cookie_name(gateway), "")
    async with gateway.pool.connection() as conn:
        if present:
            lasts = await browser.extend(conn, present, account_id, CONFIRMATION_SECONDS)
            if lasts is not None:
                return present, False, lasts
            await browser.end(conn, present)
        return await browser.start(conn, account_id, CONFIRMATION_SECONDS), True, CONFIRMATION_SECONDS


def _device_refused(
    request: Request, refusal: Refusal, csrf_token: str, user_code: str, email: str
) -> Response:
    headers = {"retry-after": str(refusal.retry_after)} if refusal.retry_after else None
    request.state.device_result = "refused"
    return render(
        "device.html",
        refusal.status,
        headers,
        title="Sign in a device",
        error=refusal.message,
        csrf_token=csrf_token,
        user_code=user_code[:20],
        email=email[:320],
    )


async def _sign_in_for_code(
    request: Request, gateway: Gateway, attempt: Attempt
) -> tuple[Account, str, dict[str, Any]]:
    """Step one: check the limits, the password and then the code; the account, the compact code and what
    the pending code asks for. Raises `Refusal`."""
    rules = ratelimit.rules_for(gateway.settings.rate_limits)
    await limit_address(gateway, rules.device_form_per_address, request)
    compact = normalize_user_code(attempt.user_code)
    if compact is None:
        raise Refusal(400, "That is not a code: it has eight letters, like BCDF-GHJK.")
    failures = rules.password_failures_per_account
    account = await verified_account(gateway, attempt.email, attempt.password, failures)
    wrong_codes = rules.user_code_failures_per_account
    async with gateway.pool.connection() as conn:
        # Counted as a wrong code before the lookup and given back when the code is pending, as passwords
        # are: guesses sent at once cannot all pass the limit before any of them is counted.
        try:
            await ratelimit.hit(conn, wrong_codes, account.id)
        except ratelimit.RateLimited as limited:
            raise too_many(limited) from None
        found = await device.pending(conn, compact)
        if found is None:
            raise Refusal(400, _UNKNOWN_CODE)
        await ratelimit.give_back(conn, wrong_codes, account.id)
    grants = [SCOPE_WORDS[scope] for scope in SCOPE_WORDS if scope in found.scope.split()]
    name = client_name(found.client_id)
    return account, compact, {"client": name, "headline": name[:1].upper() + name[1:], "grants": grants}


_UNKNOWN_CODE = "This code is unknown, expired or already used. Check it, or start again."


async def _device_decide(
    request: Request, gateway: Gateway, csrf_token: str, form: dict[str, str]
) -> Response:
    """Step two: Approve or Deny, with the ticket step one gave this browser, while its session lasts.

    One transaction, holding the account's row as a claim does (`device.hold_account`) and then the
    session's (`browser.hold`): a sign-out, of this browser or everywhere, waits for the decision (and
    everywhere then denies the code it approved), or comes first and the ticket decides nothing."""
    approve = form.get("action") == "approve"
    session_id = request.cookies.get(session_cookie_name(gateway), "")
    ticket = form.get("confirmation", "")
    confirmed = confirmations(gateway).check(csrf_token, session_id, ticket)
    expired = Refusal(400, "This confirmation expired. Enter the code and sign in again.")
    if confirmed is None:
        return _device_refused(request, expired, csrf_token, "", "")
    account_id, compact = confirmed.account_id, confirmed.user_code
    async with gateway.pool.connection() as conn, conn.transaction():
        await device.hold_account(conn, account_id)
        if await browser.hold(conn, session_id) != account_id:  # signed out since, or the session expired
            return _device_refused(request, expired, csrf_token, "", "")
        account = await get_account(conn, account_id)
        if account is None or not account.active:
            refusal = Refusal(403, "This account is disabled. Contact the operator of this service.")
            return _device_refused(request, refusal, csrf_token, display_user_code(compact), "")
        client_id = await device.decide(conn, compact, account.id, approve)
        # A session step one started for this confirmation ends with it: on a shared computer the next
        # person must not find /account signed in. A session the browser had (from /account) stays.
        if confirmed.own_session:
            await browser.end(conn, session_id)
    request.state.account = account.id
    if client_id is None:  # decided, expired or used since step one: not a guess, not counted
        refusal = Refusal(400, _UNKNOWN_CODE)
        page = _device_refused(request, refusal, csrf_token, display_user_code(compact), account.email)
    else:
        request.state.device_result = "approved" if approve else "denied"
        page = render(
            "decided.html",
            title="Device approved" if approve else "Sign-in denied",
            approved=approve,
            client=client_name(client_id),
            email=account.email,
        )
    return without_session_cookie(page, gateway) if confirmed.own_session else page


def confirmations(gateway: Gateway) -> Confirmations:
    return Confirmations(gateway.authority.page_keys)


async def limit_address(gateway: Gateway, rule: ratelimit.Rule, request: Request) -> None:
    async with gateway.pool.connection() as conn:
        try:
            await ratelimit.hit(conn, rule, ratelimit.address_key(client_address(request)))
        except ratelimit.RateLimited as limited:
            raise too_many(limited) from None


async def verified_account(gateway: Gateway, email: str, password: str, failures: ratelimit.Rule) -> Account:
    """The account `email` names, if `password` is its password; raises `Refusal`.

    - The attempt counts as a failure before the password is checked, and is given back when it was right:
      guesses sent at once cannot all pass the lock before any of them is counted. A locked account refuses
      even the right password until the window ends, so it cannot be guessed at.
    - The lock is the account's (its stored email), so a spelling PostgreSQL's `lower()` folds onto the same
      account (`İ` for `i`) shares it; an email no account has is locked as typed.
    - The email is looked up as `normalize_email` makes it (surrounding whitespace dropped, NFKC). One that
      cannot be an email (whitespace or a control character such as NUL inside, which PostgreSQL's text
      cannot hold) is no account's: it is refused as an unknown email is, after the same argon2 work, and
      never reaches a query.
    - No connection is held while argon2 runs (tens of milliseconds of CPU, off the event loop)."""
    async with gateway.pool.connection() as conn:
        found = await find_account_by_email(conn, email)
        lock = (found[0].email if found else normalize_email(email) or email).lower()
        try:
            await ratelimit.hit(conn, failures, lock)
        except ratelimit.RateLimited as limited:
            raise too_many(limited) from None
    matches = await asyncio.to_thread(password_matches, found[1] if found else _DUMMY_HASH, password)
    if found is None or not matches:
        raise Refusal(401, "The email or the password is wrong.")
    async with gateway.pool.connection() as conn:
        await ratelimit.give_back(conn, failures, lock)
    account = found[0]
    if not account.active:
        raise Refusal(403, "This account is disabled. Contact the operator of this service.")
    return account


def too_many(limited: ratelimit.RateLimited) -> Refusal:
    minutes = max(1, round(limited.retry_after / 60))
    message = f"Too many attempts. Try again in about {minutes} minute{'s' if minutes > 1 else ''}."
    return Refusal(429, message, limited.retry_after)
