"""The ledger's reserve, settle and reap as PL/pgSQL functions: one round trip each instead of seven.

The rules are the same as the statements they replace (docs/gateway.md, "Turns and charges"); running them
next to the data turns a dozen statements (each a loopback `send` and a wake-up of the replica's event loop)
into one call. Every function names one account and locks that account's balance row first, then the turn's
row, as before, so the account id stays the shard key.

What PostgreSQL does not know is passed in: the credits of a usage (the published formula lives in
`switchboard.plans.credits` alone; the replica computes a charge and the function applies it), and each
plan's included credits and whether it has overage (`terms`, a small JSON object the replica builds from
`switchboard.plans.catalog`).

Two columns on `turns`:
- `checkpoint_h`: the credits of the checkpointed usage, written with it by the replica's heartbeat; what the
  reaper charges. NULL on rows written by the previous release (which checkpointed only tokens): the reaper
  computes those in Python.
- `provisional`: the turn was settled from its checkpoint (by the reaper, or by a repeat of the turn id)
  while its own replica may still be answering it (a stall longer than the reservation). When that replica
  settles it with the real usage, the charge is raised to it, once (`ledger_settle`).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_LIMIT = """
CREATE FUNCTION ledger_limit(p_account accounts, p_terms jsonb) RETURNS bigint
LANGUAGE sql STABLE AS $$
    -- The most the account may use a period, in hundredths: the allowance plus the overage budget
    -- (NULL: overage without a budget, no cap). $0.04 a credit: B cents buy 25·B hundredths.
    SELECT CASE
        WHEN NOT ledger_overage_on(p_account, p_terms)
            THEN (p_terms -> p_account.plan ->> 'included_h')::bigint
        WHEN p_account.overage_budget_cents IS NULL THEN NULL
        ELSE (p_terms -> p_account.plan ->> 'included_h')::bigint + p_account.overage_budget_cents * 25
    END
$$
"""

_OVERAGE_ON = """
CREATE FUNCTION ledger_overage_on(p_account accounts, p_terms jsonb) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT p_account.overage_enabled AND coalesce((p_terms -> p_account.plan ->> 'overage')::boolean, false)
$$
"""

_LOCK_BALANCE = """
CREATE FUNCTION ledger_lock_balance(p_account text, p_period text) RETURNS account_periods
LANGUAGE plpgsql AS $$
DECLARE
    b account_periods;
BEGIN
    SELECT * INTO b FROM account_periods WHERE account_id = p_account AND period = p_period FOR UPDATE;
    IF NOT FOUND THEN  -- the account's first turn this period
        INSERT INTO account_periods (account_id, period) VALUES (p_account, p_period) ON CONFLICT DO NOTHING;
        SELECT * INTO b FROM account_periods WHERE account_id = p_account AND period = p_period FOR UPDATE;
    END IF;
    RETURN b;
END
$$
"""

# Settle a reserved turn whose balance row and turn row the caller holds locked. `p_credits_h` is the
# charge by the published formula; past the reservation it is charged only while the account's cap allows
# (the rest is absorbed), and the part past the included credits is overage.
_CHARGE = """
CREATE FUNCTION ledger_charge(
    t turns, b account_periods, p_status text, p_credits_h bigint,
    p_input bigint, p_output bigint, p_cache_read bigint, p_cache_write bigint,
    p_reason text, p_provisional boolean, p_terms jsonb,
    OUT credits_h bigint, OUT overage_h bigint
) LANGUAGE plpgsql AS $$
DECLARE
    a accounts;
    cap bigint;
