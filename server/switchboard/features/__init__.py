"""The server's capabilities, one module each; `install_features` composes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from switchboard.server import SwitchboardServer


def install_features(server: SwitchboardServer) -> dict[str, Any]:
    """Registers every feature's handlers; returns the features by name for the lifecycle to reach."""
    from .account import AccountFeature
    from .chat import ChatFeature
    from .commands import CommandsFeature
    from .conversations import ConversationsFeature
    from .estimate import EstimateFeature
    from .models import ModelsFeature

    account = AccountFeature(server)
    account.use_token(server.init_options.get("entitlement"))
    models = ModelsFeature(server, account)
    features = {
        "account": account,
        "models": models,
        "conversations": ConversationsFeature(server),
        "chat": ChatFeature(server, models, account),
        "estimate": EstimateFeature(server, account),
        "commands": CommandsFeature(server, models),
    }
    for feature in features.values():
        feature.register()
    return features
