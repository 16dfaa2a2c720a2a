"""Logging set-up and the Prometheus metric definitions: a leaf every layer can import. The observers
that feed request metrics and the request log from each answer live in proxy/observers/."""

from .logs import configure_logging

__all__ = ["configure_logging"]
