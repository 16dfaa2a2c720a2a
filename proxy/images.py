"""Images in: fetch a caller's URL safely, or take raw bytes; sniff, apply EXIF orientation, enforce limits.

SSRF guard: every address a name resolves to must be public unless the name or address is allow-listed,
and the connection goes to the address that was checked (a resolver, so DNS rebinding cannot swap it).
Redirects are followed by hand so each hop is checked again.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from PIL import Image, ImageOps, UnidentifiedImageError

from .aliyun.errors import AliyunError, Err
from .mappings import ImageSpec

Image.MAX_IMAGE_PIXELS = 20000 * 20000  # the largest side any action allows is 10000
MAX_REDIRECTS = 5
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # reaches IPv4 targets (the metadata address too) via NAT64
EXIF_ORIENTATION = 0x0112
PROBE_BYTES = 64 * 1024  # enough for any supported format's header

MAGIC: list[tuple[bytes, int, str]] = [
    (b"\xff\xd8\xff", 0, "jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"GIF87a", 0, "gif"),
    (b"GIF89a", 0, "gif"),
    (b"BM", 0, "bmp"),
    (b"II*\x00", 0, "tiff"),
    (b"MM\x00*", 0, "tiff"),
    (b"WEBP", 8, "webp"),
]


@dataclass
class LoadedImage:
    """Image bytes ready for the kit (orientation applied), or a URL the kit fetches itself."""

    data: bytes | None
    format: str
    width: int
    height: int
    org_width: int
    org_height: int
    url: str | None = None


def sniff(data: bytes) -> str | None:
    for magic, offset, name in MAGIC:
        if data[offset:offset + len(magic)] == magic and (name != "webp" or data[:4] == b"RIFF"):
            return name
    return None


class Guard:
    """Decides which addresses and URLs the fetcher may reach."""

    def __init__(self, allow: list[str]) -> None:
        self.networks = [ipaddress.ip_network(a, strict=False) for a in allow if _is_network(a)]
        self.hosts = {a.lower() for a in allow if not _is_network(a)}

    def host_allowed(self, host: str) -> bool:
        return host.lower() in self.hosts

    def address_allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%")[0])
        if any(ip in net for net in self.networks):
            return True
        if ip in METADATA_ADDRESSES or ip in NAT64:
            return False
        return ip.is_global and not ip.is_multicast

    def check_url(self, url: str) -> str:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            raise Err.IMAGE_URL("the URL is malformed") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Err.IMAGE_URL("only http and https URLs are accepted")
        host = parts.hostname
        if _is_network(host) and not self.host_allowed(host) and not self.address_allowed(host):
            raise Err.IMAGE_URL("the address is not reachable from this service")
        return host


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


class GuardedResolver(AbstractResolver):
    """Resolve, then keep only the addresses the guard allows; none left means the fetch is refused."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if self.guard.host_allowed(host):
            return results
        allowed = [r for r in results if self.guard.address_allowed(r["host"])]
        if not allowed:
            raise _Refused(host)
        return allowed

    async def close(self) -> None:
        await self.inner.close()


class _Refused(OSError):
    def __init__(self, host: str) -> None:
        super().__init__(f"{host} resolves only to addresses this service may not reach")


