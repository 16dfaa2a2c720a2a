"""URLs that name the proxy's own objects are read from the store, never fetched over HTTP.

An `*Advance` call names its upload as `http://{Bucket}.{upload_host}/{ObjectKey}`, and an app that chains
calls (matting, then enlarging the cut-out) passes a result URL the proxy made: a local `/results/` URL it
signed, or a presigned URL into its own S3 bucket and prefix. Fetching those would go through the SSRF
guard (which rightly refuses the proxy's private address) and back through the network; reading them from
the store needs neither. Only objects that exist and have not expired are read; any other URL is left to
the guarded fetcher, so every other private address stays refused.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from ..aliyun.errors import AliyunError, Err
from ..results import ResultStore, ResultStoreError
from .policy import UploadAuthority, object_expiry


class OwnObjects:
    def __init__(self, store: ResultStore, authority: UploadAuthority) -> None:
        self.store = store
        self.authority = authority
        self.reads = 0  # objects read from the store instead of fetched (tests and logs look at it)

    def locate(self, url: str) -> tuple[str, int] | None:
        """(key, expires) for one of the proxy's own objects; (``, 0) for an upload key it never issued."""
        try:
            return self._locate(url)
        except ValueError:  # not a URL urllib can split (`http://[::1/x`): the guarded fetcher answers it
            return None

    def _locate(self, url: str) -> tuple[str, int] | None:
        parts = urlsplit(url)
        if (parts.hostname or "").lower() == f"{self.authority.bucket}.{self.authority.host_name}":
            key = unquote(parts.path).removeprefix("/")
            expires = object_expiry(key)
            return (key, expires) if expires is not None else ("", 0)
        return self.store.own_key(url)

    async def read(self, url: str, fail: Callable[[Err, str], AliyunError]) -> bytes | None:
        """The object's bytes; None when the URL is not the proxy's; `fail`'s download error (as the action
        words it) when it is but the object is gone or expired."""
        found = self.locate(url)
        if found is None:
            return None
        key, expires = found
        try:
            data = await self.store.read(key, expires) if key else None
        except ResultStoreError:
            raise Err.SERVICE_UNAVAILABLE() from None
        if data is None:
            raise fail(Err.IMAGE_DOWNLOAD, "the object does not exist or has expired")
        self.reads += 1
        return data
