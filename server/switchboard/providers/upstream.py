"""How this server reaches the models: the composition point between the user's own key and Switchboard
Cloud.

- Not signed in: the API key in use (an editor may hand one over after start-up, from its secret store,
  which replaces the environment's and drops the provider built with the old one) and the `anthropic`
  provider built from it.
- Signed in to the configured gateway (`SWITCHBOARD_GATEWAY_URL`): every chat goes to the gateway, with the
  session's access token; the user's own key is not used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.logs import scrubber

if TYPE_CHECKING:
    from switchboard.config import Settings
    from switchboard.hosted.session import GatewaySession
    from switchboard.providers.base import ChatProvider


class Upstream:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._api_key = settings.api_key
        self._provider: ChatProvider | None = None
        self._gateway_provider: ChatProvider | None = None
        self.client_id = "switchboard-vscode"
        self.gateway: GatewaySession | None = None
        if settings.gateway_url:
            from switchboard.hosted.session import GatewaySession

            self.gateway = GatewaySession(settings.gateway_url, self._client_id)
        scrubber.add(settings.api_key)

    def _client_id(self) -> str:
        return self.client_id

    @property
    def hosted(self) -> bool:
        """Signed in to the gateway: chats, plan and figures come from there."""
        return self.gateway is not None and self.gateway.signed_in

    @property
    def ready(self) -> bool:
        """Whether a chat can be sent at all (signed in, or a key is set)."""
        return self.hosted or bool(self._api_key)

    def use_api_key(self, key: str | None) -> None:
        if key and key != self._api_key:
            scrubber.add(key)
            self._api_key = key
            self._provider = None

    def provider(self) -> ChatProvider:
        if self.hosted:
            return self._hosted_provider()
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

    async def aclose(self) -> None:
        """At shutdown: closes every HTTP client this server opened (to Anthropic and to the gateway)."""
        own, gateway_provider = self._provider, self._gateway_provider
        self._provider = self._gateway_provider = None
        for provider in (own, gateway_provider):
            if provider is not None:
                await provider.close()
        if self.gateway is not None:
            await self.gateway.close()

    def _hosted_provider(self) -> ChatProvider:
        if self._gateway_provider is None:
            from switchboard.hosted.provider import GatewayProvider

            assert self.gateway is not None
            self._gateway_provider = GatewayProvider(
                self.gateway,
                timeout=self._settings.request_timeout,
                max_retries=self._settings.max_retries,
            )
        return self._gateway_provider
