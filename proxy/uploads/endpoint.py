"""OSS PostObject at `{Bucket}.{upload_host}`: the form the SDKs' `*Advance` methods send, checked as OSS
checks it, the file streamed into the result store (spooled to disk past 1 MiB, never held twice).

Answers as OSS gives them: 201 with a `<PostResponse>` body when `success_action_status` is 201, 200 empty
for 200, else 204; refusals as OSS's `<Error>` XML (AccessDenied, SignatureDoesNotMatch, InvalidPolicyDocument,
EntityTooLarge, FileAlreadyExists, ...) with `x-oss-request-id`.

A policy is good for one object. Its key is claimed in the nonce store the API's replay check uses (Redis
`SET NX`, shared by the replicas, or this process's memory), so of several uploads racing with one policy
exactly one is stored and the others get FileAlreadyExists; the store's own `exists` answers a later replay
before its file is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import tempfile
from xml.sax.saxutils import escape

import structlog
from aiohttp import BodyPartReader, web

from ..aliyun.errors import AliyunError, OssErr
from ..aliyun.nonces import NonceStore
from ..aliyun.serialize import oss_error
from ..results import ResultStore, ResultStoreError
from .policy import PolicyRefused, UploadAuthority, object_expiry, size_range

log = structlog.get_logger("uploads")

MAX_FIELD_BYTES = 64 * 1024  # OSS caps the form fields besides the file (policy included) far below this
MAX_FIELDS = 64
SPOOL_BYTES = 1024 * 1024
CHUNK = 64 * 1024
# An API nonce is claimed as "{AccessKeyId}\n{nonce}" (an id is never empty): a leading newline keeps the
# uploads' claims out of the callers' reach.
CLAIM_PREFIX = "\nPostObject\n"


def is_upload_host(authority: UploadAuthority, request: web.Request) -> bool:
    """`{one label}.{upload_host}`, and not an Aliyun API call (which never routes by Host): an API name that
    happens to end in the upload host's name still reaches the API."""
    host = request.host
    name = (host.rpartition(":")[0] if host.count(":") == 1 else host).lower()
    bucket = name.removesuffix("." + authority.host_name)
    if bucket == name or not bucket or "." in bucket:
        return False
    return "x-acs-action" not in request.headers and "Action" not in request.query


async def post_object(request: web.Request, authority: UploadAuthority, store: ResultStore, nonces: NonceStore,
                      timeout: float) -> web.Response:
    """Answer one PostObject; the whole form must arrive within `timeout` (the API's client body timeout)."""
    host = request.host
    bucket = (host.rpartition(":")[0] if host.count(":") == 1 else host).lower()
    bucket = bucket.removesuffix("." + authority.host_name)
    try:
        if bucket != authority.bucket:
            raise PolicyRefused(OssErr.NO_SUCH_BUCKET)
        if request.method != "POST":
            raise PolicyRefused(OssErr.METHOD_NOT_ALLOWED)
        if not request.content_type.startswith("multipart/form-data"):
            raise PolicyRefused(OssErr.BAD_FORM, "Content-Type must be multipart/form-data.")
        async with asyncio.timeout(timeout):
            return await _receive(request, authority, store, nonces, bucket)
    except TimeoutError:
        return oss_error(request, OssErr.REQUEST_TIMEOUT)
    except PolicyRefused as refused:
        log.info("uploads.refused", code=refused.err.code)
        await _drain(request, 2 * authority.max_bytes)
        return oss_error(request, refused.err, *refused.args_)
    except ResultStoreError:
        log.exception("uploads.store_failed")
        return oss_error(request, OssErr.UNAVAILABLE)
    except AliyunError:  # the nonce store could not claim (Redis down and failing closed, memory full)
        return oss_error(request, OssErr.UNAVAILABLE)


async def _receive(request: web.Request, authority: UploadAuthority, store: ResultStore, nonces: NonceStore,
                   bucket: str) -> web.Response:
    reader = await request.multipart()
    fields: dict[str, str] = {}
    while True:
        part = await reader.next()
        if part is None:
            raise PolicyRefused(OssErr.BAD_FORM, "Bucket POST must contain a field named 'file'.")
        if not isinstance(part, BodyPartReader) or not part.name:
            continue
        if part.name.lower() == "file":  # OSS ignores every field after the file
            break
        raw = bytearray()
        while chunk := await part.read_chunk(CHUNK):  # bounded: a field is never read whole before its check
            raw += chunk
            if len(raw) > MAX_FIELD_BYTES:
                raise PolicyRefused(OssErr.BAD_FORM, f"The field {part.name} is too long.")
        if len(fields) >= MAX_FIELDS:
            raise PolicyRefused(OssErr.BAD_FORM, "Too many form fields.")
        fields[part.name.lower()] = raw.decode("utf-8", "replace")
    key = fields.get("key", "")
    if not key:
        raise PolicyRefused(OssErr.BAD_FORM, "Bucket POST must contain a field named 'key'.")
    policy = authority.check(fields, bucket)
    try:
        low, high = size_range(policy, authority.max_bytes)
    except (ValueError, TypeError):
        raise PolicyRefused(OssErr.POLICY_INVALID, "Invalid content-length-range.") from None
    expires = object_expiry(key)
    if expires is None:  # only keys this proxy issued can be stored (the policy fixed the key already)
        raise PolicyRefused(OssErr.POLICY_CONDITION, "key.")
    if await store.exists(key, expires):  # a replay of a stored upload is refused before its file is read
        raise PolicyRefused(OssErr.ALREADY_EXISTS)
    content_type = part.headers.get("Content-Type") or "application/octet-stream"
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > high:
                raise PolicyRefused(OssErr.TOO_LARGE)
            md5.update(chunk)
            if size > SPOOL_BYTES:  # past 1 MiB the spool is a temporary file: write off the loop
                await asyncio.to_thread(spool.write, chunk)
            else:
                spool.write(chunk)
        if size < low:
            raise PolicyRefused(OssErr.TOO_SMALL)
        # The atomic claim, once the file is whole (an upload cut short leaves its policy usable), kept
        # until the object itself expires (past the policy's own expiry). A store failure after it leaves
        # the policy spent: the SDK asks AuthorizeFileUpload for a new one on its next call.
        if not await nonces.claim(CLAIM_PREFIX + key, expires):
            raise PolicyRefused(OssErr.ALREADY_EXISTS)
        spool.seek(0)
        await store.put_stream_until(key, spool, content_type, expires)  # type: ignore[arg-type]
    etag = f'"{md5.hexdigest().upper()}"'
    log.info("uploads.stored", bytes=size)
    status = fields.get("success_action_status", "")
    headers = {"ETag": etag, "x-oss-request-id": secrets.token_hex(12).upper()}
    if status == "201":
        location = f"{request.scheme}://{request.host}/{key}"
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse><Bucket>{escape(bucket)}</Bucket>'
                f"<Location>{escape(location)}</Location><Key>{escape(key)}</Key><ETag>{etag}</ETag></PostResponse>")
        return web.Response(status=201, body=body.encode(), content_type="application/xml", headers=headers)
    return web.Response(status=200 if status == "200" else 204, headers=headers)


async def _drain(request: web.Request, cap: int) -> None:
    """Read what is left of a refused form (up to `cap`), so the client reads the answer, not a reset."""
    with contextlib.suppress(Exception):
        while cap > 0 and (chunk := await request.content.readany()):
            cap -= len(chunk)


