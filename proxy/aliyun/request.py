"""Parse an inbound Aliyun RPC request: the bytes as sent, plus the view every later step needs.

Parameters are the union of the form-decoded query and a form-encoded body ('+' is a space), names
kept exactly as sent. Routing keys come from `x-acs-action`/`x-acs-version` (V3) or the
`Action`/`Version` parameters (V1). The raw Host, method, path and headers are kept for signature checks.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web
from multidict import CIMultiDictProxy

from .connections import body_timed_out
from .errors import Err, invalid

FORM = "application/x-www-form-urlencoded"
READ_CHUNK = 256 * 1024
YIELD_BYTES = 512 * 1024  # body bytes copied (and hashed) between two turns of the loop (~0.5 ms)

SignatureKind = Literal["v1", "v3", "none"]
Format = Literal["json", "xml"]


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


@dataclass
class InboundRequest:
    method: str
    path: str
    raw_query: str
    headers: CIMultiDictProxy[str]
    body: bytes = b""
    _sha256: str | None = field(default=None, repr=False)  # see body_sha256
    query: list[tuple[str, str]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    request_id: str = field(default_factory=new_request_id)
    form_merged: bool = False

    @property
    def body_sha256(self) -> str:
        """Hex SHA-256 of the body: hashed while it was read when a V3 signature needs it, else on demand
        (V1 and unsigned requests never need it, so they never pay for it)."""
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self.body).hexdigest()
        return self._sha256

    @body_sha256.setter
    def body_sha256(self, value: str) -> None:
        self._sha256 = value

    @property
    def host(self) -> str:
        return self.headers.get("Host", "")

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    @property
    def signature_kind(self) -> SignatureKind:
        if self.headers.get("Authorization", "").startswith("ACS3-"):
            return "v3"
        if "Signature" in self.params or "AccessKeyId" in self.params:
            return "v1"
        return "none"

    @property
    def action(self) -> str | None:
        return self._routing("x-acs-action", "Action")

    @property
    def version(self) -> str | None:
        return self._routing("x-acs-version", "Version")

    def _routing(self, header: str, param: str) -> str | None:
        """A V1 signature covers the parameters, not the x-acs-* headers: a V1 request routes by its
        signed parameters only, so an added header cannot redirect it to another action."""
        if self.signature_kind == "v1":
            return self.params.get(param)
        return self.headers.get(header) or self.params.get(param)

    @property
    def format(self) -> Format:
        """V3 callers always get JSON; V1 gets XML when it asks or says nothing, as Aliyun does (by its signed
        `Format`: an x-acs-action header added to a V1 request is not signed and changes nothing)."""
        if "x-acs-action" in self.headers and self.signature_kind != "v1":
            return "json"
        fmt = self.params.get("Format")
        return "xml" if fmt is None or fmt.upper() == "XML" else "json"

    @property
    def raw_image_body(self) -> bytes | None:
        """The body when it is an image (ocr-api sends octet-stream), not form parameters."""
        if self.body and self.content_type != FORM:
            return self.body
        return None


def begin(request: web.Request) -> InboundRequest:
    """Everything known before the body is read: enough to answer a too-large body in the right format."""
    target = urlsplit(request.raw_path)  # absolute-form targets (HTTP_PROXY callers) split the same way
    inbound = InboundRequest(
        method=request.method,
        path=target.path or "/",
        raw_query=target.query,
        headers=request.headers,
    )
    inbound.query = _form_decode(target.query, "query string")
    inbound.params = dict(inbound.query)
    return inbound


async def read_body(request: web.Request, inbound: InboundRequest, cap: int, timeout: float | None = None) -> None:
    """Read (chunked or sized) with a cap and a deadline, hashing while reading; then merge form parameters
    (V1). A body not complete `timeout` seconds after the head is answered 408 `Timeout` (a slow client)."""
    if request.content_length is not None and request.content_length > cap:
        raise Err.IMAGE_SIZE(f"the request body exceeds {cap} bytes")
    digest = hashlib.sha256() if inbound.signature_kind == "v3" else None  # the header says, before the body
    body = _Body(request.content_length)
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_chunked(READ_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise Err.IMAGE_SIZE(f"the request body exceeds {cap} bytes")
                if digest is not None:
                    digest.update(chunk)  # while the chunk is in the cache (and the GIL released above 2 KB)
                if body.add(chunk):
                    await asyncio.sleep(0)
    except TimeoutError:
        raise body_timed_out(request) from None
    except web.RequestPayloadError:  # aiohttp inflates gzip/deflate bodies itself, and a broken one lands here
        encoding = request.headers.get("Content-Encoding")
        request.content.feed_eof()  # nothing more to read: aiohttp must not drain (and re-raise) after the answer
        close = {"Connection": "close"}  # the rest of the stream cannot be parsed
        raise (invalid("Content-Encoding", f"The body is not valid {encoding[:20]} data.", close) if encoding
               else invalid("Body", "The request body is malformed.", close)) from None
    inbound.body = body.value(size)
    if digest is not None:
        inbound.body_sha256 = digest.hexdigest()
    if inbound.signature_kind != "v3":  # V1 signs the parameters, form body included: needed to verify it
        merge_form(inbound)


class _Body:
    """The body as it arrives. With a Content-Length, each chunk is copied at once into one buffer, whose
    bytes become the body without another copy (BytesIO.getvalue hands its buffer over): one multi-MB
    allocation instead of two (the chunks, then their join); fresh memory's page faults are most of what
    a copy costs here. The buffer grows YIELD_BYTES ahead of the data, never past the announced length:
    sizing 4 MB at once held the loop ~2 ms faulting it in. Without a length (chunked), chunks are joined."""

    def __init__(self, length: int | None) -> None:
        self.length = length or 0
        self.buffer = io.BytesIO() if length else None
        self.sized = 0  # bytes the buffer has room for
        self.chunks: list[bytes] = []
        self.unpaused = 0  # bytes taken since the loop last had a turn

    def add(self, chunk: bytes) -> bool:
        """Keep `chunk`; true when the loop should be given a turn: chunks already buffered come without a
        pause, and copying and hashing a whole 4 MB body in one go held the loop for milliseconds."""
        if self.buffer is None:
            self.chunks.append(chunk)
        else:
            at = self.buffer.tell()
            if at + len(chunk) > self.sized:
                self.sized = min(self.length, max(at + len(chunk), self.sized + YIELD_BYTES))
                self.buffer.seek(self.sized - 1)
                self.buffer.write(b"\0")
                self.buffer.seek(at)
            self.buffer.write(chunk)
        self.unpaused += len(chunk)
        if self.unpaused < YIELD_BYTES:
            return False
        self.unpaused = 0
        return True

    def value(self, size: int) -> bytes:
        if self.buffer is None:
            return b"".join(self.chunks)
        self.buffer.truncate(size)  # the size read is the size announced (aiohttp ends the body there)
        return self.buffer.getvalue()


def merge_form(inbound: InboundRequest) -> None:
    """Add a form body's parameters (once). For V3 this runs after the signature is verified: Content-Type,
    which decides whether the body is a form, is only trusted once it is known to be signed."""
    if inbound.form_merged:
        return
    inbound.form_merged = True
    if inbound.content_type == FORM and inbound.body:
        try:
            text = inbound.body.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid("Body", "The form body is not UTF-8.") from None
        inbound.params.update(_form_decode(text, "form body"))


def _form_decode(text: str, where: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise invalid("QueryString" if where == "query string" else "Body",
                      f"The {where} is not valid form encoding.") from None
