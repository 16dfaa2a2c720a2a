"""Talk to the real Aliyun: forward the caller's request, or call an action (to follow async jobs).

V1 requests go byte for byte: their signature covers the parameters, not the host, so Aliyun verifies
the caller's own signature. V3 signs the host, so a V3 request is re-signed with the Aliyun key
configured for that caller (`shadow_keys`); without one it cannot be forwarded.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from ..aliyun.request import FORM, InboundRequest
from ..aliyun.signature import v3_authorization
from .xmlbody import parse_xml

DEFAULT_ENDPOINTS = {
    "ocr": "https://ocr.cn-shanghai.aliyuncs.com",
    "ocr-api": "https://ocr-api.cn-hangzhou.aliyuncs.com",
    "imageseg": "https://imageseg.cn-shanghai.aliyuncs.com",
    "imageenhan": "https://imageenhan.cn-shanghai.aliyuncs.com",
    "viapi": "https://viapi.cn-shanghai.aliyuncs.com",
    "openplatform": "https://openplatform.aliyuncs.com",  # shadow mode: Aliyun answers, so its OSS takes the file
}
HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer",
              "upgrade", "proxy-authorization", "proxy-connection", "expect", "accept-encoding"}


V1_COMMON = {"Action", "Version", "Format", "AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
             "SignatureNonce", "SignatureType", "Timestamp", "RegionId", "SecurityToken"}


class NoAliyunKey(Exception):
    """A V3 caller has no Aliyun key configured, so its request cannot be re-signed for Aliyun."""


@dataclass
class Answer:
    """One side's answer, as the caller would see it."""

    status: int
    body: bytes
    content_type: str
    seconds: float

    def json(self) -> Any:
        """The body as JSON data; an XML answer (a V1 caller's `Format=XML`) is read into the same shape."""
        if "xml" in self.content_type.lower() or self.body.lstrip()[:1] == b"<":
            return parse_xml(self.body)
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class AliyunClient:
    def __init__(self, endpoints: dict[str, str], keys: dict[str, tuple[str, str]], timeout: float) -> None:
        self.endpoints = {**DEFAULT_ENDPOINTS, **endpoints}
        self.keys = keys
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self.timeout, auto_decompress=True)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def can_forward(self, inbound: InboundRequest, caller: str | None) -> bool:
        return inbound.signature_kind == "v1" or (caller is not None and caller in self.keys)

    async def forward(self, inbound: InboundRequest, product: str, caller: str | None,
                      fresh: bool = False, timeout: float | None = None) -> Answer:
        """The caller's request, sent to Aliyun: unchanged for V1, re-signed for V3. `fresh` re-signs a V1
        request too (as V3, with the caller's Aliyun key): sending it twice would reuse its nonce."""
        base = self.endpoints[product]
        target = inbound.path + (f"?{inbound.raw_query}" if inbound.raw_query else "")
        if inbound.signature_kind == "v1" and not fresh:
            headers = {k: v for k, v in inbound.headers.items() if k.lower() not in HOP_BY_HOP}
            return await self._send(inbound.method, base + target, headers, inbound.body, timeout)
        if caller is None or caller not in self.keys:
            raise NoAliyunKey(caller or "")
        keep = {k.lower(): v for k, v in inbound.headers.items()
                if k.lower() in ("content-type", "accept", "x-acs-action", "x-acs-version")}
        keep.update({"x-acs-action": inbound.action or "", "x-acs-version": inbound.version or ""})
        query = inbound.query
        if inbound.signature_kind == "v1":  # V1 common parameters mean nothing to V3: keep only the business ones
            query = [(k, v) for k, v in query if k not in V1_COMMON]
        target = inbound.path + (f"?{urlencode(query)}" if query else "")  # exactly the query that was signed
        headers = self._v3_headers(base, keep, inbound.body, query, inbound.method, caller)
        return await self._send(inbound.method, base + target, headers, inbound.body, timeout)

    async def call(self, product: str, action: str, version: str, params: dict[str, str], caller: str,
                   image: bytes | None = None) -> Answer:
        """A fresh V3 call with the caller's Aliyun key: parameters in a form body, or, with a raw `image`
        body (ocr-api), in the query. Used to follow async jobs and by the offline comparison."""
        if caller not in self.keys:
            raise NoAliyunKey(caller)
        base = self.endpoints[product]
        headers = {"accept": "application/json", "x-acs-action": action, "x-acs-version": version}
        if image is None:
            body, query = urlencode(params).encode(), []
            headers["content-type"] = FORM
        else:
            body, query = image, sorted(params.items())
            headers["content-type"] = "application/octet-stream"
        signed = self._v3_headers(base, headers, body, query, "POST", caller)
        return await self._send("POST", base + "/" + (f"?{urlencode(query)}" if query else ""), signed, body)

    def _v3_headers(self, base: str, headers: dict[str, str], body: bytes, query: list[tuple[str, str]],
                    method: str, caller: str) -> dict[str, str]:
        key_id, secret = self.keys[caller]
        signed = {**headers, "host": urlsplit(base).netloc,
                  "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "x-acs-signature-nonce": uuid.uuid4().hex,
                  "x-acs-content-sha256": hashlib.sha256(body).hexdigest()}
        auth = v3_authorization(method, "/", query, signed, signed["x-acs-content-sha256"], key_id, secret)
        return {**signed, "Authorization": auth}

    async def _send(self, method: str, url: str, headers: dict[str, str], body: bytes,
                    timeout: float | None = None) -> Answer:
        assert self._session is not None, "AliyunClient.start() was not awaited"
        started = time.perf_counter()
        per_call = aiohttp.ClientTimeout(total=timeout) if timeout else None
        async with self._session.request(method, url, headers=headers, data=body or None, timeout=per_call) as resp:
            data = await resp.read()
            return Answer(resp.status, data, resp.headers.get("Content-Type", ""), time.perf_counter() - started)