class ImageLoader:
    def __init__(self, allow: list[str], timeout: float, max_bytes: int, pass_url: bool) -> None:
        self.guard = Guard(allow)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.pass_url = pass_url
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.guard), limit=64, ttl_dns_cache=0)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": "vision-proxy image fetcher"},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def from_url(self, url: str, spec: ImageSpec, need_pixels: bool = False) -> LoadedImage:
        """`need_pixels`: the proxy itself works on the image (matting, tiling), so pass-url cannot apply."""
        try:
            if self.pass_url and not need_pixels:
                await self._check_resolves(self.guard.check_url(url))  # the kit fetches it: same guard
                return LoadedImage(None, "", 0, 0, 0, 0, url=url)
            data = await self._fetch(url, min(self.max_bytes, spec.max_bytes))
        except AliyunError as err:
            raise _renamed(err, spec) from None
        return await self.from_bytes(data, spec)

    async def from_bytes(self, data: bytes, spec: ImageSpec) -> LoadedImage:
        if len(data) > spec.max_bytes:
            raise _renamed(Err.IMAGE_SIZE(f"{len(data)} bytes, the limit is {spec.max_bytes}"), spec)
        kind = sniff(data)
        if kind is None or kind not in spec.formats:
            raise _renamed(Err.IMAGE_FORMAT(f"{kind or 'not an image'}; accepted: {', '.join(spec.formats)}"),
                           spec)
        # Always off the loop: a small file can still be a huge image to rotate (EXIF) or to parse.
        return await asyncio.to_thread(_prepare, data, kind, spec)

    async def _check_resolves(self, host: str) -> None:
        if self.guard.host_allowed(host) or _is_network(host):
            return  # allow-listed, or a literal address check_url has judged
        try:
            await GuardedResolver(self.guard).resolve(host)
        except _Refused:
            raise Err.IMAGE_URL("the address is not reachable from this service") from None
        except OSError:
            raise Err.IMAGE_DOWNLOAD("the host name does not resolve") from None

    async def why_kit_refused(self, url: str, spec: ImageSpec) -> AliyunError:
        """pass-url mode: the kit answers `parameter `url` illegal` both when its download fails and when the
        file is no image it can decode (infer_ocr_app.py `read_img`: aikits_utils.readimg's None either way).
        Fetch the file's head behind the same guard: not reachable is Download, not an image (or one of a
        format the action refuses) is Format; an image that reads fine here means the kit could not get it."""
        try:
            head = await self._fetch(url, PROBE_BYTES, truncate=True)
        except AliyunError as err:
            return _renamed(err, spec)
        kind = sniff(head)
        if kind is None or kind not in spec.formats:
            return _renamed(Err.IMAGE_FORMAT(f"{kind or 'not an image'}; accepted: {', '.join(spec.formats)}"), spec)
        try:
            Image.open(io.BytesIO(head))  # parses the header only
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
            return _renamed(Err.IMAGE_FORMAT("the image cannot be decoded"), spec)
        return _renamed(Err.IMAGE_DOWNLOAD("the backend could not download the image"), spec)

    async def download(self, url: str, cap: int) -> bytes:
        """Bytes behind a URL, behind the same SSRF guard (shadow: the result images Aliyun links to)."""
        return await self._fetch(url, cap)

    async def _fetch(self, url: str, cap: int, truncate: bool = False) -> bytes:
        """`truncate`: the first `cap` bytes are wanted (asked with Range), not an error past them."""
        assert self._session is not None, "ImageLoader.start() was not awaited"
        headers = {"Range": f"bytes=0-{cap - 1}"} if truncate else None
        try:
            for _ in range(MAX_REDIRECTS + 1):
                self.guard.check_url(url)
                async with self._session.get(url, allow_redirects=False, headers=headers) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    if resp.status != 200 and not (truncate and resp.status == 206):
                        raise Err.IMAGE_DOWNLOAD(f"HTTP {resp.status}")
                    if truncate:
                        return await _read_head(resp, cap)
                    if resp.content_length is not None and resp.content_length > cap:
                        raise Err.IMAGE_SIZE(f"{resp.content_length} bytes, the limit is {cap}")
                    return await _read_capped(resp, cap)
            raise Err.IMAGE_DOWNLOAD("too many redirects")
        except _Refused:
            raise Err.IMAGE_URL("the address is not reachable from this service") from None
        except TimeoutError:
            raise Err.IMAGE_TIMEOUT() from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, _Refused):
                raise Err.IMAGE_URL("the address is not reachable from this service") from None
            raise Err.IMAGE_DOWNLOAD("connection failed") from None
        except (aiohttp.ClientError, ValueError):
            raise Err.IMAGE_DOWNLOAD("the download failed") from None


async def _read_head(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    head = b""
    while len(head) < cap and (chunk := await resp.content.read(cap - len(head))):
        head += chunk
    return head


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > cap:
            raise Err.IMAGE_SIZE(f"more than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _prepare(data: bytes, kind: str, spec: ImageSpec) -> LoadedImage:
    """Check dimensions from the header, then apply EXIF orientation (re-encoding only when needed)."""
    try:
        img = Image.open(io.BytesIO(data))
        org_w, org_h = img.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise _renamed(Err.IMAGE_FORMAT("the image cannot be decoded"), spec) from None
    orientation = _orientation(img)
    w, h = (org_h, org_w) if orientation in (5, 6, 7, 8) else (org_w, org_h)
    short, long = sorted((w, h))
    if (short < spec.min_side or long > spec.max_side or (spec.max_short_side and short > spec.max_short_side)
            or (spec.max_aspect and long / short > spec.max_aspect)):
        raise _renamed(Err.IMAGE_RESOLUTION(
            f"{w}x{h}; each side must be {spec.min_side}-{spec.max_side} px"
            + (f", the shorter side at most {spec.max_short_side} px" if spec.max_short_side else "")
            + (f", with an aspect ratio up to {spec.max_aspect:g}" if spec.max_aspect else "")), spec)
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        try:
            upright = ImageOps.exif_transpose(img)
            out = io.BytesIO()
            if kind == "jpeg":
                upright.save(out, "JPEG", quality=95)
            else:
                upright.save(out, "PNG")
                kind = "png"
            data = out.getvalue()
        except (OSError, ValueError):
            raise _renamed(Err.IMAGE_FORMAT("the image cannot be decoded"), spec) from None
    return LoadedImage(data, kind, w, h, org_w, org_h)


def _orientation(img: Image.Image) -> int:
    """EXIF orientation without decoding pixels: Pillow's PNG getexif() would load the whole image."""
    try:
        if img.format == "PNG":
            exif = Image.Exif()
            exif.load(img.info.get("exif") or b"")  # an eXIf chunk before the pixel data
        else:
            exif = img.getexif()
        value: Any = exif.get(EXIF_ORIENTATION, 1)
        return int(value)
    except (AttributeError, OSError, ValueError, TypeError):
        return 1


def _renamed(err: AliyunError, spec: ImageSpec) -> AliyunError:
    """Some products name image errors their own way (ocr-api: `illegalImageUrl`)."""
    kinds = {Err.IMAGE_DOWNLOAD: "download", Err.IMAGE_TIMEOUT: "download", Err.IMAGE_FORMAT: "format",
             Err.IMAGE_SIZE: "size", Err.IMAGE_RESOLUTION: "resolution", Err.IMAGE_URL: "url"}
    kind = kinds.get(err.kind) if err.kind else None
    if kind and kind in spec.errors:
        err.code = spec.errors[kind]
    return err
