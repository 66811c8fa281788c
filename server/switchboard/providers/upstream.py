"""How this server reaches the models: the API key in use and the provider built from it.

An editor may hand over the key after start-up (from its secret store), which replaces the environment's
and drops the provider built with the old one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.logs import scrubber

if TYPE_CHECKING:
    from switchboard.config import Settings
    from switchboard.providers.base import ChatProvider


class Upstream:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._api_key = settings.api_key
        self._provider: ChatProvider | None = None
        scrubber.add(settings.api_key)

    @property
    def ready(self) -> bool:
        """Whether a chat can be sent at all (a key is set)."""
        return bool(self._api_key)

    def use_api_key(self, key: str | None) -> None:
        if key and key != self._api_key:
            scrubber.add(key)
            self._api_key = key
            self._provider = None

    def provider(self) -> ChatProvider:
        if self._api_key is None:
            raise RuntimeError("no API key")
        if self._provider is None:
            from switchboard.providers.anthropic_api import AnthropicProvider

            self._provider = AnthropicProvider(
                api_key=self._api_key,
                base_url=self._settings.base_url,
                timeout=self._settings.request_timeout,
                max_retries=self._settings.max_retries,
            )
        return self._provider
