"""The method map: every request and notification, with its params and result types.

Like Continue's `core/protocol`, this is the one table both sides compile against: the server
registers its handlers from it and the TypeScript client's `SwitchboardRequests` map is generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import messages as m
from .names import COMMAND_NEW_CONVERSATION, COMMAND_SELECT_MODEL


@dataclass(frozen=True)
class Request:
    method: str
    params: type[m.Wire]
    result: type[m.Wire]
    doc: str


@dataclass(frozen=True)
class Notification:
    method: str
    params: type[m.Wire]
    doc: str


MODELS = Request(
    "switchboard/models", m.ModelsParams, m.ModelsResult, "List models and the workspace's selection."
)
SELECT_MODEL = Request(
    "switchboard/selectModel",
    m.SelectModelParams,
    m.SelectModelResult,
    "Select the model for the next message.",
)
CHAT = Request(
    "switchboard/chat", m.ChatParams, m.ChatResult, "Send a prompt; the answer streams as $/progress."
)
RETRY = Request(
    "switchboard/retry",
    m.RetryParams,
    m.ChatResult,
    "Re-run the last turn on a stronger model, keeping both answers.",
)
CONVERSATIONS = Request(
    "switchboard/conversations",
    m.ConversationsParams,
    m.ConversationsResult,
    "This workspace's conversations.",
)
CONVERSATION = Request(
    "switchboard/conversation", m.ConversationParams, m.ConversationResult, "One conversation."
)
DELETE_CONVERSATION = Request(
    "switchboard/deleteConversation", m.DeleteConversationParams, m.Empty, "Delete a conversation."
)
USAGE = Request(
    "switchboard/usage",
    m.UsageParams,
    m.UsageReport,
    "The plan, credits used and left, overage, and how Auto routes for this workspace.",
)
SET_OVERAGE = Request("switchboard/setOverage", m.SetOverageParams, m.UsageReport, "Turn overage on or off.")
ESTIMATE = Request(
    "switchboard/estimate", m.EstimateParams, m.EstimateResult, "Preview a prompt's cost per model."
)
FEEDBACK = Request(
    "switchboard/feedback",
    m.FeedbackParams,
    m.FeedbackResult,
    "Thumbs up or down on an answer (null clears it); Auto learns from it.",
)
SIGN_IN = Request(
    "switchboard/signIn",
    m.SignInParams,
    m.SignInResult,
    "Sign in: a pasted entitlement, a stored refresh token, or (no params) the gateway's device flow.",
)
SIGN_OUT = Request(
    "switchboard/signOut", m.Empty, m.UsageReport, "Sign out of the gateway (revokes the session)."
)

REQUESTS: tuple[Request, ...] = (
    MODELS,
    SELECT_MODEL,
    CHAT,
    RETRY,
    CONVERSATIONS,
    CONVERSATION,
    DELETE_CONVERSATION,
    USAGE,
    SET_OVERAGE,
    ESTIMATE,
    FEEDBACK,
    SIGN_IN,
    SIGN_OUT,
)

USAGE_CHANGED = Notification(
    "switchboard/usageChanged",
    m.UsageReport,
    "Sent after every charge, sign-in, overage change and rollover.",
)
MODEL_CHANGED = Notification(
    "switchboard/modelChanged", m.SelectModelResult, "Sent when a workspace's selected model changes."
)
SIGN_IN_CODE = Notification(
    "switchboard/signInCode",
    m.SignInCode,
    "Sent while a device-flow signIn is pending: the code to enter and where.",
)
CREDENTIALS_CHANGED = Notification(
    "switchboard/credentialsChanged",
    m.CredentialsChanged,
    "The refresh token rotated (store the new one) or the session ended (null: delete it).",
)
TURN_CHARGED = Notification(
    "switchboard/turnCharged",
    m.TurnCharged,
    "Signed in, a stopped turn's charge from the gateway, once known (the stored turn has it too).",
)
NOTIFICATIONS: tuple[Notification, ...] = (
    USAGE_CHANGED,
    MODEL_CHANGED,
    SIGN_IN_CODE,
    CREDENTIALS_CHANGED,
    TURN_CHARGED,
)

# Notifications the client sends.
ADOPT_REFRESH_TOKEN = Notification(
    "switchboard/adoptRefreshToken",
    m.AdoptRefreshToken,
    "Another window stored a newer refresh token of this session: use it for the next refresh.",
)
CLIENT_NOTIFICATIONS: tuple[Notification, ...] = (ADOPT_REFRESH_TOKEN,)

# workspace/executeCommand names, for editors without custom-request support.
COMMANDS = (COMMAND_SELECT_MODEL, COMMAND_NEW_CONVERSATION)

# $/progress values of a chat, for the schema.
PROGRESS_VALUES: tuple[type[m.Wire], ...] = (
    m.ProgressBegin,
    m.RouteReport,
    m.TextReport,
    m.ThinkingReport,
    m.ProgressEnd,
)
