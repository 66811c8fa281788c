"""What a `POST /v1/messages` asks for: the turn id, the Switchboard model, and the Anthropic body.

The turn id (`Switchboard-Turn-Id`) is the idempotency key, scoped to the account. The model header
(`Switchboard-Model`) names what the user chose and what the turn is billed as; for a concrete model the
body's `model` must name the same model (its Switchboard id or its Anthropic id), for Auto it is ignored.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers

from switchboard.catalog.models import CATALOG, ModelSpec, get_model, is_known_model
from switchboard.routing import AUTO_MODELS, DEFAULT_PREFERENCE, PREFERENCES, Preference
from switchboard.routing.learning import bounded
from switchboard.tokens import tokens_for_chars

from .config import ALLOWED_BETAS, MAX_BODY_JSON_ITEMS
from .errors import GatewayRefusal, invalid_request

TURN_ID_HEADER = "switchboard-turn-id"
MODEL_HEADER = "switchboard-model"
_TURN_ID = re.compile(r"[A-Za-z0-9._:\-]{1,200}")
# Headers passed through to Anthropic; everything else (the client's token above all) stays here.
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
# Auto's per-user inputs (docs/gateway.md, "Auto's per-user inputs"); read only when the model is Auto.
AUTO_PREFERENCE_HEADER = "switchboard-auto-preference"
AUTO_SHIFT_HEADER = "switchboard-auto-shift"
AUTO_LAST_TURN_HEADER = "switchboard-auto-last-turn"
AUTO_SONNET_ANSWERS_HEADER = "switchboard-auto-sonnet-answers"
AUTO_STRONGER_RETRIES_HEADER = "switchboard-auto-stronger-retries"
AUTO_MODELS_HEADER = "switchboard-auto-models"
# Counts past these change nothing the router looks at; bounding them keeps the header's digits short.
MAX_AUTO_COUNT = 1000
# Content sources whose bytes are in the body, so the body's size counts them (`estimate`): inline data
# (`base64`, a document's `text`) and a document made of content blocks (`content`, whose blocks are read
# in turn). Any other source (`url`, which Anthropic fetches; `file`, a Files API id) is measured nowhere.
MEASURED_SOURCES = frozenset({"base64", "text", "content"})
# The most input tokens Anthropic bills for one image: it scales an image to at most about 1.15 megapixels
# and bills (width × height) / 750. A tiny image file can be a large image, so an image is held at least this.
IMAGE_MAX_TOKENS = 1_600
# The system prompt Anthropic adds to a request with tools, billed as input and not in the body: 346 tokens
# with `tool_choice` auto or none, 313 with any or tool, for every Claude 4 model (the catalog's). Held at
# the larger whatever `tool_choice` says.
TOOL_USE_SYSTEM_TOKENS = 346


@dataclass(frozen=True)
class AutoInputs:
    """What only the user's language server knows, bounded to what it can itself produce. None of these can
    pick a model: the router decides among the plan's Auto models (never Opus) and Auto bills 1.0x."""

    preference: Preference = DEFAULT_PREFERENCE
    threshold_shift: float = 0.0  # clamped to learning's bounds, as the server computes it
    last_turn_id: str | None = None  # looked up in this account's ledger, never believed as sent
    sonnet_answers: int = 0
    stronger_retries: int = 0
    models: tuple[str, ...] | None = None  # the user's allow-list: it can only narrow the plan's models