BEGIN
    SELECT * INTO STRICT a FROM accounts WHERE id = t.account_id;  -- revoked, never deleted
    credits_h := CASE WHEN p_status = 'failed' THEN 0 ELSE p_credits_h END;
    cap := ledger_limit(a, p_terms);
    IF cap IS NOT NULL THEN
        credits_h := greatest(0, least(credits_h, cap - b.used_h - (b.reserved_h - t.reserved_h)));
    END IF;
    overage_h := 0;
    IF ledger_overage_on(a, p_terms) THEN
        overage_h := greatest(0, least(credits_h,
            b.used_h + credits_h - (p_terms -> a.plan ->> 'included_h')::bigint));
    END IF;
    UPDATE turns SET status = p_status, credits_h = ledger_charge.credits_h,
        overage_h = ledger_charge.overage_h, input_tokens = p_input, output_tokens = p_output,
        cache_read_input_tokens = p_cache_read, cache_creation_input_tokens = p_cache_write,
        output_seen = output_seen OR p_status <> 'failed', reason = p_reason, provisional = p_provisional,
        settled_at = now()
    WHERE account_id = t.account_id AND turn_id = t.turn_id;
    UPDATE account_periods SET used_h = used_h + ledger_charge.credits_h,
        overage_h = account_periods.overage_h + ledger_charge.overage_h,
        reserved_h = reserved_h - t.reserved_h
    WHERE account_id = b.account_id AND period = b.period;
END
$$
"""

# An orphaned reservation (its replica stopped renewing it), settled at its last checkpoint: `cut` and
# charged for the checkpointed tokens if output had begun, `failed` and free if not. Provisional: if its
# replica was only stalled, its own settlement later raises the charge to the real usage.
_CHARGE_CHECKPOINT = """
CREATE FUNCTION ledger_charge_checkpoint(
    t turns, b account_periods, p_checkpoint_h bigint, p_terms jsonb,
    OUT credits_h bigint, OUT overage_h bigint
) LANGUAGE sql AS $$
    SELECT * FROM ledger_charge(
        t, b, CASE WHEN t.output_seen THEN 'cut' ELSE 'failed' END, p_checkpoint_h,
        t.input_tokens, t.output_tokens, t.cache_read_input_tokens, t.cache_creation_input_tokens,
        'the replica serving it stopped', true, p_terms)
