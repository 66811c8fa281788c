"""The shape of a feature module: a small class that registers its handlers (no heavy imports here)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .host import Editor


def plain(method: Callable[..., Any]) -> Callable[..., Any]:
    """pygls tags handlers with attributes, which bound methods refuse: hand it a plain function."""
    if inspect.iscoroutinefunction(method):

        async def async_handler(*args: Any) -> Any:
            return await method(*args)

        return async_handler

    def handler(*args: Any) -> Any:
        return method(*args)

    return handler


class Feature:
    """A capability of the server: a small class that registers its handlers on the editor connection."""

    def __init__(self, editor: Editor) -> None:
        self.editor = editor

    def register(self) -> None:
        raise NotImplementedError
