"""The request log: one structlog event per answered request. Never secrets or image bytes."""

from __future__ import annotations

import structlog

from ..exchange import Exchange

log = structlog.get_logger("proxy")


def log_exchange(ex: Exchange) -> None:
    spec = ex.spec
    log.info("request", action=spec.action if spec else None, version=spec.version if spec else None,
             product=spec.product if spec else None,
             signature=ex.inbound.signature_kind if ex.inbound else None, caller=ex.caller,
             status=ex.status, code=ex.code, ms=round(ex.seconds * 1000, 1))
