"""`switchboard serve` on a calendar of the test's choosing: `python tests/dated_server.py 2027-01-22`.

The real server, composed with another `today` (the only thing that changes), for what depends on the date:
a model that Anthropic retires on a given day. Its clocks (billing periods, entitlements) stay the machine's.
"""

from __future__ import annotations

import sys
from datetime import date

from switchboard.cli import serve_stdio

if __name__ == "__main__":
    day = date.fromisoformat(sys.argv[1])
    sys.exit(serve_stdio(today=lambda: day))
