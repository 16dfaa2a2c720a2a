"""Logs and metrics: hung beside the request path, fed from one place each (the gateway, the kit client)."""

from .logs import configure_logging

__all__ = ["configure_logging"]
