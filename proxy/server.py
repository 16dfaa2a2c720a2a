"""Serve the proxy and its admin listener, and drain on SIGTERM so a rolling update loses nothing.

Drain: readiness turns false and answers say `Connection: close`; the listener stops accepting; requests
in flight and async jobs get `drain_grace_seconds` to finish (jobs left over are recorded as failed);
then the admin listener closes last, so probes see the drain.
"""

from __future__ import annotations

import asyncio
import signal
import time

import structlog
from aiohttp import web

from .admin import build_admin_app
from .aliyun.connections import make_runner
from .app import GATEWAY, SERVICES, build_app
from .config import Settings
from .tls import start_tls_site

log = structlog.get_logger("server")


async def serve(settings: Settings) -> None:
    app = build_app(settings)  # raises MappingError before anything listens
    runner = make_runner(app, settings, access_log=None, shutdown_timeout=settings.drain_grace_seconds,
                         handle_signals=False)  # slow and idle clients time out (proxy/aliyun/connections.py)
    admin = web.AppRunner(build_admin_app(app), access_log=None)
    await runner.setup()
    await admin.setup()
    try:
        await web.TCPSite(admin, settings.admin_host or settings.host, settings.admin_port).start()
        await web.TCPSite(runner, settings.host, settings.port).start()
        if settings.tls_cert_file and settings.tls_key_file:  # the API and the uploads, over TLS (proxy/tls.py)
            await start_tls_site(runner, settings.host, settings.tls_cert_file, settings.tls_key_file,
                                 settings.tls_port)
    except OSError:  # a busy port: close what was opened; the CLI says it in one line
        await runner.cleanup()
        await admin.cleanup()
        raise
    log.info("server.listening", app=f"{settings.host}:{runner.addresses[0][1]}",
             admin=f"{settings.admin_host or settings.host}:{admin.addresses[0][1]}",
             config=settings.model_dump(mode="json"))  # SecretStr values print masked
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("server.draining", grace_seconds=settings.drain_grace_seconds)
    app[GATEWAY].draining = True
    app[SERVICES].drain_deadline = time.monotonic() + settings.drain_grace_seconds
    await runner.cleanup()
    await admin.cleanup()
    log.info("server.stopped")
