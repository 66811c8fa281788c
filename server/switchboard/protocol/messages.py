"""Every message Switchboard exchanges with a client, declared once.

These pydantic models are the single source of truth for the protocol: the JSON Schema in
`docs/protocol.schema.json` and the TypeScript types in `client-ts/src/protocol.generated.ts` are
generated from them (`switchboard schema`), and CI fails when either drifts.

Field names are snake_case in Python and camelCase on the wire.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic.alias_generators import to_camel

ModelId = Literal["auto", "claude-haiku-4.5", "claude-sonnet-4.0", "claude-sonnet-4.5", "claude-opus-4.5"]
ConcreteModelId = Literal["claude-haiku-4.5", "claude-sonnet-4.0", "claude-sonnet-4.5", "claude-opus-4.5"]
PlanId = Literal["free", "pro", "pro_plus", "power"]
# How readily Auto escalates to Sonnet 4.5 (docs/router.md, "Figures (issue 18)").
AutoPreference = Literal["economy", "balanced", "quality"]
TurnStatus = Literal["complete", "cancelled", "failed"]
Rating = Literal["up", "down"]
Role = Literal["user", "assistant"]
ProgressToken = str | int
# Model ids arrive as plain strings so that an unknown id can be refused with a helpful `-32602`
# (carrying `data.modelId`) instead of a generic validation failure.
RequestedModelId = Annotated[str, Field(min_length=1, max_length=100)]
WorkspaceUri = Annotated[str, Field(min_length=1, max_length=4096)]
ConversationId = Annotated[str, Field(min_length=1, max_length=200)]


# The largest integer SQLite stores; a larger offset would fail in the store, not in validation.
SQLITE_MAX_INTEGER = 2**63 - 1


class Wire(BaseModel):
    """Base of every protocol message: camelCase on the wire, unknown fields ignored (forward compatible).

    Boolean fields are `StrictBool`: JSON's `true`/`false` only. Lax pydantic would take "yes", "on", 1 or
    "false" (as false) too, and a client that sends `{"enabled": "yes"}` has a bug to hear about (`-32602`),
    not a setting to guess."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        serialize_by_alias=True,
        # Validators are built on first use, so `initialize` does not wait for every model of the protocol.
        defer_build=True,
    )


class Empty(Wire):
    """An empty object (`{}`), for requests that take no parameters or return nothing."""


# --- models -----------------------------------------------------------------------------------------


class ModelsParams(Wire):
    workspace_uri: WorkspaceUri | None = None
    # The client's Auto settings, so Auto's entry states the expected share and cost at them.
    auto_preference: AutoPreference | None = None
    auto_models: Annotated[list[ConcreteModelId], Field(min_length=1, max_length=10)] | None = None


class ModelInfo(Wire):
    id: ModelId
    name: str
    description: str
    benefits: list[str]
    credit_multiplier: float
    available: StrictBool
    unavailable_reason: str | None = None
    context_window: int
    max_output_tokens: int
    supports_thinking: StrictBool
    recommended: StrictBool = False
    anthropic_model: str | None = Field(
        default=None, description="The Anthropic model id this model calls (null for auto)."
    )
    retires_on: date | None = Field(
        default=None,
        description="The day (UTC) Anthropic retires the model id this model calls, from when it cannot "
        "answer; null when none is announced.",
    )


class ModelsResult(Wire):
    selected: ModelId
    models: list[ModelInfo]


class SelectModelParams(Wire):
    workspace_uri: WorkspaceUri
    model_id: RequestedModelId


class SelectModelResult(Wire):
    selected: ModelId
    notice: str | None = None


# --- chat -------------------------------------------------------------------------------------------


class Position(Wire):
    line: Annotated[int, Field(ge=0)]
    character: Annotated[int, Field(ge=0)]


class Range(Wire):
    start: Position
    end: Position


