"""The server's capabilities, one module each; `install_features` composes them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from switchboard.server import SwitchboardServer


def install_features(server: SwitchboardServer) -> None:
    from .chat import ChatFeature
    from .commands import CommandsFeature
    from .conversations import ConversationsFeature
    from .lifecycle import LifecycleFeature
    from .models import ModelsFeature

    models = ModelsFeature(server)
    chat = ChatFeature(server, models)
    for feature in (LifecycleFeature(server), models, ConversationsFeature(server), chat):
        feature.register()
    CommandsFeature(server, models).register()
