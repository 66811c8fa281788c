"""The server's capabilities, one module each; `install_features` composes them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from switchboard.server import SwitchboardServer


def install_features(server: SwitchboardServer) -> None:
    from .account import AccountFeature
    from .chat import ChatFeature
    from .commands import CommandsFeature
    from .conversations import ConversationsFeature
    from .estimate import EstimateFeature
    from .lifecycle import LifecycleFeature
    from .models import ModelsFeature

    account = AccountFeature(server)
    models = ModelsFeature(server, account)
    features = (
        LifecycleFeature(server, account),
        account,
        models,
        ConversationsFeature(server),
        ChatFeature(server, models, account),
        EstimateFeature(server, account),
        CommandsFeature(server, models),
    )
    for feature in features:
        feature.register()
