"""The Switchboard Cloud refresh token, kept in the OS keyring (service "switchboard", user = the gateway
URL) through the `keyring` library: never in a file of ours, never printed.

The keyring backend is the user's (Secret Service, macOS Keychain, Windows Credential Locker; or the one
PYTHON_KEYRING_BACKEND names). A machine without a usable keyring still signs in; the session just is not
kept for the next start, and the user is told so once.
"""

from __future__ import annotations

import contextlib
import logging

log = logging.getLogger(__name__)

SERVICE = "switchboard"


class KeyringUnavailable(Exception):
    """No usable keyring backend: the message says what to do."""


class StoredSession:
    def __init__(self, gateway_url: str) -> None:
        self.gateway_url = gateway_url

    def load(self) -> str | None:
        try:
            import keyring

            return keyring.get_password(SERVICE, self.gateway_url) or None
        except Exception as error:
            log.warning("Could not read the keyring: %s", type(error).__name__)
            return None

    def save(self, refresh_token: str) -> None:
        try:
            import keyring

            keyring.set_password(SERVICE, self.gateway_url, refresh_token)
        except Exception as error:
            raise KeyringUnavailable(
                f"Could not keep the session in the OS keyring ({type(error).__name__}): you will need to "
                "sign in again next time. Install a keyring backend (see the keyring package) to keep it."
            ) from None

    def delete(self) -> None:
        try:
            import keyring
            from keyring.errors import PasswordDeleteError

            with contextlib.suppress(PasswordDeleteError):  # nothing stored
                keyring.delete_password(SERVICE, self.gateway_url)
        except Exception as error:
            log.warning("Could not delete the session from the keyring: %s", type(error).__name__)
