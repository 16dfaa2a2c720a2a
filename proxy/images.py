"""Images in: fetch a caller's URL safely, or take raw bytes; sniff, apply EXIF orientation, enforce limits.

Fetching goes through the SSRF guard (proxy/ssrf.py) at every layer: the URL as aiohttp parses it, the
resolver and every socket the connector opens. Redirects are followed by hand so each hop is checked again.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import aiohttp
from PIL import Image, ImageOps, UnidentifiedImageError
from yarl import URL

from . import workers
from .aliyun.errors import AliyunError, Err
from .mappings import ImageSpec
from .pixels import PixelBudget, rotation_bytes
from .ssrf import (
    UNREACHABLE,
    BadURL,
    Guard,
    GuardedResolver,
    Refused,
    connection_scope,
    guarded_connector,
    is_address,
    refused,
)

Image.MAX_IMAGE_PIXELS = 20000 * 20000  # the largest side any action allows is 10000
MAX_REDIRECTS = 5
EXIF_ORIENTATION = 0x0112
PROBE_BYTES = 64 * 1024  # enough for any supported format's header
INLINE_INSPECT_BYTES = 512 * 1024  # header parsing this size or less stays on the loop
HEAD_FORMATS = ("png", "jpeg")  # headers that end where the pixel data starts (TIFF's IFDs may be anywhere)

# Builds an image failure from its table row and detail: as the action answers it (`ImageSpec.failed`, the
# row its mapping names for that kind) or, with no action, as the row itself.
Fail = Callable[[Err, str], AliyunError]


def _as_itself(kind: Err, detail: str) -> AliyunError:
    return kind(detail)

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


class ImageLoader:
    def __init__(self, allow: list[str], timeout: float, max_bytes: int, pass_url: bool,
                 budget: PixelBudget) -> None:
        self.guard = Guard(allow)
        self.budget = budget
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.pass_url = pass_url
        self._session: aiohttp.ClientSession | None = None
        # the proxy's own objects (uploads, earlier results): read from the store, never fetched (proxy/uploads)
        self.own: Callable[[str, Fail], Awaitable[bytes | None]] | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=guarded_connector(self.guard), auto_decompress=True,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": "vision-proxy image fetcher"},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def from_url(self, url: str, spec: ImageSpec, need_pixels: bool = False) -> LoadedImage:
        """`need_pixels`: the proxy itself works on the image (matting, tiling), so pass-url cannot apply."""
        own = await self.own(url, spec.failed) if self.own is not None else None
        if own is not None:
            return await self.from_bytes(own, spec)
        if self.pass_url and not need_pixels:
            try:
                target = self.guard.check_url(url)  # the kit fetches it: the same guard, the judged URL
            except BadURL as exc:
                raise spec.failed(Err.IMAGE_URL, str(exc)) from None
            await self._check_resolves(target.raw_host or "", spec.failed)
            return LoadedImage(None, "", 0, 0, 0, 0, url=str(target))
        data = await self._fetch(url, min(self.max_bytes, spec.max_bytes), spec.failed)
        return await self.from_bytes(data, spec)

    async def from_bytes(self, data: bytes, spec: ImageSpec) -> LoadedImage:
        if len(data) > spec.max_bytes:
            raise spec.failed(Err.IMAGE_SIZE, f"{len(data)} bytes, the limit is {spec.max_bytes}")
        kind = sniff(data)
        if kind is None or kind not in spec.formats:
            raise spec.failed(Err.IMAGE_FORMAT, f"{kind or 'not an image'}; accepted: {', '.join(spec.formats)}")
        # Only the header is parsed, at a cost bounded by the file's size: a small file (or a big one's head,
        # _inspect_head) is read on the loop (tens of microseconds, less than the thread hop), a larger one
        # off it. Rotating decodes: off it.
        inspected = _inspect(data, kind, spec) if len(data) <= INLINE_INSPECT_BYTES else _inspect_head(data, kind, spec)
        if inspected is None:
            inspected = await workers.cpu(_inspect, data, kind, spec)
        image, orientation = inspected
        if orientation in (2, 3, 4, 5, 6, 7, 8):  # turning it upright decodes it: within the pixel budget
            async with self.budget.hold(rotation_bytes(image.org_width, image.org_height)):
                image.data, image.format = await workers.cpu(_upright, data, kind, spec)
        return image

    async def _check_resolves(self, host: str, fail: Fail) -> None:
        if self.guard.host_allowed(host) or is_address(host):
            return  # allow-listed, or a literal address check_url has judged
        try:
            await GuardedResolver(self.guard).resolve(host)
        except Refused:
            raise fail(Err.IMAGE_URL, UNREACHABLE) from None
        except OSError:
            raise fail(Err.IMAGE_DOWNLOAD, "the host name does not resolve") from None

    async def why_kit_refused(self, url: str, spec: ImageSpec) -> AliyunError:
        """pass-url mode: the kit answers `parameter `url` illegal` both when its download fails and when the
        file is no image it can decode (infer_ocr_app.py `read_img`: aikits_utils.readimg's None either way).
        Fetch the file's head behind the same guard: not reachable is Download, not an image (or one of a
        format the action refuses) is Format; an image that reads fine here means the kit could not get it."""
        try:
            head = await self._fetch(url, PROBE_BYTES, spec.failed, truncate=True)
        except AliyunError as err:
            return err
        kind = sniff(head)
        if kind is None or kind not in spec.formats:
            return spec.failed(Err.IMAGE_FORMAT, f"{kind or 'not an image'}; accepted: {', '.join(spec.formats)}")
        try:
            Image.open(io.BytesIO(head))  # parses the header only
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
            return spec.failed(Err.IMAGE_FORMAT, "the image cannot be decoded")
        return spec.failed(Err.IMAGE_DOWNLOAD, "the backend could not download the image")

    async def download(self, url: str, cap: int) -> bytes:
        """Bytes behind a URL, behind the same SSRF guard (shadow: the result images Aliyun links to)."""
        return await self._fetch(url, cap, _as_itself)

    async def _fetch(self, url: str, cap: int, fail: Fail, truncate: bool = False) -> bytes:
        """`truncate`: the first `cap` bytes are wanted (asked with Range), not an error past them."""
        assert self._session is not None, "ImageLoader.start() was not awaited"
        try:
            target = self.guard.check_url(url)
            for _ in range(MAX_REDIRECTS + 1):
                with connection_scope():
                    location = await self._hop(target, cap, fail, truncate)
                if isinstance(location, bytes):
                    return location
                target = self.guard.check_url(location)
            raise fail(Err.IMAGE_DOWNLOAD, "too many redirects")
        except BadURL as exc:
            raise fail(Err.IMAGE_URL, str(exc)) from None
        except Refused:
            raise fail(Err.IMAGE_URL, UNREACHABLE) from None
        except TimeoutError:
            raise fail(Err.IMAGE_TIMEOUT, "the download timed out") from None
        except aiohttp.ClientConnectorError as exc:
            if refused(exc.os_error):
                raise fail(Err.IMAGE_URL, UNREACHABLE) from None
            raise fail(Err.IMAGE_DOWNLOAD, "connection failed") from None
        except (aiohttp.ClientError, ValueError):
            raise fail(Err.IMAGE_DOWNLOAD, "the download failed") from None

    async def _hop(self, target: URL, cap: int, fail: Fail, truncate: bool = False) -> bytes | str:
        """One request: the body (with `truncate`, its first `cap` bytes, asked with Range), or where a
        redirect points (for the caller to judge before following)."""
        assert self._session is not None
        headers = {"Range": f"bytes=0-{cap - 1}"} if truncate else None
        async with self._session.get(target, allow_redirects=False, headers=headers) as resp:
            if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                return _location(target, resp.headers["Location"])
            if resp.status != 200 and not (truncate and resp.status == 206):
                raise fail(Err.IMAGE_DOWNLOAD, f"HTTP {resp.status}")
            if truncate:
                return await _read_head(resp, cap)
            if resp.content_length is not None and resp.content_length > cap:
                raise fail(Err.IMAGE_SIZE, f"{resp.content_length} bytes, the limit is {cap}")
            return await _read_capped(resp, cap, fail)


def _location(base: URL, location: str) -> str:
    """A redirect target resolved against the hop that sent it, still as written (the guard must see a
    non-ASCII host before yarl normalises it)."""
    try:
        return urljoin(str(base), location)
    except ValueError:
        raise BadURL("the redirect target is malformed") from None


async def _read_head(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    head = b""
    while len(head) < cap and (chunk := await resp.content.read(cap - len(head))):
        head += chunk
    return head


async def _read_capped(resp: aiohttp.ClientResponse, cap: int, fail: Fail) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > cap:
            raise fail(Err.IMAGE_SIZE, f"more than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _inspect(data: bytes, kind: str, spec: ImageSpec) -> tuple[LoadedImage, int]:
    """Dimensions and EXIF orientation from the header, checked against the action's limits; no pixel
    is decoded here."""
    try:
        img = Image.open(io.BytesIO(data))
        org_w, org_h = img.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        # ValueError: a text or ICC chunk inflating past Pillow's limit; SyntaxError: a malformed header
        raise spec.failed(Err.IMAGE_FORMAT, "the image cannot be decoded") from None
    orientation = _orientation(img, spec.failed)
    w, h = (org_h, org_w) if orientation in (5, 6, 7, 8) else (org_w, org_h)
    short, long = sorted((w, h))
    if (short < spec.min_side or long > spec.max_side or (spec.max_short_side and short > spec.max_short_side)
            or (spec.max_aspect and long / short > spec.max_aspect)):
        raise spec.failed(Err.IMAGE_RESOLUTION,
                          f"{w}x{h}; each side must be {spec.min_side}-{spec.max_side} px"
                          + (f", the shorter side at most {spec.max_short_side} px" if spec.max_short_side else "")
                          + (f", with an aspect ratio up to {spec.max_aspect:g}" if spec.max_aspect else ""))
    return LoadedImage(data, kind, w, h, org_w, org_h), orientation


def _inspect_head(data: bytes, kind: str, spec: ImageSpec) -> tuple[LoadedImage, int] | None:
    """A big PNG or JPEG inspected from its first PROBE_BYTES alone, on the loop (~20 us: the thread hop
    costs more, and waits behind any decode in the pool). Pillow reads both headers front to back and stops
    where the pixels start, so a header within them reads as from the whole file; one that goes on past
    them fails to parse, and None sends the whole file to a worker thread, as any other format."""
    if kind not in HEAD_FORMATS:
        return None
    try:
        image, orientation = _inspect(data[:PROBE_BYTES], kind, spec)
    except AliyunError as err:
        if err.kind is Err.IMAGE_FORMAT:  # not parsed within the head: the whole file decides
            return None
        raise  # parsed, and refused (its resolution): the same answer the whole file gets
    image.data = data
    return image, orientation


def _upright(data: bytes, kind: str, spec: ImageSpec) -> tuple[bytes, str]:
    """Apply EXIF orientation: decodes the whole image and re-encodes it (JPEG stays JPEG, else PNG)."""
    try:
        upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        out = io.BytesIO()
        if kind == "jpeg":
            upright.save(out, "JPEG", quality=95)
        else:
            upright.save(out, "PNG")
            kind = "png"
    except (OSError, ValueError, SyntaxError):  # truncated or corrupt pixel data
        raise spec.failed(Err.IMAGE_FORMAT, "the image cannot be decoded") from None
    return out.getvalue(), kind


def _orientation(img: Image.Image, fail: Fail) -> int:
    """EXIF orientation without decoding pixels: Pillow's PNG getexif() would load the whole image."""
    try:
        if img.format == "PNG":
            exif = Image.Exif()
            exif.load(img.info.get("exif") or b"")  # an eXIf chunk before the pixel data
        else:
            exif = img.getexif()
        value: Any = exif.get(EXIF_ORIENTATION, 1)
        return int(value)
    except SyntaxError:  # Pillow: "not a TIFF file", an eXIf/EXIF chunk that is no EXIF at all
        raise fail(Err.IMAGE_FORMAT, "its EXIF block is not valid") from None
    except (AttributeError, OSError, ValueError, TypeError):
        return 1


@contextmanager
def undecodable(spec: ImageSpec | None) -> Iterator[None]:
    """Pixel data Pillow cannot decode (truncated, corrupt, a chunk inflating past its limits) is the
    caller's bad image: InvalidImage.Format, never a 500."""
    try:
        yield
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise (spec.failed if spec else _as_itself)(Err.IMAGE_FORMAT, "the image cannot be decoded") from None
