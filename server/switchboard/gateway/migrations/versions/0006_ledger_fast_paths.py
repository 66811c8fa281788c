"""Reserve and settle: the common case in two statements each, instead of five (and nested function calls).

The functions' rules and results are those of 0003 (docs/gateway.md, "Turns and charges"); only the way
they get there changes. PostgreSQL's CPU per settled turn was mostly per statement (starting an executor,
opening the table and its indexes, compiling its CHECK constraints), not per row, so:

- `ledger_reserve`: an active account whose plan allows the model, with room for the hold and a new turn id,
  is one `UPDATE` of the balance row (joined to the account; holding the credits is what locks the row,
  first, as before) and one `INSERT … ON CONFLICT DO NOTHING` of the turn. Anything else (no balance row
  yet this month, no room, a revoked account or a forbidden plan, a turn id seen before) takes 0003's path
  unchanged, after giving back the hold if one was taken.
- `ledger_settle`: a turn still reserved by this attempt is one `SELECT … FOR UPDATE` of the balance row
  (joined to the account: the cap) and one statement that charges the turn and moves the credits on the
  balance row. Anything else (settled provisionally, settled before, a later attempt) takes 0003's path.
  `ledger_capped` is the cap rule of `ledger_charge`, inlined by the planner.

Same names and arguments: replicas of the previous release call the new bodies, and nothing else moves.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CAPPED = """
CREATE FUNCTION ledger_capped(p_credits_h bigint, p_cap bigint, p_used_h bigint, p_held_h bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    -- A charge within the account's cap (NULL: none), given what is used and held by other turns.
    SELECT CASE WHEN p_cap IS NULL THEN p_credits_h
        ELSE greatest(0, least(p_credits_h, p_cap - p_used_h - p_held_h)) END
$$
"""

# Table aliases (ap, acc, tu) never repeat a variable's name: PL/pgSQL refuses an ambiguous reference.
_RESERVE = """
CREATE OR REPLACE FUNCTION ledger_reserve(
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
    -- The common case: hold the credits (this locks the balance row, first), then add the new turn.
    -- Waiting for the row, PostgreSQL checks the room again on the version it then locks.
    UPDATE account_periods AS ap SET reserved_h = ap.reserved_h + p_reserved_h
    FROM accounts AS acc
    WHERE ap.account_id = p_account AND ap.period = p_period AND acc.id = p_account
        AND acc.revoked_at IS NULL AND acc.plan = ANY (p_allowed_plans)
        AND (ledger_limit(acc, p_terms) IS NULL
             OR p_reserved_h <= ledger_limit(acc, p_terms) - ap.used_h - ap.reserved_h)
    RETURNING acc.email, acc.plan, acc.overage_enabled, acc.overage_budget_cents
    INTO email, plan, overage_enabled, overage_budget_cents;
    IF FOUND THEN
        INSERT INTO turns (account_id, turn_id, period, model_id, routed_model, route_reason, status,
                           reserved_h, replica, expires_at, checkpoint_h)
        VALUES (p_account, p_turn, p_period, p_model, p_routed, p_route_reason, 'reserved',
                p_reserved_h, p_replica, now() + p_ttl, 0)
        ON CONFLICT (account_id, turn_id) DO NOTHING
        RETURNING turns.attempts INTO attempt;
        IF FOUND THEN
            outcome := 'reserved';
            RETURN;
        END IF;
        -- A turn id seen before: give the hold back (the row stays locked) and decide as 0003 does.
        UPDATE account_periods AS ap SET reserved_h = ap.reserved_h - p_reserved_h
        WHERE ap.account_id = p_account AND ap.period = p_period;
    END IF;

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
CREATE OR REPLACE FUNCTION ledger_settle(
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
    used bigint;
    held bigint;
    included bigint;
    overage_on boolean;
    charge bigint := CASE WHEN p_status = 'failed' THEN 0 ELSE p_credits_h END;
BEGIN
    -- The common case, the first: the balance row locked first (with what the cap needs), then the turn
    -- charged as `ledger_charge` does and its hold released, in one statement.
    SELECT ap.used_h, ap.reserved_h, ledger_limit(acc, p_terms),
           (p_terms -> acc.plan ->> 'included_h')::bigint, ledger_overage_on(acc, p_terms)
    INTO used, held, cap, included, overage_on
    FROM account_periods AS ap JOIN accounts AS acc ON acc.id = ap.account_id
    WHERE ap.account_id = p_account AND ap.period = p_period
    FOR UPDATE OF ap;
    IF FOUND THEN
        WITH settled AS (
            UPDATE turns AS tu SET status = p_status,
                credits_h = ledger_capped(charge, cap, used, held - tu.reserved_h),
                overage_h = CASE WHEN overage_on THEN greatest(0, least(
                    ledger_capped(charge, cap, used, held - tu.reserved_h),
                    used + ledger_capped(charge, cap, used, held - tu.reserved_h) - included)) ELSE 0 END,
                input_tokens = p_input, output_tokens = p_output,
                cache_read_input_tokens = p_cache_read, cache_creation_input_tokens = p_cache_write,
                output_seen = tu.output_seen OR p_status <> 'failed', reason = p_reason, provisional = false,
                settled_at = now()
            WHERE tu.account_id = p_account AND tu.turn_id = p_turn AND tu.status = 'reserved'
                AND tu.attempts = p_attempt
            RETURNING tu.credits_h, tu.overage_h, tu.reserved_h
        )
        UPDATE account_periods AS ap SET used_h = ap.used_h + s.credits_h,
            overage_h = ap.overage_h + s.overage_h, reserved_h = ap.reserved_h - s.reserved_h
        FROM settled AS s
        WHERE ap.account_id = p_account AND ap.period = p_period
        RETURNING s.credits_h, s.overage_h INTO credits_h, overage_h;
        IF FOUND THEN
            status := p_status;
            already := false;
            RETURN;
        END IF;
    END IF;

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


def upgrade() -> None:
    op.execute(_CAPPED)
    op.execute(_RESERVE)
    op.execute(_SETTLE)


def downgrade() -> None:
    # 0003's bodies, as 0003 wrote them (a migration is never edited, so they are read from it).
    previous = importlib.import_module("switchboard.gateway.migrations.versions.0003_ledger_functions")
    for definition in (previous._RESERVE, previous._SETTLE):
        op.execute(definition.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("DROP FUNCTION ledger_capped(bigint, bigint, bigint, bigint)")
