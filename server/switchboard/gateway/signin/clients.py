"""The public OAuth clients (they hold no secret, so `token_endpoint_auth_methods_supported` is "none")."""

from __future__ import annotations

PUBLIC_CLIENTS: dict[str, str] = {
    "switchboard-vscode": "Switchboard for VS Code",
    "switchboard-terminal": "the Switchboard terminal client",
    "switchboard-nvim": "Switchboard for Neovim",
}


def is_known_client(client_id: str | None) -> bool:
    return client_id is not None and client_id in PUBLIC_CLIENTS


def client_name(client_id: str) -> str:
    return PUBLIC_CLIENTS.get(client_id, client_id)
