"""Raw signed HTTP, for what SDKs will not send (replays, stale clocks, chunked bodies, odd Hosts).

Signatures come from the Aliyun SDK's own signing functions (`alibabacloud_tea_openapi.utils.Utils`),
so these requests are signed exactly as a real client signs them.
"""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from alibabacloud_tea_openapi.utils import Utils

KEY, SECRET = "testid", "testsecret"


def stamp(skew_minutes: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(minutes=skew_minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def v1_params(action: str, version: str, params: dict[str, str], method: str = "POST", key: str = KEY,
              secret: str = SECRET, skew_minutes: float = 0, nonce: str | None = None,
              fmt: str | None = "JSON", **common: str) -> dict[str, str]:
    signed = {"Action": action, "Version": version, "Timestamp": stamp(skew_minutes),
              "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
              "SignatureNonce": nonce or uuid.uuid4().hex, "AccessKeyId": key, **common, **params}
    if fmt is not None:
        signed["Format"] = fmt
    signed["Signature"] = Utils.get_rpcsignature(signed, method, secret)
    return signed


def v3_headers(action: str, version: str, host: str, body: bytes = b"", query: dict[str, str] | None = None,
               content_type: str | None = None, key: str = KEY, secret: str = SECRET, method: str = "POST",
               skew_minutes: float = 0, nonce: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"host": host, "x-acs-action": action, "x-acs-version": version, "x-acs-date": stamp(skew_minutes),
               "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
               "x-acs-content-sha256": hashlib.sha256(body).hexdigest(), **extra}
    if content_type:
        headers["content-type"] = content_type
    request = SimpleNamespace(pathname="/", query=query or {}, headers=headers, method=method)
    payload = headers["x-acs-content-sha256"]
    headers["Authorization"] = Utils.get_authorization(request, "ACS3-HMAC-SHA256", payload, key, secret)
    return headers


def exchange(port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send one raw HTTP/1.1 request (any target form, any Host) and read the whole response."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    header_block, _, payload = data.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        payload = _dechunk(payload)
    return status, headers, payload


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out


def request(port: int, method: str = "POST", target: str = "/", headers: dict[str, str] | None = None,
            body: bytes = b"", chunked: bool = False) -> tuple[int, dict[str, str], bytes]:
    headers = dict(headers or {})
    headers.setdefault("host", f"127.0.0.1:{port}")
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
        half = len(body) // 2
        payload = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (body[:half], body[half:]) if p)
        body = payload + b"0\r\n\r\n"
    else:
        headers["Content-Length"] = str(len(body))
    headers["Connection"] = "close"
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return exchange(port, head, body)


def post_v1(port: int, params: dict[str, str], in_body: bool = True) -> tuple[int, dict[str, Any]]:
    """V1 the pop-core way: everything in the form body (or everything in the query)."""
    encoded = urlencode(params)
    if in_body:
        status, _, body = request(port, body=encoded.encode(),
                                  headers={"content-type": "application/x-www-form-urlencoded"})
    else:
        status, _, body = request(port, target=f"/?{encoded}")
    return status, json.loads(body)