@dataclass(frozen=True)
class TurnRequest:
    turn_id: str
    model: ModelSpec  # what the user chose (Auto or a concrete model)
    body: dict[str, Any]
    max_tokens: int
    auto: AutoInputs = field(default_factory=AutoInputs)
    raw_body: bytes = b""  # `body` as sent: forwarded as is when the model it names needs no change
    keys_once: bool = False  # no object in `raw_body` repeats a key (checked while parsing; else unknown)
    # Some content's size is not in the body (a URL or file source, a PDF's pages): reserved at the whole
    # context window.
    unmeasured_input: bool = False
    # Input the body's size undercounts: a small image file billed at its pixels (`IMAGE_MAX_TOKENS`), the
    # system prompt Anthropic adds for tools (`TOOL_USE_SYSTEM_TOKENS`).
    unseen_input_tokens: int = 0

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def thinking_budget(self) -> int | None:
        return thinking_budget(self.body)

    def body_as_sent(self, model: str) -> bytes | None:
        """The body as the client sent it, when forwarding it tells Anthropic exactly what the gateway read:
        it names `model`, and no object in it repeats a key. JSON allows a repeated key; the gateway reads the
        last one, another parser may read the first, so `{"model": <Opus>, "model": <Haiku>}` could answer
        with Opus billed as Haiku. The parser decodes `\\u` escapes before it compares keys, so a key spelled
        two ways is a repeat too. Otherwise None, and the body is re-encoded from what was read."""
        if not self.raw_body or not self.keys_once or self.body.get("model") != model:
            return None
        return self.raw_body

    def upstream_body(self, model: str) -> bytes:
        """The body to send Anthropic for `model` (an Anthropic id): as sent when it can be
        (`body_as_sent`), else re-encoded with that model. The reservation is measured on these bytes, so
        a body that grows when re-encoded (`1E15` is written back as `1000000000000000.0`) is held in full.
        Raises `GatewayRefusal` (400) for a string with an unpaired surrogate, which no UTF-8 can carry."""
        as_sent = self.body_as_sent(model)
        if as_sent is not None:
            return as_sent
        try:
            return encode_body({**self.body, "model": model})
        except UnicodeEncodeError:
            raise invalid_request(
                "The request body holds an unpaired surrogate (a \\ud800-\\udfff escape alone), "
                "which is not text."
            ) from None


