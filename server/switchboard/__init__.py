"""Switchboard: chat with Claude models from any editor, over the Language Server Protocol."""

__version__ = "0.1.0"
