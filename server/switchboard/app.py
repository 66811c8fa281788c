"""The composition root: the language server, the shared services, and the lifecycle that loads features."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from switchboard.config import Settings
from switchboard.features.host import Services, utc_today
from switchboard.features.lifecycle import LifecycleFeature
from switchboard.providers.upstream import Upstream
from switchboard.server import SwitchboardServer


def create_server(settings: Settings, today: Callable[[], date] = utc_today) -> SwitchboardServer:
    """The server with only its lifecycle wired: the features load right after `initialize` is answered."""
    server = SwitchboardServer()
    services = Services(settings, Upstream(settings), today)
    LifecycleFeature(server, services).register()
    return server
