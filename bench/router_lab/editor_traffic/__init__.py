"""The editor-traffic suite (items, loader, generators) and the figures a router is judged by on it."""
