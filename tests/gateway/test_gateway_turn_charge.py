"""`GET /v1/switchboard/turns/{id}`: a turn's charge as the ledger holds it, for the account's own turns
only (how a client that stopped a stream learns what the turn cost)."""

from __future__ import annotations

from typing import Any

import httpx2

from gateway.gateway_support import HTTP, Accounts, Replica, turn_headers, turn_rows

HAIKU = "claude-haiku-4-5-20251001"
BODY: dict[str, Any] = {"model": HAIKU, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


def charge(replica: Replica, token: str | None, turn_id: str) -> httpx2.Response:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return HTTP.get(f"{replica.url}/v1/switchboard/turns/{turn_id}", headers=headers)


async def test_a_turns_charge_is_the_ledgers_and_only_its_account_sees_it(
    make_accounts: Accounts, replica: Replica
) -> None:
    owner, stranger = await make_accounts.create("pro"), await make_accounts.create("pro")
    turn_id = "turn-charge-" + owner.id[-8:]
    headers = {name.lower(): value for name, value in turn_headers("claude-haiku-4.5", turn_id).items()}
    answered = HTTP.post(
        replica.url + "/v1/messages", json=BODY, headers={**headers, "authorization": f"Bearer {owner.token}"}
    )
    assert answered.status_code == 200, answered.text
    [row] = await turn_rows(make_accounts.database_url, owner.id)

    mine = charge(replica, owner.token, turn_id)
    assert mine.status_code == 200, mine.text
    block = mine.json()["switchboard"]
    assert block["turn_id"] == turn_id and block["status"] == "complete" == row["status"]
    assert block["credits"] == row["credits_h"] / 100 and block["credits"] > 0
    assert block == answered.json()["switchboard"]  # the same object the answer carried

    for response in (
        charge(replica, stranger.token, turn_id),
        charge(replica, owner.token, "turn-never-sent"),
    ):
        assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"
    assert charge(replica, None, turn_id).status_code == 401