class ContextItem(Wire):
    """A piece of the workspace attached to a prompt (a selection or a whole file)."""

    uri: Annotated[str, Field(min_length=1, max_length=4096)]
    text: str
    range: Range | None = None
    language_id: str | None = None


class ThinkingOptions(Wire):
    budget_tokens: Annotated[int, Field(ge=1024, le=128_000)]


class ChatParams(Wire):
    workspace_uri: WorkspaceUri
    prompt: Annotated[str, Field(min_length=1)]
    conversation_id: ConversationId | None = None
    model_id: RequestedModelId | None = None
    context: list[ContextItem] = Field(default_factory=list[ContextItem])
    thinking: ThinkingOptions | None = None
    work_done_token: ProgressToken | None = None
    auto_preference: AutoPreference | None = None  # Auto only; None means "balanced"
    # Auto only: the models it may answer with, fallback included (the plan still applies). None: all.
    auto_models: Annotated[list[ConcreteModelId], Field(min_length=1, max_length=10)] | None = None


class Usage(Wire):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


class ChatResult(Wire):
    conversation_id: str
    turn_id: str
    model_id: ModelId
    routed_model: ConcreteModelId
    route_reason: str
    text: str
    thinking: str | None = None
    stop_reason: str | None
    usage: Usage
    credits: float
    dropped_turns: int
    cost_usd: float | None = Field(
        default=None,
        description="The answer's API cost at list prices (cache writes and reads included), in USD; "
        "null when it is not known to this server.",
    )


class RetryParams(Wire):
    workspace_uri: WorkspaceUri
    conversation_id: ConversationId
    turn_id: Annotated[str, Field(min_length=1, max_length=200)]
    model_id: RequestedModelId | None = None
    work_done_token: ProgressToken | None = None


# --- $/progress values of a chat ----------------------------------------------------------------------


class ProgressBegin(Wire):
    kind: Literal["begin"] = "begin"
    title: str
    cancellable: StrictBool = True
    message: str | None = None


class RouteReport(Wire):
    """Always the first report of a chat: which model answers and why."""

    kind: Literal["report"] = "report"
    type: Literal["route"] = "route"
    model_id: ModelId
    routed_model: ConcreteModelId
    route_reason: str
    message: str
    fallback: StrictBool = False
    # Known before any text arrives, so a client that cancels still knows where the turn was stored.
    conversation_id: str | None = None
    turn_id: str | None = None


class TextReport(Wire):
    kind: Literal["report"] = "report"
    type: Literal["text"] = "text"
    text: str


class ThinkingReport(Wire):
    kind: Literal["report"] = "report"
    type: Literal["thinking"] = "thinking"
    text: str


class ProgressEnd(Wire):
    kind: Literal["end"] = "end"
    message: str | None = None


ChatProgress = ProgressBegin | RouteReport | TextReport | ThinkingReport | ProgressEnd


# --- conversations ------------------------------------------------------------------------------------


class ConversationsParams(Wire):
    workspace_uri: WorkspaceUri
    limit: Annotated[int, Field(ge=1, le=10_000)] = 200
    offset: Annotated[int, Field(ge=0, le=SQLITE_MAX_INTEGER)] = 0


class ConversationSummary(Wire):
    id: str
    title: str
    created_at: str
    updated_at: str
    turn_count: int


class ConversationsResult(Wire):
    conversations: list[ConversationSummary]
    has_more: StrictBool = Field(
        default=False, description="More conversations follow: ask again with a larger offset."
    )


class ConversationParams(Wire):
    workspace_uri: WorkspaceUri
    conversation_id: ConversationId


class TurnInfo(Wire):
    id: str
    role: Role
    text: str
    thinking: str | None = None
    model_id: ModelId | None = None
    routed_model: ConcreteModelId | None = None
    route_reason: str | None = None
    credits: float = 0.0
    status: TurnStatus
    created_at: str
    usage: Usage | None = None
    context: list[ContextItem] = Field(default_factory=list[ContextItem])
    error: str | None = None
    retry_of: str | None = Field(default=None, description="The turn this answer retried, if any.")
    rating: Rating | None = Field(default=None, description="The user's thumbs up or down on this answer.")
    cost_usd: float | None = Field(default=None, description="As ChatResult.costUsd.")


