"""Formatting the protocol's results for the terminal: plain text lines, styled by the caller."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from switchboard.catalog import CATALOG
from switchboard.protocol.messages import (
    ChatResult,
    ConversationResult,
    ConversationsResult,
    ConversationSummary,
    FeedbackResult,
    ModelInfo,
    ModelsResult,
    ModelUsage,
    RouteReport,
    TurnInfo,
    UsageReport,
)

SHORT_ID = 8
PREVIEW_TURNS = 4
PREVIEW_CHARS = 600


def model_name(model_id: str) -> str:
    spec = CATALOG.get(model_id)
    return spec.name if spec is not None else model_id


def number(value: float) -> str:
    """`1,234`, `0.4`, `12.35`: at most two decimals, none when whole."""
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def credits(value: float) -> str:
    return f"{number(value)} credit{'' if value == 1 else 's'}"


def local_time(iso: str) -> str:
    """An ISO timestamp from the server as local `YYYY-MM-DD HH:MM` (unchanged if unparseable)."""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1] for row in rows
    ]


# --- chat ---------------------------------------------------------------------------------------------


def route_line(report: RouteReport) -> str:
    """`Auto → Claude Sonnet 4.5 · <reason>`: which model answers and why."""
    routed = model_name(report.routed_model)
    head = f"{model_name(report.model_id)} → {routed}" if report.model_id != report.routed_model else routed
    reason = _without_prefix(report.route_reason or report.message, head)
    line = f"{head} · {reason}" if reason else head
    return line + " (fallback)" if report.fallback else line


def _without_prefix(reason: str, head: str) -> str:
    """The server's reason may repeat `Auto → Model`, or end with `→ Model`: keep only what it adds."""
    if reason.startswith(head):
        reason = reason[len(head) :].strip()
        if reason.startswith("(") and reason.endswith(")"):
            reason = reason[1:-1]
    routed = head.rsplit(" → ", 1)[-1]
    if reason.endswith(" → " + routed):
        reason = reason[: -len(" → " + routed)]
    return reason.strip(" ·")


def footer(result: ChatResult, *, how_to_continue: bool = False) -> str:
    """The dim line after an answer: model, credits, tokens (and, one-shot, how to continue)."""
    usage = result.usage
    cached = usage.cache_read_input_tokens
    total_in = usage.input_tokens + cached + usage.cache_creation_input_tokens
    tokens = (
        f"{total_in:,} in" + (f" ({cached:,} cached)" if cached else "") + f" / {usage.output_tokens:,} out"
    )
    parts = [model_name(result.routed_model), credits(result.credits), tokens + " tokens"]
    if result.cost_usd is not None:  # own key: what Anthropic bills for it, at list price
        parts.insert(2, usd(result.cost_usd))
    if result.dropped_turns:
        plural = "s" if result.dropped_turns != 1 else ""
        parts.append(f"{result.dropped_turns} earlier turn{plural} left out to fit the context window")
    if result.stop_reason == "max_tokens":
        parts.append("answer cut off at the output limit")
    if how_to_continue:
        parts.append(f"continue with --conversation {result.conversation_id[:SHORT_ID]}")
    return " · ".join(parts)


# --- models ---------------------------------------------------------------------------------------------


def models_table(result: ModelsResult, current: str) -> list[str]:
    rows = [["", "ID", "NAME", "COST", "AVAILABILITY"]]
    rows += [_model_row(model, current) for model in result.models]
    return table(rows)


def _model_row(model: ModelInfo, current: str) -> list[str]:
    marker = "*" if model.id == current else ""
    if model.available:
        availability = "available" + (" (recommended)" if model.recommended else "")
    else:
        availability = "unavailable: " + (model.unavailable_reason or "not on your plan")
    if model.retires_on is not None:
        retired = model.retires_on <= datetime.now(UTC).date()
        availability += f" · Anthropic {'retired' if retired else 'retires'} it on {model.retires_on}"
    return [marker, model.id, model.name, f"{model.credit_multiplier:g}x", availability]


# --- conversations --------------------------------------------------------------------------------------


