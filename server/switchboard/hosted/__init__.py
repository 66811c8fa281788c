"""Hosted mode: signing in to Switchboard Cloud (the gateway) and chatting through it (docs/gateway.md)."""
