"""`workspace/executeCommand` entry points, for editors that cannot send custom requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from switchboard.protocol.errors import InvalidParams
from switchboard.protocol.messages import ConversationsParams, InvalidParamsData, SelectModelParams
from switchboard.protocol.names import COMMAND_NEW_CONVERSATION, COMMAND_SELECT_MODEL

from .base import Feature, dump, parse_params
from .host import Editor, Services
from .models import ModelsFeature

NEW_CHAT_TITLE = "New chat"


class CommandsFeature(Feature):
    def __init__(
        self,
        editor: Editor,
        services: Services,
        models: ModelsFeature,
        commands: dict[str, Callable[..., Any]],
    ) -> None:
        super().__init__(editor)
        self.services = services
        self.models = models
        self._commands = commands

    def register(self) -> None:
        self._commands[COMMAND_SELECT_MODEL] = self.select_model
        self._commands[COMMAND_NEW_CONVERSATION] = self.new_conversation

    async def select_model(self, *args: Any) -> dict[str, Any]:
        """Arguments: `[workspaceUri, modelId]` or `[{workspaceUri, modelId}]`."""
        raw = _arguments(args, ("workspaceUri", "modelId"))
        return dump(await self.models.select(parse_params(SelectModelParams, raw)))

    def new_conversation(self, *args: Any) -> dict[str, Any]:
        """Arguments: `[workspaceUri]` or `[{workspaceUri}]`; returns `{conversationId}`."""
        raw = _arguments(args, ("workspaceUri",))
        raw["workspaceUri"] = raw.get("workspaceUri") or self.editor.default_workspace()
        if not raw["workspaceUri"]:
            raise InvalidParams("switchboard.newConversation needs a workspace URI.", InvalidParamsData())
        workspace = parse_params(ConversationsParams, raw).workspace_uri
        return {"conversationId": self.services.store.create_conversation(workspace, NEW_CHAT_TITLE)}


def _arguments(args: tuple[Any, ...], names: tuple[str, ...]) -> dict[str, Any]:
    values: list[Any] = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
    if len(values) == 1 and isinstance(values[0], dict):
        return dict(values[0])
    return dict(zip(names, values, strict=False))
