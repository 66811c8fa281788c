"""Logging to stderr and a rotating file in the state directory, with secrets scrubbed from every record."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SecretScrubber(logging.Filter):
    """Replaces every registered secret in a record's rendered message (the key must never reach a log)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 8:
            self._secrets.add(secret)

    def scrub(self, text: str) -> str:
        """`text` with every registered secret replaced: for logs, and for anything upstream echoed back."""
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg, record.args = self.scrub(record.getMessage()), None
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


scrubber = SecretScrubber()


class ExpectedErrors(logging.Filter):
    """pygls logs every error a request handler raises at ERROR with its traceback. A `SwitchboardError`
    (other than an internal error) is an answer, not a failure: a refusal the client shows its user (no
    credits, a plan that forbids the model, Anthropic busy, a session that ended). It is logged as one line
    at INFO, without the traceback, so the log keeps tracebacks for what is really broken."""

    def filter(self, record: logging.LogRecord) -> bool:
        from switchboard.protocol.errors import SwitchboardError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, SwitchboardError) and error.code != SwitchboardError.code:
            what = record.getMessage()
            record.msg, record.args = "%s: answered with error %s (%s)", (what, error.code, error.message)
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.exc_info, record.exc_text = None, None
        return True


expected_errors = ExpectedErrors()


def configure(log_dir: Path, level: int = logging.INFO) -> None:
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / "server.log", maxBytes=5_000_000, backupCount=3, encoding="utf-8"
            )
        )
    except OSError as exc:
        print(f"switchboard: cannot write logs to {log_dir}: {exc}", file=sys.stderr)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(scrubber)
        root.addHandler(handler)
    # pygls logs every message body at INFO: prompts and answers do not belong in logs.
    for noisy in ("pygls", "httpx", "httpx2", "httpcore", "anthropic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    rpc = logging.getLogger("pygls.protocol.json_rpc")
    if expected_errors not in rpc.filters:
        rpc.addFilter(expected_errors)
