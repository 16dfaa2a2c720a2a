"""The admin listener: /metrics for Prometheus, /healthz for liveness, /readyz for readiness.

Liveness never looks at the upstream (a kit outage must not restart every pod). Readiness is true
only once the proxy can really answer: mappings loaded, services started, AWS credentials found,
a backend configured, and not draining.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from .app import GATEWAY


def readiness(app: web.Application) -> list[str]:
    """Why the proxy is not ready; empty when it is."""
    gateway = app.get(GATEWAY)
    if gateway is None:
        return ["starting"]
    reasons = []
    if gateway.draining:
        reasons.append("draining")
    backends = gateway.s.backends
    if not backends.kit.credentials.available:
        reasons.append("no AWS credentials")
    if backends.settings.kit_url is None and gateway.s.local is None:
        reasons.append("no backend")
    return reasons


def build_admin_app(main: web.Application) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        reasons = readiness(main)
        return web.json_response({"ready": not reasons, "reasons": reasons}, status=503 if reasons else 200)

    admin = web.Application()
    admin.router.add_get("/metrics", make_aiohttp_handler())
    admin.router.add_get("/healthz", healthz)
    admin.router.add_get("/readyz", readyz)
    return admin
