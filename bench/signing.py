"""Caller signatures for the proxy side of the bench: the proxy runs with a caller key, as in production,
so every request it gets is signed with a fresh nonce (a replayed one would be refused).

Signed by the Aliyun SDK's own functions (`alibabacloud_tea_openapi.utils.Utils`, as tests/raw.py does),
so the proxy verifies exactly what a real client sends. The signed requests are made before the timed
part (`signed`): the load generator's signing cost must not limit the proxy's throughput.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlencode

from alibabacloud_tea_openapi.utils import Utils

KEY, SECRET = "benchid", "benchsecret"
CALLER_KEYS = f"{KEY}:{SECRET}"  # VISION_PROXY_CALLER_KEYS of the proxy under test

Signed = tuple[str, dict[str, str]]  # (URL, headers) of one request


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def v1(base: str, query: str, headers: dict[str, str]) -> Signed:
    """V1 (HMAC-SHA1) RPC signature: Action and Version move from the x-acs headers into the signed query."""
    params = {"Action": headers["x-acs-action"], "Version": headers["x-acs-version"], "Format": "JSON",
              "Timestamp": _stamp(), "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
              "SignatureNonce": uuid.uuid4().hex, "AccessKeyId": KEY, **dict(parse_qsl(query.lstrip("?")))}
    params["Signature"] = Utils.get_rpcsignature(params, "POST", SECRET)
    rest = {k: v for k, v in headers.items() if not k.startswith("x-acs-")}
    return f"{base}/?{urlencode(params)}", rest


def v3(base: str, query: str, headers: dict[str, str], body_sha256: str) -> Signed:
    """V3 (ACS3-HMAC-SHA256) signature over the headers, the query and the body's SHA-256."""
    host = base.split("://", 1)[1]
    signed = {"host": host, "x-acs-date": _stamp(), "x-acs-signature-nonce": uuid.uuid4().hex,
              "x-acs-content-sha256": body_sha256, **{k.lower(): v for k, v in headers.items()}}
    request = SimpleNamespace(pathname="/", query=dict(parse_qsl(query.lstrip("?"))), headers=signed, method="POST")
    signed["Authorization"] = Utils.get_authorization(request, "ACS3-HMAC-SHA256", body_sha256, KEY, SECRET)
    return f"{base}/{query}", signed


def signed(base: str, query: str, headers: dict[str, str], body: bytes, count: int) -> Iterator[Signed]:
    """`count` requests signed now, then (should a run need more) each signed when it is sent. V1 (as the
    issue's RecognizeCharacter run) when the parameters are all in the query, V3 when there is a body."""
    make: Callable[[], Signed]
    if not body:
        def make() -> Signed:
            return v1(base, query, headers)
    else:
        digest = hashlib.sha256(body).hexdigest()

        def make() -> Signed:
            return v3(base, query, headers, digest)
    ready = [make() for _ in range(count)]
    return itertools.chain(ready, iter(make, None))
