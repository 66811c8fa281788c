"""Accounts: who may use the gateway, on which plan, with which overage terms."""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, LiteralString

from argon2 import PasswordHasher
from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow

from switchboard.plans.catalog import PlanSpec, get_plan, is_known_plan

_HASHER = PasswordHasher()
MAX_EMAIL_LENGTH = 320
_COLUMNS: Final = "id, email, plan, overage_enabled, overage_budget_cents, revoked_at"


class AccountError(Exception):
    """An admin action that cannot be done; `str()` says why."""


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    plan: str
    overage_enabled: bool
    overage_budget_cents: int | None
    revoked_at: datetime | None

    @property
    def spec(self) -> PlanSpec:
        return get_plan(self.plan)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def overage_on(self) -> bool:
        """Overage applies: the plan offers it and the account turned it on."""
        return self.spec.overage_available and self.overage_enabled

    @property
    def budget_usd(self) -> Decimal | None:
        return None if self.overage_budget_cents is None else Decimal(self.overage_budget_cents) / 100


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except Exception:
        return False


def normalize_email(typed: str) -> str | None:
    """The email as accounts are created with it and looked up by, or None when `typed` cannot be one.

    NFKC (a full-width `ａ` typed on a phone's keyboard is `a`; the ligature `ﬁ` is `fi`), then without
    the whitespace around it (a space pasted with the address). None for anything else that has whitespace
    or an invisible character (control, format, private-use, unassigned) inside, no local part and domain
    around an `@`, or more than 320 characters. The case is kept as typed: emails are compared with
    PostgreSQL's `lower()`, as the unique index on `lower(email)` compares them.
    """
    email = unicodedata.normalize("NFKC", typed).strip()
    if not email or len(email) > MAX_EMAIL_LENGTH:
        return None
    if any(unicodedata.category(char)[0] in "CZ" for char in email):
        return None
    local, at, domain = email.rpartition("@")
    return email if at and local and domain else None


def _account(row: dict[str, Any]) -> Account:
    return Account(
        id=row["id"],
        email=row["email"],
        plan=row["plan"],
        overage_enabled=row["overage_enabled"],
        overage_budget_cents=row["overage_budget_cents"],
        revoked_at=row["revoked_at"],
    )


def _require_plan(plan: str) -> None:
    if not is_known_plan(plan):
        raise AccountError(f"unknown plan {plan!r}")


async def create_account(conn: AsyncConnection[DictRow], email: str, password: str, plan: str) -> Account:
    _require_plan(plan)
    normalized = normalize_email(email)
    if normalized is None:
        raise AccountError(
            f"{email!r} is not an email address (one local part and domain around an @, no whitespace or"
            f" invisible character inside, at most {MAX_EMAIL_LENGTH} characters)"
        )
    email = normalized
    account_id = "acct_" + secrets.token_hex(8)
    try:
        cursor = await conn.execute(
            "INSERT INTO accounts (id, email, password_hash, plan) VALUES (%s, %s, %s, %s)"
            f" RETURNING {_COLUMNS}",
            (account_id, email, hash_password(password), plan),
        )
    except UniqueViolation:
        raise AccountError(f"an account with email {email!r} exists") from None
    row = await cursor.fetchone()
    assert row is not None
    return _account(row)


async def get_account(conn: AsyncConnection[DictRow], account_id: str) -> Account | None:
    cursor = await conn.execute(f"SELECT {_COLUMNS} FROM accounts WHERE id = %s", (account_id,))
    row = await cursor.fetchone()
    return _account(row) if row else None


async def find_account(conn: AsyncConnection[DictRow], ref: str) -> Account:
    """The account with this id or email (`normalize_email`, then case-insensitive); raises `AccountError`
    when there is none."""
    ref = ref.strip()
    if not ref.isprintable():  # no id or email has a control character (and PostgreSQL's text has no NUL)
        raise AccountError(f"no account {ref!r}")
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM accounts WHERE id = %s OR lower(email) = lower(%s)",
        (ref, normalize_email(ref)),
    )
    row = await cursor.fetchone()
    if row is None:
        raise AccountError(f"no account {ref!r}")
    return _account(row)


async def find_account_by_email(conn: AsyncConnection[DictRow], email: str) -> tuple[Account, str] | None:
    """The account with this email (`normalize_email`, then case-insensitive) and its password hash, for
    signing in; None for an email no account has, or one that cannot be an email (no query is made)."""
    normalized = normalize_email(email)
    if normalized is None:
        return None
    cursor = await conn.execute(
        f"SELECT {_COLUMNS}, password_hash FROM accounts WHERE lower(email) = lower(%s)", (normalized,)
    )
    row = await cursor.fetchone()
    return (_account(row), row["password_hash"]) if row else None


async def set_plan(conn: AsyncConnection[DictRow], account_id: str, plan: str) -> Account:
    _require_plan(plan)
    return await _update(conn, account_id, "plan = %s", (plan,))


async def revoke(conn: AsyncConnection[DictRow], account_id: str) -> Account:
    """Stop the account: every request with its tokens is refused from the next one on."""
    return await _update(conn, account_id, "revoked_at = coalesce(revoked_at, now())", ())


async def reinstate(conn: AsyncConnection[DictRow], account_id: str) -> Account:
    """Undo `revoke` (the caller signs the account's sessions out: they stay ended)."""
    return await _update(conn, account_id, "revoked_at = NULL", ())


async def set_overage(
    conn: AsyncConnection[DictRow], account_id: str, enabled: bool, budget_cents: int | None
) -> Account:
    return await _update(
        conn, account_id, "overage_enabled = %s, overage_budget_cents = %s", (enabled, budget_cents)
    )


async def _update(
    conn: AsyncConnection[DictRow], account_id: str, assignments: LiteralString, values: tuple[object, ...]
) -> Account:
    cursor = await conn.execute(
        f"UPDATE accounts SET {assignments} WHERE id = %s RETURNING {_COLUMNS}", (*values, account_id)
    )
    row = await cursor.fetchone()
    if row is None:
        raise AccountError(f"no account {account_id!r}")
    return _account(row)
