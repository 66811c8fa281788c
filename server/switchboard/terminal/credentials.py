"""The Switchboard Cloud refresh token, kept in the OS keyring (service "switchboard", user = the gateway
URL) through the `keyring` library: never in a file of ours, never printed.

The keyring backend is the user's (Secret Service, macOS Keychain, Windows Credential Locker; or the one
PYTHON_KEYRING_BACKEND names). A machine without a usable keyring still signs in; the session just is not
kept for the next start, and the user is told so once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

SERVICE = "switchboard"
# A keyring call that takes longer is given up on: a locked Secret Service can block forever, and a save
# runs on the client's loop thread (while an answer streams).
KEYRING_SECONDS = 5.0

T = TypeVar("T")


class KeyringUnavailable(Exception):
    """No usable keyring backend, or one that does not answer: the message says what it means."""


class _KeyringStuck(Exception):
    pass


class StoredSession:
    def __init__(self, gateway_url: str, timeout: float = KEYRING_SECONDS) -> None:
        self.gateway_url = gateway_url
        self.timeout = timeout
        self._stuck: threading.Thread | None = None  # a keyring call that did not return in time

    def load(self) -> str | None:
        """The stored token, or None (none stored, or no usable keyring: logged). Raises KeyringUnavailable
        if the keyring does not answer in time."""
        try:
            return self._call(lambda keyring: keyring.get_password(SERVICE, self.gateway_url)) or None
        except _KeyringStuck:
            raise KeyringUnavailable(
                f"The OS keyring did not answer within {self.timeout:g} seconds (is it locked?): the stored "
                "session was not resumed, and a new one may not be kept for the next start."
            ) from None
        except Exception as error:
            log.warning("Could not read the keyring: %s", type(error).__name__)
            return None

    def save(self, refresh_token: str) -> None:
        try:
            self._call(lambda keyring: keyring.set_password(SERVICE, self.gateway_url, refresh_token))
        except _KeyringStuck:
            raise KeyringUnavailable(
                f"The OS keyring did not answer within {self.timeout:g} seconds (is it locked?): the session "
                "is not kept, and you will need to sign in again next time."
            ) from None
        except Exception as error:
            raise KeyringUnavailable(
                f"Could not keep the session in the OS keyring ({type(error).__name__}): you will need to "
                "sign in again next time. Install a keyring backend (see the keyring package) to keep it."
            ) from None

    def delete(self) -> None:
        def delete(keyring: Any) -> None:
            from keyring.errors import PasswordDeleteError

            with contextlib.suppress(PasswordDeleteError):  # nothing stored
                keyring.delete_password(SERVICE, self.gateway_url)

        try:
            self._call(delete)
        except Exception as error:
            log.warning("Could not delete the session from the keyring: %s", type(error).__name__)

    def _call(self, action: Callable[[Any], T]) -> T:
        """`action(keyring)` on a worker thread, waited for at most `timeout` seconds. While a call that
        timed out is still running, the keyring is not asked again (`_KeyringStuck` at once)."""
        if self._stuck is not None and self._stuck.is_alive():
            raise _KeyringStuck
        outcome: list[tuple[bool, Any]] = []

        def run() -> None:
            try:
                import keyring

                outcome.append((True, action(keyring)))
            except BaseException as error:  # whatever the backend raises is the caller's to see
                outcome.append((False, error))

        # A daemon thread, so a keyring that never answers does not keep the program from leaving.
        worker = threading.Thread(target=run, name="switchboard-keyring", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            self._stuck = worker
            raise _KeyringStuck
        ok, value = outcome[0]
        if not ok:
            raise value
        return value
