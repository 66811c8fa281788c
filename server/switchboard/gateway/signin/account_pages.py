"""/account and /account/upgrade: the plans and, for a browser signed in here, the account itself.

Signing in uses the /device form's checks (argon2 password, the same per-address and per-account limits,
the double-submit CSRF token). It starts a browser session (`browser`): an opaque id in an HttpOnly,
SameSite=Lax cookie (Secure and `__Host-` over https). Signed in, the page shows the plan, this month's
usage, and the account's device sign-ins, each with a button that revokes it (its refresh family). Every
change is a POST with the CSRF token, answered with a redirect (303) to the page. No script anywhere.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from switchboard.catalog.models import CATALOG
from switchboard.plans.catalog import PLANS, PlanSpec

from ..accounts import Account, get_account
from ..service import Gateway
from ..usage import usage_report
from . import browser, ratelimit
from .clients import client_name
from .forms import FormError, plain_text, read_form
from .pages import (
    Refusal,
    csrf_cookie_name,
    csrf_token_for,
    limit_address,
    render,
    same_token,
    session_cookie_name,
    verified_account,
    with_csrf_cookie,
    with_session_cookie,
    without_session_cookie,
)

ACCOUNT_PATH = "/account"


def _account_url(gateway: Gateway) -> str:
    return gateway.settings.public_base_url + ACCOUNT_PATH


async def account_page(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    if request.method == "POST":
        return await _account_post(request, gateway)
    account = await _signed_in_account(request, gateway)
    if account is not None:
        request.state.account = account.id
    return await _show(request, gateway, account)


async def _signed_in_account(request: Request, gateway: Gateway) -> Account | None:
    session_id = request.cookies.get(session_cookie_name(gateway), "")
    if not session_id:
        return None
    async with gateway.pool.connection() as conn:
        account_id = await browser.account_of(conn, session_id)
        account = await get_account(conn, account_id) if account_id else None
    return account if account is not None and account.active else None


async def _show(
    request: Request, gateway: Gateway, account: Account | None, error: str | None = None, status: int = 200
) -> Response:
    token = csrf_token_for(request, gateway)
    contact, href = _contact(gateway)
    upgrade = request.url.path.endswith("/upgrade")
    values: dict[str, object] = {
        "title": "Upgrade your plan" if upgrade else "Your Switchboard account",
        "upgrade": upgrade,
        "plans": _plan_rows(),
        "contact": contact,
        "contact_href": href,
        "csrf_token": token,
        "error": error,
        "account": None,
        "account_url": _account_url(gateway),
    }
    if account is not None:
        async with gateway.pool.connection() as conn:
            report = await usage_report(conn, account)
            devices = await browser.device_sign_ins(conn, account.id)
        values["account"] = {
            "email": account.email,
            "plan": account.spec.name,
            "used": f"{report.used_credits:,.2f}",
            "remaining": f"{report.remaining_credits:,.2f}",
            "period_end": report.period_end[:10],
        }
        values["devices"] = [
            {
                "id": device.family_id,
                "client": client_name(device.client_id),
                "scope": device.scope,
                "since": device.signed_in_at.strftime("%Y-%m-%d %H:%M UTC"),
            }
            for device in devices
        ]
    return with_csrf_cookie(render("account.html", status, None, **values), gateway, token)


async def _account_post(request: Request, gateway: Gateway) -> Response:
    cookie_token = request.cookies.get(csrf_cookie_name(gateway), "")
    try:
        form = await read_form(request)
    except FormError as error:
        return render(
            "message.html", 400, title="Something went wrong", message=f"The form was unreadable: {error}."
        )
    if not cookie_token or not same_token(cookie_token, form.get("csrf_token", "")):
        message = "This form expired or came from another site. Open the account page again."
        return render("message.html", 403, title="Please try again", message=message)
    action = form.get("action", "")
    if action == "sign_in":
        return await _sign_in(request, gateway, form.get("email", "").strip(), form.get("password", ""))
    session_id = request.cookies.get(session_cookie_name(gateway), "")
    if action == "sign_out":
        async with gateway.pool.connection() as conn:
            await browser.end(conn, session_id)
        return without_session_cookie(RedirectResponse(_account_url(gateway), status_code=303), gateway)
    if action == "sign_out_device":
        account = await _signed_in_account(request, gateway)
        if account is None:
            return await _show(request, gateway, None, "Sign in first.", 401)
        request.state.account = account.id
        family = form.get("family", "")[:64]
        if plain_text(family):  # one with a control character is no family: nothing to sign out
            async with gateway.pool.connection() as conn:
                await browser.sign_out_device(conn, account.id, family)
        return RedirectResponse(_account_url(gateway), status_code=303)
    return render("message.html", 400, title="Something went wrong", message="Unknown action.")


async def _sign_in(request: Request, gateway: Gateway, email: str, password: str) -> Response:
    rules = ratelimit.rules_for(gateway.settings.rate_limits)
    try:
        await limit_address(gateway, rules.device_form_per_address, request)
        account = await verified_account(gateway, email, password, rules.password_failures_per_account)
        async with gateway.pool.connection() as conn:
            session_id = await browser.start(conn, account.id)
    except Refusal as refusal:
        response = await _show(request, gateway, None, refusal.message, refusal.status)
        if refusal.retry_after:
            response.headers["retry-after"] = str(refusal.retry_after)
        return response
    request.state.account = account.id
    response = RedirectResponse(_account_url(gateway), status_code=303)
    return with_session_cookie(response, gateway, session_id, browser.SESSION_SECONDS)


def _plan_rows() -> list[dict[str, str]]:
    return [
        {
            "name": plan.name,
            "credits": f"{plan.monthly_credits:,}",
            "overage": "Available" if plan.overage_available else "No",
            "models": _models(plan),
        }
        for plan in PLANS.values()
    ]


def _models(plan: PlanSpec) -> str:
    excluded = [CATALOG[model].name for model in sorted(plan.excluded_models) if model in CATALOG]
    return "All models" if not excluded else "All but " + ", ".join(excluded)


def _contact(gateway: Gateway) -> tuple[str, str | None]:
    contact = gateway.settings.support_contact
    if not contact:
        return "the people who run this service", None
    if contact.startswith(("https://", "http://")):
        return contact, contact
    if "@" in contact and " " not in contact and ":" not in contact:
        return contact, "mailto:" + contact
    return contact, None
