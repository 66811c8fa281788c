"""`switchboard serve` whose refreshes at the gateway answer late: `python tests/slow_refresh_server.py 3`
(the token endpoint's answers reach it 3 s after the gateway gave them; an optional second argument replaces
how long a chat waits for a resume under way, `RESUME_WAIT_SECONDS`).

The real server; only those change, for what happens while a stored session is being resumed.
"""

from __future__ import annotations

import asyncio
import sys

from switchboard.cli import serve_stdio
from switchboard.features import account
from switchboard.hosted.gateway_http import Endpoints, GatewayHttp, TokenGrant


def answer_late(seconds: float) -> None:
    refresh = GatewayHttp.refresh

    async def late(self: GatewayHttp, endpoints: Endpoints, client_id: str, refresh_token: str) -> TokenGrant:
        grant = await refresh(self, endpoints, client_id, refresh_token)
        await asyncio.sleep(seconds)
        return grant

    GatewayHttp.refresh = late


if __name__ == "__main__":
    answer_late(float(sys.argv[1]))
    if len(sys.argv) > 2:
        account.RESUME_WAIT_SECONDS = float(sys.argv[2])
    sys.exit(serve_stdio())