class ConversationResult(Wire):
    id: str
    title: str
    created_at: str
    updated_at: str
    turns: list[TurnInfo]


class DeleteConversationParams(Wire):
    workspace_uri: WorkspaceUri
    conversation_id: ConversationId


# --- feedback -----------------------------------------------------------------------------------------


class FeedbackParams(Wire):
    workspace_uri: WorkspaceUri
    conversation_id: ConversationId
    turn_id: Annotated[str, Field(min_length=1, max_length=200)]
    rating: Rating | None = Field(description="Thumbs up, thumbs down, or null to clear the rating.")


class FeedbackResult(Wire):
    turn_id: str
    rating: Rating | None
    label: Literal["should_have_escalated", "should_not_have_escalated", "weak_positive"] | None = Field(
        default=None, description="What Auto learned from this answer (null: nothing, or not an Auto answer)."
    )
    auto_shift: float = Field(
        description="This workspace's Auto threshold shift after the feedback, in share points "
        "(+0.04 ≈ 4% more requests to Sonnet)."
    )


# --- plans, credits and usage -------------------------------------------------------------------------


class SignInParams(Wire):
    """At most one of `token` (a pasted entitlement, offline) and `refreshToken` (resume a stored session);
    neither starts the device flow against the configured gateway."""

    token: Annotated[str, Field(min_length=1, max_length=16_384)] | None = None
    refresh_token: Annotated[str, Field(min_length=1, max_length=4096)] | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> SignInParams:
        if self.token is not None and self.refresh_token is not None:
            raise ValueError("send at most one of token and refreshToken")
        return self


class SignInCode(Wire):
    """Sent while a device-flow `switchboard/signIn` is pending: show the code and open the link."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None = None
    expires_in: int


class AccountInfo(Wire):
    mode: Literal["local", "hosted"] = "local"
    email: str | None = None
    gateway_url: str | None = None
    account_url: str | None = None
    upgrade_url: str | None = None


class CredentialsChanged(Wire):
    """The stored refresh token must be replaced (rotation) or deleted (null: the session ended)."""

    refresh_token: str | None
    reason: str | None = Field(default=None, description="Why the session ended, when refreshToken is null.")


class TurnCharged(Wire):
    """A signed-in turn's charge, known after its request was answered: a stopped turn ends before the
    gateway's charge reaches the server, which asks the gateway for it once it has settled the turn."""

    turn_id: str
    conversation_id: str
    credits: float = Field(description="The gateway's charge for the turn (what the stored turn now says).")


class AdoptRefreshToken(Wire):
    """Another window of the same editor stored a newer refresh token of this session's family: the server
    uses it for its next refresh instead of its own (which that window's refresh already spent)."""

    refresh_token: Annotated[str, Field(min_length=1, max_length=4096)]


class OverageInfo(Wire):
    available: StrictBool
    enabled: StrictBool
    budget_usd: float | None = None
    credits: float = 0.0
    cost_usd: float = 0.0


class ModelUsage(Wire):
    model_id: ModelId
    routed_model: ConcreteModelId
    turns: int
    credits: float


class DailyModelCredits(Wire):
    model_id: ModelId
    routed_model: ConcreteModelId
    credits: float


class DailyUsage(Wire):
    date: str
    credits: float
    by_model: list[DailyModelCredits] = Field(default_factory=list[DailyModelCredits])


class UsageParams(Wire):
    workspace_uri: WorkspaceUri | None = Field(
        default=None, description="The workspace for autoForYou (default: the editor's first folder)."
    )


