"""Which address a request comes from: X-Forwarded-For believed only from the configured proxies.

uvicorn's own `ProxyHeadersMiddleware` does the work (it walks X-Forwarded-For from the right and stops at
the first address that is not a trusted proxy, which is the one a trusted proxy saw connect). It is added
inside the application with `trusted_proxies` from the settings, and the server's built-in copy (which by
default trusts 127.0.0.1) is turned off in `switchboard gateway serve`, so the setting is the only source
of trust. The access log and the rate limits read the address this leaves in the ASGI scope.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware


def trusted_proxy_middleware(trusted_proxies: list[str]) -> list[Middleware]:
    """The middleware to install first (outermost); none when no proxy is trusted."""
    if not trusted_proxies:
        return []
    return [Middleware(ProxyHeadersMiddleware, trusted_hosts=list(trusted_proxies))]
