"""Switchboard Cloud: the hosted gateway that meters every turn against a PostgreSQL ledger (docs/gateway.md).

Nothing here is imported by the language server or the terminal client; `switchboard gateway ...` loads it
on demand, and its dependencies come with the `gateway` extra.
"""