def history_table(result: ConversationsResult, current: str | None) -> list[str]:
    conversations = sorted(result.conversations, key=lambda c: c.updated_at, reverse=True)
    if not conversations:
        return ["No conversations in this workspace yet."]
    rows = [["", "ID", "UPDATED", "TURNS", "TITLE"]]
    rows += [_history_row(conversation, current) for conversation in conversations]
    return table(rows)


def _history_row(conversation: ConversationSummary, current: str | None) -> list[str]:
    marker = "*" if conversation.id == current else ""
    updated = local_time(conversation.updated_at)
    return [marker, conversation.id[:SHORT_ID], updated, str(conversation.turn_count), conversation.title]


def conversation_heading(conversation: ConversationResult) -> str:
    count = len(conversation.turns)
    return f"Continuing “{conversation.title}” ({conversation.id[:SHORT_ID]}, {count} turns)"


def turn_preview(turns: Sequence[TurnInfo], count: int = PREVIEW_TURNS) -> list[str]:
    shown = list(turns)[-count:]
    lines = [f"… {len(turns) - len(shown)} earlier turns"] if len(turns) > len(shown) else []
    return lines + [_turn_line(turn) for turn in shown]


def _turn_line(turn: TurnInfo) -> str:
    who = "you" if turn.role == "user" else model_name(turn.routed_model or turn.model_id or "assistant")
    text = turn.text.strip()
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS].rstrip() + " …"
    status = (
        "" if turn.status == "complete" else f" [{turn.status}" + (f": {turn.error}]" if turn.error else "]")
    )
    return f"{who}: {text}{status}"


# --- usage ----------------------------------------------------------------------------------------------


def usd(amount: float) -> str:
    """A turn's list-price cost: cents to two places, smaller amounts to four (as Cline shows them)."""
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


def account_line(report: UsageReport) -> str | None:
    info = report.account_info
    if info.mode == "hosted":
        return (
            f"Signed in to Switchboard Cloud as {info.email or report.account} · account: {info.account_url}"
        )
    if info.gateway_url:
        return f"Not signed in to Switchboard Cloud ({info.gateway_url}): /signin to sign in."
    return None


def usage_lines(report: UsageReport) -> list[str]:
    plan = f"Plan: {report.plan_name}" + (f" ({report.account})" if report.account else "")
    account = account_line(report)
    lines = [
        *([account] if account else []),
        plan + (f" · {report.plan_reason}" if report.plan_reason else ""),
        f"Credits: {number(report.used_credits)} used of {number(report.included_credits)}, "
        f"{number(report.remaining_credits)} left; resets {local_time(report.period_end)}",
        "Overage: " + _overage(report),
    ]
    if report.by_model:
        lines.append("By model:")
        lines += table([_usage_row(usage) for usage in report.by_model])
    if report.auto_for_you is not None:
        lines.append(report.auto_for_you.summary)
    return lines + [f"! {alert}" for alert in report.alerts]


_LEARNED = {
    "should_have_escalated": "Auto will send more of this workspace's asks to Sonnet.",
    "should_not_have_escalated": "Auto will send less of this workspace's asks to Sonnet.",
    "weak_positive": "Auto takes it as a sign that its choice was right.",
}


def rating_line(result: FeedbackResult, answer: TurnInfo) -> str:
    """What `/rate` did: which answer, which rating, and what Auto learned from it."""
    who = model_name(answer.routed_model or answer.model_id or "auto")
    done = f"Thumbs {result.rating} on the last answer ({who})." if result.rating else "Rating cleared."
    learned = _LEARNED.get(result.label or "", "")
    return f"{done} {learned}".rstrip()


def _usage_row(usage: ModelUsage) -> list[str]:
    route = usage.routed_model
    if usage.model_id != usage.routed_model:
        route = f"{usage.model_id} → {route}"
    return [f"  {route}", f"{usage.turns} turn{'' if usage.turns == 1 else 's'}", credits(usage.credits)]


def _overage(report: UsageReport) -> str:
    overage = report.overage
    if not overage.available:
        return "not available on this plan"
    if not overage.enabled:
        return "off"
    budget = f", budget ${overage.budget_usd:,.2f}" if overage.budget_usd is not None else ""
    return f"on{budget}; {credits(overage.credits)} (${overage.cost_usd:,.2f}) this period"