$$
"""

_RESERVE = """
CREATE FUNCTION ledger_reserve(
    p_account text, p_turn text, p_period text, p_model text, p_routed text, p_route_reason text,
    p_allowed_plans text[], p_reserved_h bigint, p_ttl interval, p_replica text, p_terms jsonb,
    OUT outcome text, OUT attempt integer, OUT email text, OUT plan text, OUT overage_enabled boolean,
    OUT overage_budget_cents bigint, OUT status text, OUT credits_h bigint, OUT available_h bigint
) LANGUAGE plpgsql AS $$
-- outcome: 'reserved' (attempt is the turn's attempt number), 'account_gone' (revoked), 'plan_forbids'
-- (the account's plan, in `plan`, allows neither the model nor the routed model), 'in_progress' (a live
-- attempt holds it), 'settled' (answered before: status, credits_h), 'insufficient' (available_h is what
-- is left). A refusal is a result, not an error, so what was settled on the way stays committed.
DECLARE
    a accounts;
    b account_periods;
    t turns;
    cap bigint;
    charged record;
BEGIN
    SELECT * INTO a FROM accounts WHERE id = p_account;
    IF NOT FOUND OR a.revoked_at IS NOT NULL THEN
        outcome := 'account_gone';
        RETURN;
    END IF;
    email := a.email;
    plan := a.plan;
    overage_enabled := a.overage_enabled;
    overage_budget_cents := a.overage_budget_cents;
    IF NOT a.plan = ANY (p_allowed_plans) THEN
        outcome := 'plan_forbids';
        RETURN;
    END IF;
    b := ledger_lock_balance(p_account, p_period);
    SELECT * INTO t FROM turns WHERE account_id = p_account AND turn_id = p_turn FOR UPDATE;
    IF FOUND THEN
        IF t.status = 'reserved' THEN
            -- A live attempt, or one of the previous release whose checkpoint only its reaper can price.
            IF t.expires_at >= now() OR (t.checkpoint_h IS NULL AND t.output_seen) THEN
                outcome := 'in_progress';
                RETURN;
            END IF;
            -- Its replica stopped: settle it at its checkpoint first, as the reaper would.
            SELECT * INTO charged FROM ledger_charge_checkpoint(t, b, coalesce(t.checkpoint_h, 0), p_terms);
            IF t.output_seen THEN
                outcome := 'settled';
                status := 'cut';
                credits_h := charged.credits_h;
                RETURN;
            END IF;
            b := ledger_lock_balance(p_account, p_period);
        ELSIF t.status IN ('complete', 'cut') THEN
            outcome := 'settled';
            status := t.status;
            credits_h := t.credits_h;
            RETURN;
        END IF;
        -- 'failed' (or just released): no attempt produced output, so this one may run.
    END IF;
    cap := ledger_limit(a, p_terms);
    IF cap IS NOT NULL AND p_reserved_h > cap - b.used_h - b.reserved_h THEN
        outcome := 'insufficient';
        available_h := greatest(0, cap - b.used_h - b.reserved_h);
        RETURN;
    END IF;
    INSERT INTO turns (account_id, turn_id, period, model_id, routed_model, route_reason, status,
                       reserved_h, replica, expires_at, checkpoint_h)
    VALUES (p_account, p_turn, p_period, p_model, p_routed, p_route_reason, 'reserved',
            p_reserved_h, p_replica, now() + p_ttl, 0)
    ON CONFLICT (account_id, turn_id) DO UPDATE SET
        period = excluded.period, model_id = excluded.model_id, routed_model = excluded.routed_model,
        route_reason = excluded.route_reason, status = 'reserved', reserved_h = excluded.reserved_h,
        credits_h = 0, overage_h = 0, input_tokens = 0, output_tokens = 0,
        cache_read_input_tokens = 0, cache_creation_input_tokens = 0, output_seen = false,
        reason = NULL, replica = excluded.replica, attempts = turns.attempts + 1,
        created_at = now(), expires_at = excluded.expires_at, settled_at = NULL, checkpoint_h = 0,
        provisional = false
    RETURNING turns.attempts INTO attempt;
    UPDATE account_periods SET reserved_h = reserved_h + p_reserved_h
    WHERE account_id = p_account AND period = p_period;
    outcome := 'reserved';
END
$$
"""

_SETTLE = """
CREATE FUNCTION ledger_settle(
    p_account text, p_turn text, p_period text, p_attempt integer, p_status text, p_credits_h bigint,
    p_input bigint, p_output bigint, p_cache_read bigint, p_cache_write bigint, p_reason text,
    p_terms jsonb,
    OUT status text, OUT credits_h bigint, OUT overage_h bigint, OUT already boolean
) LANGUAGE plpgsql AS $$
-- Settle one attempt at a turn, exactly once. Three cases:
-- * still reserved by this attempt: charge by `p_credits_h` and release the reservation;
-- * settled provisionally from this attempt's checkpoint (its replica stalled past the reservation and the
--   reaper took it): raise the charge to the real usage, never below the checkpoint's, once;
-- * anything else (settled before, or a later attempt owns the turn id now): change nothing (`already`).
DECLARE
    a accounts;
    b account_periods;
    t turns;
    charged record;
    extra bigint;
    extra_overage bigint := 0;
    cap bigint;
