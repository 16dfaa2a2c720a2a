"""TLS terminated by the proxy itself: certificate and key files (PEM), re-read when they change.

The current SDK generations upload `*Advance` files over HTTPS whatever their protocol, and the "no code
change" redirection (a private DNS zone for the Aliyun names) needs a certificate for those names. Either the
proxy holds it (`tls_cert_file`, `tls_key_file`, served on `tls_port`: the API and the uploads both answer
there), or an internal load balancer does and forwards plain HTTP (README). A renewed certificate
(cert-manager rewrites the secret's files) is picked up at the next handshake: each handshake's SNI callback
looks at the files' modification times and swaps in a freshly loaded context when they changed; a broken
pair is logged and the last good one kept.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import structlog
from aiohttp import web

log = structlog.get_logger("tls")

DEFAULT_TLS_PORT = 8443


def _load(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class ReloadingContext:
    """The listener's context; its SNI callback hands each handshake the context of the current files."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert, self.key = cert, key
        self._stamp = self._files_stamp()
        self.current = _load(cert, key)  # a broken pair at start-up stops start-up
        self.context = _load(cert, key)
        self.context.sni_callback = self._pick
        self.reloads = 0

    def _files_stamp(self) -> tuple[int, int]:
        return os.stat(self.cert).st_mtime_ns, os.stat(self.key).st_mtime_ns

    def _pick(self, sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        try:
            stamp = self._files_stamp()
            if stamp != self._stamp:
                self.current = _load(self.cert, self.key)
                self._stamp = stamp
                self.reloads += 1
                log.info("tls.reloaded", cert=str(self.cert))
        except (OSError, ssl.SSLError) as exc:  # half-written during a renewal: keep the last good pair
            log.warning("tls.reload_failed", error=str(exc))
        sock.context = self.current


async def start_tls_site(runner: web.BaseRunner, host: str, cert: Path, key: Path,
                         port: int | None) -> ReloadingContext:
    """Serve the runner's application over TLS on `port` (default 8443; 0: any free port)."""
    reloading = ReloadingContext(cert, key)
    site = web.TCPSite(runner, host, DEFAULT_TLS_PORT if port is None else port, ssl_context=reloading.context)
    await site.start()
    return reloading