def encode_body(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def json_items(raw: bytes) -> int:
    """At least the number of values parsing `raw` makes, without parsing it: each object or array holds
    one more entry than it has commas, so the values are at most its commas, `{` and `[` (those inside
    strings too, which only errs high) plus the body itself. About 0.7 ms a megabyte."""
    return len(raw) - len(raw.translate(None, b",{[")) + 1


def parse_turn(
    headers: Headers,
    raw_body: bytes,
    *,
    max_items: int = MAX_BODY_JSON_ITEMS,
    allowed_betas: tuple[str, ...] = ALLOWED_BETAS,
) -> TurnRequest:
    """The turn a request asks for; raises `GatewayRefusal` (400) when it is not well formed, or when its
    body could make more than `max_items` JSON values (checked before parsing it)."""
    turn_id = headers.get(TURN_ID_HEADER, "")
    if not _TURN_ID.fullmatch(turn_id):
        raise invalid_request(
            f"Send a turn id in the {_title(TURN_ID_HEADER)} header: 1 to 200 letters, digits or ._:-"
        )
    model_id = headers.get(MODEL_HEADER, "")
    if not is_known_model(model_id):
        known = ", ".join(CATALOG)
        raise invalid_request(f"Send the Switchboard model in the {_title(MODEL_HEADER)} header ({known}).")
    model = get_model(model_id)
    if len(raw_body) >= max_items and (items := json_items(raw_body)) > max_items:
        raise invalid_request(
            f"The request body could make {items:,} JSON values (its commas, '{{' and '[', those in strings "
            f"included), more than this gateway reads: at most {max_items:,} (its max_body_json_items "
            "setting). A messages request that fits a model's context window holds far fewer."
        )
    # An Auto turn's body is always re-encoded (with the model Auto picks): no need to check its keys.
    body, keys_once = _json_object(raw_body, check_keys=model.id != "auto")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise invalid_request("max_tokens: a positive integer is required")
    if max_tokens > model.max_output_tokens:
        raise invalid_request(
            f"max_tokens: {model.name} answers with at most {model.max_output_tokens} tokens"
        )
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise invalid_request("messages: a non-empty list is required")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise invalid_request("stream: must be true or false")
    _check_betas(headers, allowed_betas)
    unseen = _check_costs(body)
    if model.id != "auto":
        _require_same_model(model, body.get("model"))
        return TurnRequest(
            turn_id,
            model,
            body,
            max_tokens,
            raw_body=raw_body,
            keys_once=keys_once,
            unmeasured_input=unseen.unmeasured,
            unseen_input_tokens=unseen.tokens,
        )
    return TurnRequest(
        turn_id,
        model,
        body,
        max_tokens,
        parse_auto_inputs(headers),
        raw_body,
        unmeasured_input=unseen.unmeasured,
        unseen_input_tokens=unseen.tokens,
    )


@dataclass
class _Unseen:
    unmeasured: bool = False  # some input's size is nowhere in the body
    tokens: int = 0  # input tokens the body's size undercounts


def _weigh(block: dict[str, Any], source: dict[str, Any], unseen: _Unseen) -> None:
    """What the body's size misses of one content block with a `source`."""
    kind = source.get("type")
    if not isinstance(kind, str) or kind not in MEASURED_SOURCES:
        unseen.unmeasured = True  # fetched by Anthropic (`url`), kept by it (`file`), or unknown
    elif kind == "base64" and block.get("type") == "document":
        unseen.unmeasured = True  # a PDF: each page is read as an image and as text, and pages are cheap
    elif kind == "base64" and block.get("type") == "image":
        data = source.get("data")
        counted = tokens_for_chars(len(data)) if isinstance(data, str) else 0
        unseen.tokens += max(0, IMAGE_MAX_TOKENS - counted)


def _check_costs(body: dict[str, Any]) -> _Unseen:
    """Refuse what the credit formula cannot price; say what of the input the body's size does not show.

    - A tool whose `type` is not `custom` (a tool without one is custom) is Anthropic's: its server tools
      (web search, web fetch, code execution, …) carry fees outside the token formula. 400.
    - A `cache_control` whose `ttl` is not `5m`: a 1-hour write costs 2x the input rate, and the formula
      prices every write at 1.25x (`plans.credits`). 400. Checked wherever `cache_control` may sit: on the
      request itself, tools, system blocks, and content blocks at any depth (a tool result's, a document's).
    - Content blocks with a `source`, at any depth, weighed by `_weigh`.
    - A top-level field of `PRICED_FIELDS` with a value it does not list: priced outside the formula. 400.
    - Tools: the system prompt Anthropic adds for them (`TOOL_USE_SYSTEM_TOKENS`) is input the body lacks.
    Anything else malformed is Anthropic's to refuse (a turn that fails before output is free). Costs a few
    dictionary lookups a content block; a path is only written out for a refusal."""
    _require_short_ttl(body.get("cache_control"), "")
    for name, standard in PRICED_FIELDS.items():
        if name in body and body[name] not in standard:
            raise invalid_request(
                f"{name}: only {' or '.join(map(str, standard))} (or leaving it out) is accepted: other "
                "values are priced outside Switchboard Cloud's credits."
            )
    if body.get("mcp_servers"):
        raise invalid_request(
            "mcp_servers: Switchboard Cloud does not connect Anthropic to MCP servers: their tools' results "
            "are input it cannot see to reserve for."
        )
    tools = body.get("tools")
    if isinstance(tools, list):
        for index, tool in enumerate(tools):
            if not isinstance(tool, dict):
                continue
            kind = tool.get("type", "custom")
            if kind != "custom":
                shown = kind if isinstance(kind, str) and len(kind) <= 100 else "not custom"
                raise invalid_request(
                    f"tools.{index}.type: {shown} is an Anthropic-defined tool. Switchboard Cloud accepts "
                    'only custom tools (no type, or "custom"): server tools such as web search, web fetch '
                    "and code execution carry fees its credits cannot charge."
                )
            if "cache_control" in tool:
                _require_short_ttl(tool["cache_control"], f"tools.{index}.")
    unseen = _Unseen(tokens=TOOL_USE_SYSTEM_TOKENS if isinstance(tools, list) and tools else 0)
    pending: list[tuple[list[Any], str]] = []
    system = body.get("system")
    if isinstance(system, list):
        pending.append((system, "system"))
    for index, message in enumerate(body["messages"]):
        if isinstance(message, dict) and isinstance(content := message.get("content"), list):
            pending.append((content, f"messages.{index}.content"))
    while pending:  # without recursion: the body's nesting is the client's choice
        blocks, where = pending.pop()
        for index, block in enumerate(blocks):
            if not isinstance(block, dict):
                continue
            if "cache_control" in block:
                _require_short_ttl(block["cache_control"], f"{where}.{index}.")
            source = block.get("source")
            if isinstance(source, dict):  # (a search result's `source` is a string: a citation, not fetched)
                _weigh(block, source, unseen)
                if isinstance(inner := source.get("content"), list):
                    pending.append((inner, f"{where}.{index}.source.content"))
            if isinstance(inner := block.get("content"), list):
                pending.append((inner, f"{where}.{index}.content"))
    return unseen


def thinking_budget(body: dict[str, Any]) -> int | None:
    """The `budget_tokens` of extended thinking, when the body turns it on."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool):
            return budget
    return None


# Top-level fields whose other values Anthropic prices outside the credit formula, and the values that it
# does not: `speed` "fast" (fast mode's premium rates), `inference_geo` other than "global" (data-residency
# pricing), `service_tier` "priority" (Priority Tier's rates), `container` (code execution and skills'
# container hours; null is no container).
PRICED_FIELDS: dict[str, tuple[object, ...]] = {
    "speed": ("standard",),
    "inference_geo": ("global",),
    "service_tier": ("auto", "standard_only"),
    "container": (None,),
}


def _check_betas(headers: Headers, allowed: tuple[str, ...]) -> None:
    """Only betas the operator allows (`allowed_betas`, by name prefix) go to Anthropic: a beta can change
    what a turn costs (context-1m bills long-context rates past 200,000 input tokens), and a new one should
    be checked before it is forwarded, not after it is billed."""
    for beta in headers.get("anthropic-beta", "").split(","):
        name = beta.strip()
        if name and not name.startswith(allowed):
            raise invalid_request(
                f"anthropic-beta: {name[:100]} is not among the betas Switchboard Cloud passes on, those "
                "known not to change a turn's price beyond its credits (context-1m, code-execution, "
                "mcp-client, skills, computer-use, compact and extended-cache-ttl do); leave it out. An "
                "operator allows one by adding its name prefix to the gateway's allowed_betas setting "
                "(SWITCHBOARD_GATEWAY_ALLOWED_BETAS)."
            )


def _require_short_ttl(control: object, where: str) -> None:
    if isinstance(control, dict) and "ttl" in control and control["ttl"] != "5m":
        raise invalid_request(
            f"{where}cache_control.ttl: only 5-minute cache writes are accepted (leave ttl out or send "
            '"5m"): a 1-hour write costs more than the credit formula charges for it.'
        )


def parse_auto_inputs(headers: Headers) -> AutoInputs:
    """Auto's per-user inputs; an absent header is the default, a malformed one a 400 naming it."""
    preference = headers.get(AUTO_PREFERENCE_HEADER, DEFAULT_PREFERENCE)
    if preference not in PREFERENCES:
        raise invalid_request(f"{_title(AUTO_PREFERENCE_HEADER)}: one of {', '.join(PREFERENCES)}")
    last_turn = headers.get(AUTO_LAST_TURN_HEADER)
    if last_turn is not None and not _TURN_ID.fullmatch(last_turn):
        raise invalid_request(
            f"{_title(AUTO_LAST_TURN_HEADER)}: a turn id (1 to 200 letters, digits or ._:-)"
        )
    return AutoInputs(
        preference=preference,
        threshold_shift=_shift(headers.get(AUTO_SHIFT_HEADER)),
        last_turn_id=last_turn,
        sonnet_answers=_count(headers, AUTO_SONNET_ANSWERS_HEADER),
        stronger_retries=_count(headers, AUTO_STRONGER_RETRIES_HEADER),
        models=_models(headers.get(AUTO_MODELS_HEADER)),
    )


def _shift(raw: str | None) -> float:
    if raw is None:
        return 0.0
    try:
        value = float(raw) if len(raw) <= 32 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise invalid_request(f"{_title(AUTO_SHIFT_HEADER)}: a number")
    return bounded(value)


def _count(headers: Headers, name: str) -> int:
    raw = headers.get(name)
    if raw is None:
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise invalid_request(f"{_title(name)}: a whole number")
    return min(int(raw), MAX_AUTO_COUNT)


def _models(raw: str | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    models = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not models or any(model not in AUTO_MODELS for model in models):
        raise invalid_request(
            f"{_title(AUTO_MODELS_HEADER)}: a comma-separated list of {', '.join(AUTO_MODELS)}"
        )
    return models


def _json_object(raw: bytes, *, check_keys: bool) -> tuple[dict[str, Any], bool]:
    """The body, and whether it was checked to repeat no key in any object. Checking while parsing costs
    about a third of the parse for a conversation's JSON; scanning the bytes for each top-level key, as
    before, cost more than the parse (about 0.5 ms per 100 KB)."""
    repeated = False

    def keys_checked(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        value = dict(pairs)
        if len(value) != len(pairs):
            repeated = True
        return value

    try:
        body = json.loads(raw, object_pairs_hook=keys_checked) if check_keys else json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise invalid_request("The request body is not JSON.") from None
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    return body, check_keys and not repeated


def _require_same_model(model: ModelSpec, body_model: object) -> None:
    if body_model in (model.id, model.anthropic_model, model.default_anthropic_model):
        return
    shown = body_model if isinstance(body_model, str) and len(body_model) <= 100 else "another model"
    raise GatewayRefusal(
        400,
        "model_mismatch",
        f"The {_title(MODEL_HEADER)} header says {model.id} but the body asks for {shown!s}: "
        "they must name the same model.",
        details={"model_id": model.id},
    )


def _title(header: str) -> str:
    return "-".join(part.capitalize() for part in header.split("-"))