BEGIN
    b := ledger_lock_balance(p_account, p_period);
    SELECT * INTO t FROM turns WHERE account_id = p_account AND turn_id = p_turn FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no reservation for turn %', p_turn USING ERRCODE = 'no_data_found';
    END IF;
    already := false;
    IF t.status = 'reserved' AND t.attempts = p_attempt THEN
        SELECT * INTO charged FROM ledger_charge(t, b, p_status, p_credits_h, p_input, p_output, p_cache_read,
                                                 p_cache_write, p_reason, false, p_terms);
        status := p_status;
        credits_h := charged.credits_h;
        overage_h := charged.overage_h;
        RETURN;
    END IF;
    IF t.provisional AND t.attempts = p_attempt AND p_status <> 'failed' THEN
        SELECT * INTO STRICT a FROM accounts WHERE id = p_account;
        extra := greatest(0, p_credits_h - t.credits_h);
        cap := ledger_limit(a, p_terms);
        IF cap IS NOT NULL THEN  -- this turn holds no reservation any more
            extra := greatest(0, least(extra, cap - b.used_h - b.reserved_h));
        END IF;
        IF ledger_overage_on(a, p_terms) THEN
            extra_overage := greatest(0, least(extra,
                b.used_h + extra - (p_terms -> a.plan ->> 'included_h')::bigint));
        END IF;
        UPDATE turns SET status = p_status, credits_h = t.credits_h + extra,
            overage_h = t.overage_h + extra_overage, provisional = false, output_seen = true,
            input_tokens = CASE WHEN extra > 0 THEN p_input ELSE input_tokens END,
            output_tokens = CASE WHEN extra > 0 THEN p_output ELSE output_tokens END,
            cache_read_input_tokens = CASE WHEN extra > 0 THEN p_cache_read ELSE cache_read_input_tokens END,
            cache_creation_input_tokens
                = CASE WHEN extra > 0 THEN p_cache_write ELSE cache_creation_input_tokens END,
            reason = 'settled after its replica stalled past the reservation', settled_at = now()
        WHERE account_id = p_account AND turn_id = p_turn;
        UPDATE account_periods
        SET used_h = used_h + extra, overage_h = account_periods.overage_h + extra_overage
        WHERE account_id = p_account AND period = p_period;
        status := p_status;
        credits_h := t.credits_h + extra;
        overage_h := t.overage_h + extra_overage;
        RETURN;
    END IF;
    IF t.provisional AND t.attempts = p_attempt THEN  -- no output after all: the free settlement stands
        UPDATE turns SET provisional = false WHERE account_id = p_account AND turn_id = p_turn;
    END IF;
    status := t.status;
    credits_h := t.credits_h;
    overage_h := t.overage_h;
    already := true;
END
$$
"""

_REAP = """
CREATE FUNCTION ledger_reap(p_account text, p_turn text, p_checkpoint_h bigint, p_terms jsonb,
    OUT status text, OUT credits_h bigint, OUT overage_h bigint
) LANGUAGE plpgsql AS $$
-- Settle an expired reservation at its checkpoint (p_checkpoint_h prices a row the previous release
-- checkpointed); no row when it is not expired any more, or was settled meanwhile (another replica's sweep).
DECLARE
    b account_periods;
    t turns;
    charged record;
    v_period text;
BEGIN
    SELECT period INTO v_period FROM turns WHERE account_id = p_account AND turn_id = p_turn;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    b := ledger_lock_balance(p_account, v_period);
    SELECT * INTO t FROM turns WHERE account_id = p_account AND turn_id = p_turn FOR UPDATE;
    IF t.status <> 'reserved' OR t.expires_at >= now() THEN
        RETURN;
    END IF;
    SELECT * INTO charged
    FROM ledger_charge_checkpoint(t, b, coalesce(t.checkpoint_h, p_checkpoint_h), p_terms);
    status := CASE WHEN t.output_seen THEN 'cut' ELSE 'failed' END;
    credits_h := charged.credits_h;
    overage_h := charged.overage_h;
END
$$
"""

_DEFINITIONS = (_OVERAGE_ON, _LIMIT, _LOCK_BALANCE, _CHARGE, _CHARGE_CHECKPOINT, _RESERVE, _SETTLE, _REAP)
_FUNCTIONS = (
    "ledger_reap(text, text, bigint, jsonb)",
    "ledger_settle(text, text, text, integer, text, bigint, bigint, bigint, bigint, bigint, text, jsonb)",
    "ledger_reserve(text, text, text, text, text, text, text[], bigint, interval, text, jsonb)",
    "ledger_charge_checkpoint(turns, account_periods, bigint, jsonb)",
    "ledger_charge(turns, account_periods, text, bigint, bigint, bigint, bigint, bigint, text, boolean,"
    " jsonb)",
    "ledger_lock_balance(text, text)",
    "ledger_limit(accounts, jsonb)",
    "ledger_overage_on(accounts, jsonb)",
)


def upgrade() -> None:
    op.execute("ALTER TABLE turns ADD COLUMN checkpoint_h bigint CHECK (checkpoint_h >= 0)")
    op.execute("ALTER TABLE turns ADD COLUMN provisional boolean NOT NULL DEFAULT false")
    for definition in _DEFINITIONS:
        op.execute(definition)


def downgrade() -> None:
    for function in _FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    op.execute("ALTER TABLE turns DROP COLUMN provisional")
    op.execute("ALTER TABLE turns DROP COLUMN checkpoint_h")
