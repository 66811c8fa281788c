"""The server's capabilities, one module each; `install_features` composes them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .account import AccountFeature
    from .chat import ChatFeature
    from .host import Editor, Services


@dataclass(frozen=True)
class InstalledFeatures:
    """The features the lifecycle talks to after start-up (warm-up, rollover, shut-down)."""

    account: AccountFeature
    chat: ChatFeature


def install_features(
    editor: Editor,
    services: Services,
    init_options: dict[str, Any],
    command_table: dict[str, Callable[..., Any]],
) -> InstalledFeatures:
    """Builds every feature with what it depends on and registers its handlers."""
    from .account import AccountFeature
    from .chat import ChatFeature
    from .commands import CommandsFeature
    from .conversations import ConversationsFeature
    from .estimate import EstimateFeature
    from .feedback import AutoFeedback, FeedbackFeature
    from .models import ModelsFeature

    learning = AutoFeedback(services)
    account = AccountFeature(editor, services, learning)
    account.use_token(init_options.get("entitlement"))
    models = ModelsFeature(editor, services, account, learning)
    chat = ChatFeature(editor, services, models, account, learning)
    features = [
        account,
        models,
        ConversationsFeature(editor, services),
        chat,
        FeedbackFeature(editor, services, learning),
        EstimateFeature(editor, services, account),
        CommandsFeature(editor, services, models, command_table),
    ]
    for feature in features:
        feature.register()
    return InstalledFeatures(account=account, chat=chat)
