"""TLS terminated by the proxy: `serve` listens with the configured files, and a renewed pair is picked up
without a restart (a broken one is ignored, the last good pair kept)."""

from __future__ import annotations

import os
import socket
import ssl
import time
from pathlib import Path

import requests

from proxy.tls import start_tls_site
from tests.harness import ProxyServer, free_port
from tests.processes import proxy_process
from tests.tlsnames import make_ca_and_cert


def _issuer(port: int, ca: Path) -> str:
    """The CN of the certificate's issuer that the listener presents, verified against `ca`."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        cert = tls.getpeercert()
    return dict(x[0] for x in cert["issuer"])["commonName"]

def test_a_renewed_certificate_is_used_without_a_restart(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    ca1, cert1, key1 = make_ca_and_cert(first, ("localhost",))
    ca2, cert2, key2 = make_ca_and_cert(second, ("localhost",))
    live_cert, live_key = tmp_path / "tls.crt", tmp_path / "tls.key"
    live_cert.write_bytes(cert1.read_bytes())
    live_key.write_bytes(key1.read_bytes())
    with ProxyServer(data_dir=tmp_path / "data") as proxy:
        port = free_port()
        assert proxy.runner is not None
        reloading = proxy.lt.run(start_tls_site(proxy.runner, "127.0.0.1", live_cert, live_key, port))
        assert _issuer(port, ca1) == "upload test CA"
        live_cert.write_bytes(cert2.read_bytes())
        live_key.write_bytes(key2.read_bytes())
        bump = time.time_ns() + 1_000_000_000  # a later mtime, whatever the file system's resolution
        os.utime(live_cert, ns=(bump, bump))
        os.utime(live_key, ns=(bump, bump))
        _issuer(port, ca2)  # verifies against the second CA only: the new pair is served
        assert reloading.reloads == 1
        live_key.write_bytes(b"half-written")
        os.utime(live_key, ns=(bump + 10**9, bump + 10**9))
        _issuer(port, ca2)  # the broken pair is ignored: the last good one still answers
        assert reloading.reloads == 1

def test_serve_listens_with_tls_when_configured(tmp_path):
    ca, cert, key = make_ca_and_cert(tmp_path, ("localhost",))
    tls_port = free_port()
    env = {"VISION_PROXY_DATA_DIR": str(tmp_path / "data"), "VISION_PROXY_TLS_CERT_FILE": str(cert),
           "VISION_PROXY_TLS_KEY_FILE": str(key), "VISION_PROXY_TLS_PORT": str(tls_port)}
    with proxy_process(env, ready_seconds=90):
        resp = requests.get(f"https://localhost:{tls_port}/?Action=Nothing&Version=2019-12-30", verify=str(ca),
                            timeout=10)
        assert resp.status_code == 404 and "<Code>InvalidAction.NotFound</Code>" in resp.text  # XML: no Format