class AutoSignals(Wire):
    """This month's feedback that moved Auto, by kind."""

    thumbs_up: int = 0
    thumbs_down: int = 0
    stronger_retries: int = 0
    switches_up: int = 0
    cheaper_corrections: int = 0
    moved_on: int = 0


class AutoForYou(Wire):
    """How Auto has routed this workspace's answers this month (complete or stopped ones), and which way
    feedback has moved it."""

    auto_answers: int
    sonnet_answers: int
    sonnet_share: float = Field(description="sonnetAnswers / autoAnswers (0 when there were none).")
    shift: float = Field(description="The workspace's threshold shift now, in share points (+: more Sonnet).")
    direction: Literal["stronger", "cheaper", "neutral"]
    signals: AutoSignals
    summary: str = Field(description='e.g. "Auto for you: 24% Sonnet this month, leaning cheaper after 3 …"')


class UsageReport(Wire):
    plan: PlanId
    plan_name: str
    plan_reason: str
    account: str | None = None
    period_start: str
    period_end: str
    included_credits: float
    used_credits: float
    remaining_credits: float
    reserved: float = Field(
        default=0.0,
        description="Credits held by turns in flight (Switchboard Cloud); always 0 for the local ledger.",
    )
    overage: OverageInfo
    by_model: list[ModelUsage]
    daily: list[DailyUsage]
    alerts: list[str]
    account_info: AccountInfo = Field(default_factory=AccountInfo)
    auto_for_you: AutoForYou | None = None


class SignInResult(Wire):
    usage: UsageReport
    account: AccountInfo
    refresh_token: str | None = Field(
        default=None, description="Store it (SecretStorage, keyring) to resume the session; null for a token."
    )


class SetOverageParams(Wire):
    enabled: StrictBool
    budget_usd: Annotated[float, Field(gt=0, le=1_000_000)] | None = None


class EstimateParams(Wire):
    workspace_uri: WorkspaceUri
    prompt: str
    conversation_id: ConversationId | None = None
    context: list[ContextItem] = Field(default_factory=list[ContextItem])


class ModelEstimate(Wire):
    model_id: ModelId
    input_tokens: int
    estimated_output_tokens: int
    estimated_credits: float
    allowed: StrictBool
    fits_context: StrictBool
    context_window: int


class EstimateResult(Wire):
    estimates: list[ModelEstimate]


# --- error data ---------------------------------------------------------------------------------------


class InvalidParamsData(Wire):
    model_id: str | None = None
    errors: list[str] = Field(default_factory=list[str])


class PlanForbidsData(Wire):
    model_id: str
    plan: PlanId
    allowed_plans: list[PlanId]


class CreditsExhaustedData(Wire):
    plan: PlanId
    remaining_credits: float
    overage_available: StrictBool
    overage_enabled: StrictBool = Field(
        default=False,
        description=(
            "Overage is on already: with no credits left, its budget is what ran out, so raising the budget "
            "(`setOverage`), not turning overage on, lets turns through."
        ),
    )
    needed_credits: float | None = Field(
        default=None,
        description="Signed in, when credits remain but fewer than the turn's worst case: that worst case.",
    )


class UpstreamErrorData(Wire):
    status: int | None
    type: str
    retryable: StrictBool
    suggested_model: ConcreteModelId | None = None


class AuthErrorData(Wire):
    reason: Literal[
        "missing_key", "rejected_key", "expired", "denied", "no_gateway", "unreachable", "session_ended"
    ]
    gateway_url: str | None = Field(
        default=None,
        description=(
            "With `missing_key`: the Switchboard Cloud gateway this server is configured for, when one is "
            "(signing in to it is the other way to chat); null otherwise."
        ),
    )


class NotFoundData(Wire):
    conversation_id: str


class PromptTooLargeData(Wire):
    model_id: str
    input_tokens: int
    context_window: int


class InternalErrorData(Wire):
    reference: str  # also in the server log, next to the traceback
