"""Streamed chat, one module per step of a turn (see `feature.py` for the path)."""

from .feature import ChatFeature

__all__ = ["ChatFeature"]
