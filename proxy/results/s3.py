"""The S3 result store: PutObject, then a presigned GetObject URL that S3 itself refuses after the ttl.

botocore only (no boto3), credentials from botocore's default chain (environment, profile, IRSA web
identity, container and instance metadata). Every botocore call blocks, so each runs in a thread; the
client is thread-safe. `s3_endpoint_url` reaches VPC endpoints and the China partition
(`https://s3.cn-northwest-1.amazonaws.com.cn`).

Layout in the bucket, below `s3_prefix`:

    results/<expiry epoch, 10 digits>/<key>   the bytes (the listing is in expiry order)
    records/<key>.json                        {"expires", "record"}, metadata `expires`

`cleanup` lists and deletes what has expired: results up to the first live one, records by their
metadata (one HEAD each; records are few). In production a bucket lifecycle rule on the prefix
(expire after 1 day) is the better way; `cleanup` then only finds what the rule has not reached yet.

A presigned URL stops working when the credentials that signed it expire, whatever ExpiresIn says: with
temporary credentials (IRSA, instance roles) keep the session longer than `result_ttl_seconds`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .base import ResultStoreError, check_key, decode_record, encode_record, valid_key

DELETE_BATCH = 1000  # DeleteObjects' limit


class S3ResultStore:
    def __init__(self, bucket: str, prefix: str, ttl_seconds: int, region: str,
                 endpoint_url: str | None = None, addressing_style: str = "auto") -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.ttl = ttl_seconds
        self.region = region
        self.endpoint_url = endpoint_url
        self.addressing_style = addressing_style
        self._client: Any = None

    async def start(self) -> None:
        """Build the client in a thread: botocore reads its service models and the credential chain."""
        self._client = await asyncio.to_thread(self._make_client)

    def _make_client(self) -> Any:
        config = Config(
            signature_version="s3v4",  # the China partition and newer regions accept nothing else
            s3={"addressing_style": self.addressing_style},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=3,
            read_timeout=20,
            max_pool_connections=32,
        )
        return botocore.session.Session().create_client(
            "s3", region_name=self.region, endpoint_url=self.endpoint_url, config=config)

    def _result_key(self, key: str, expires: int) -> str:
        return f"{self.prefix}results/{expires:010d}/{check_key(key)}"

    def _record_key(self, key: str) -> str:
        return f"{self.prefix}records/{check_key(key)}.json"

    async def _call(self, what: str, fn: Any, /, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise ResultStoreError(f"s3 {what}: {exc}") from exc

    # ---- the interface

    async def put(self, key: str, data: bytes, content_type: str, base_url: str) -> str:
        expires = int(time.time() + self.ttl)
        s3_key = self._result_key(key, expires)
        await self._call("PutObject", self._client.put_object, Bucket=self.bucket, Key=s3_key, Body=data,
                         ContentType=content_type, Metadata={"expires": str(expires)})
        # Signing may refresh temporary credentials (a blocking call), hence the thread here too.
        url: str = await self._call("presign", self._client.generate_presigned_url, ClientMethod="get_object",
                                    Params={"Bucket": self.bucket, "Key": s3_key}, ExpiresIn=self.ttl)
        return url

    async def put_record(self, key: str, record: dict[str, Any], ttl_seconds: float) -> None:
        expires = time.time() + ttl_seconds
        body = encode_record(record, ttl_seconds)
        await self._call("PutObject", self._client.put_object, Bucket=self.bucket, Key=self._record_key(key),
                         Body=body, ContentType="application/json", Metadata={"expires": f"{expires:.3f}"})

    async def get_record(self, key: str) -> dict[str, Any] | None:
        """S3 itself never serves a half-written object, but S3-compatible stores built on plain files can
        while another replica overwrites it: an undecodable record is read once more before giving up."""
        s3_key = self._record_key(key)
        for attempt in (1, 2):
            try:
                body = await asyncio.to_thread(self._get_body, s3_key)
            except (BotoCoreError, ClientError) as exc:
                raise ResultStoreError(f"s3 GetObject: {exc}") from exc
            try:
                return decode_record(body)
            except ResultStoreError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05)
        raise AssertionError("unreachable")

    def _get_body(self, s3_key: str) -> bytes | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=s3_key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        with response["Body"] as stream:
            body: bytes = stream.read()
        return body

    # ---- the proxy's own objects (uploads, and result URLs handed back as input): read, never fetched

    async def put_stream_until(self, key: str, body: BinaryIO, content_type: str, expires: int) -> None:
        """Keep an upload (a file object botocore streams) until `expires`: filed under its expiry."""
        await self._call("PutObject", self._client.put_object, Bucket=self.bucket,
                         Key=self._result_key(key, expires), Body=body, ContentType=content_type,
                         Metadata={"expires": str(expires)})

    async def read(self, key: str, expires: int) -> bytes | None:
        """An object's bytes while it exists and has not expired, else None."""
        if not valid_key(key) or expires < time.time():
            return None
        try:
            return await asyncio.to_thread(self._get_body, self._result_key(key, expires))
        except (BotoCoreError, ClientError) as exc:
            raise ResultStoreError(f"s3 GetObject: {exc}") from exc

    async def exists(self, key: str, expires: int) -> bool:
        if not valid_key(key):
            return False
        try:
            await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=self._result_key(key, expires))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise ResultStoreError(f"s3 HeadObject: {exc}") from exc
        except BotoCoreError as exc:
            raise ResultStoreError(f"s3 HeadObject: {exc}") from exc
        return True

    def own_key(self, url: str) -> tuple[str, int] | None:
        """(key, expires) of a URL into this bucket and prefix's results, path- or virtual-host-style.
        Read by key with the store's own credentials; the key names a request id nobody can guess."""
        parts = urlsplit(url)
        host, path = (parts.hostname or "").lower(), unquote(parts.path)
        endpoint = (urlsplit(self.endpoint_url).hostname or "").lower() if self.endpoint_url else None
        if endpoint is not None and host not in (endpoint, f"{self.bucket}.{endpoint}"):
            return None
        if endpoint is None and not re.fullmatch(r"([\w.-]+\.)?s3[\w.-]*\.amazonaws\.com(\.cn)?", host):
            return None
        if host.startswith(f"{self.bucket}."):
            s3_key = path.removeprefix("/")
        elif path.startswith(f"/{self.bucket}/"):
            s3_key = path[len(self.bucket) + 2:]
        else:
            return None
        found = re.fullmatch(rf"{re.escape(self.prefix)}results/(\d{{10}})/(.+)", s3_key)
        if not found or not valid_key(found.group(2)):
            return None
        return found.group(2), int(found.group(1))

    async def cleanup(self) -> int:
        try:
            return await asyncio.to_thread(self._cleanup, time.time())
        except (BotoCoreError, ClientError) as exc:
            raise ResultStoreError(f"s3 cleanup: {exc}") from exc

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)

    # ---- cleanup (in a thread)

    def _cleanup(self, now: float) -> int:
        doomed: list[str] = []
        results = f"{self.prefix}results/"
        for obj in self._list(results):
            epoch = obj["Key"][len(results):].partition("/")[0]
            if not epoch.isdigit():
                continue  # not ours
            if int(epoch) >= now:
                break  # listed in key order, which is expiry order: the rest is live
            doomed.append(obj["Key"])
        for obj in self._list(f"{self.prefix}records/"):
            try:
                head = self._client.head_object(Bucket=self.bucket, Key=obj["Key"])
            except ClientError:
                continue  # gone already (another replica's cleanup)
            try:
                expires = float(head.get("Metadata", {}).get("expires", "inf"))
            except ValueError:
                continue
            if expires < now:
                doomed.append(obj["Key"])
        removed = 0
        for i in range(0, len(doomed), DELETE_BATCH):
            batch = doomed[i:i + DELETE_BATCH]
            response = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            removed += len(batch) - len(response.get("Errors", []))
        return removed

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])
