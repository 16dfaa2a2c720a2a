"""The loopback servers the bench talks to, each started as its own process (`python -m bench.servers ROLE`)
so that no server shares a GIL with the load generator or with another server.

- `stub`: the AI Solution Kit stand-in and the image host. POST /prod/lite-ocr answers a fixed OCR
  result; /prod/super-resolution-ml and /prod/human-segmentation answer at once with a PNG of the size the
  real model would return (made once per size and kept), so what a heavy job costs is the proxy's own
  work. GET /img.png (noise), /photo.jpg (a 12 MP photo-like JPEG), /hd.jpg (1920x1080).
- `baseline`: the least any proxy must do: get the image bytes (the body, or a GET of `Url`), forward
  them to the stub on a pooled session (a fetched image base64 in the kit's `{"img": ...}`, the body
  as-is) and relay the answer.

Each prints its port on stdout once it listens, then serves until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
from collections.abc import AsyncIterator

from aiohttp import ClientSession, TCPConnector, web
from PIL import Image

KIT_ANSWER = b'[{"words":"hello","location":{"top":1,"left":2,"width":30,"height":10},"score":0.99}]'
MAX_BODY = 64 * 1024 * 1024
SESSION = web.AppKey("session", ClientSession)


def noise_png(target_bytes: int) -> bytes:
    """A square PNG of random noise: noise barely compresses, so the file size tracks the pixel count."""
    side = max(16, int((target_bytes / 3) ** 0.5))
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG", compress_level=1)
    return out.getvalue()


def photo_jpeg(width: int, height: int) -> bytes:
    """Smooth colour fields plus fine grain: compresses like a photo (a few MB at 12 MP), decodes like one."""
    small = Image.frombytes("RGB", (width // 64, height // 64), os.urandom((width // 64) * (height // 64) * 3))
    img = small.resize((width, height), Image.Resampling.BICUBIC)
    grain = Image.frombytes("L", (width, height), os.urandom(width * height))
    img = Image.blend(img, Image.merge("RGB", [grain] * 3), 0.08)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def _image_size(request_body: bytes) -> tuple[tuple[int, int], int]:
    """The (width, height) of the request's base64 image (only its header is parsed) and its `scale`."""
    doc = json.loads(request_body)
    data = base64.b64decode(doc["img"])
    with Image.open(io.BytesIO(data)) as img:
        return img.size, int(doc.get("scale", 1))


def _png_b64(mode: str, size: tuple[int, int]) -> bytes:
    """A photo-like PNG (smooth fields and grain, as a real model's output), so decoding it and
    re-encoding the result cost what they would; black-and-white fields for a matte."""
    small = Image.frombytes(mode, (max(1, size[0] // 32), max(1, size[1] // 32)),
                            os.urandom(max(1, size[0] // 32) * max(1, size[1] // 32) * len(mode)))
    img = small.resize(size, Image.Resampling.BICUBIC)
    grain = Image.frombytes("L", size, os.urandom(size[0] * size[1]))
    img = Image.blend(img, grain if mode == "L" else Image.merge("RGB", [grain] * 3), 0.08)
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return b'{"result":"' + base64.b64encode(out.getvalue()) + b'"}'


def stub_app(png: bytes) -> web.Application:
    made: dict[tuple[str, tuple[int, int]], bytes] = {}

    def answer(mode: str, size: tuple[int, int]) -> web.Response:
        if (mode, size) not in made:
            made[mode, size] = _png_b64(mode, size)
        return web.Response(body=made[mode, size], content_type="application/json")

    async def enlarge(request: web.Request) -> web.Response:
        (w, h), scale = _image_size(await request.read())
        return answer("RGB", (w * scale, h * scale))

    async def matte(request: web.Request) -> web.Response:
        size, _ = _image_size(await request.read())
        return answer("L", size)

    photo = photo_jpeg(4000, 3000)
    hd = photo_jpeg(1920, 1080)

    async def ocr(request: web.Request) -> web.Response:
        # Read the whole body so payload size costs what it would, but skip SigV4 verification: that is
        # the kit's work, not the proxy's, and would only add the stub's CPU time to both sides.
        await request.read()
        return web.Response(body=KIT_ANSWER, content_type="application/json")

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/prod/lite-ocr", ocr)
    app.router.add_get("/img.png", image)
    app.router.add_post("/prod/super-resolution-ml", enlarge)
    app.router.add_post("/prod/human-segmentation", matte)
    app.router.add_get("/photo.jpg", lambda _: _jpeg(photo))
    app.router.add_get("/hd.jpg", lambda _: _jpeg(hd))
    return app


async def _jpeg(data: bytes) -> web.Response:
    return web.Response(body=data, content_type="image/jpeg")


def baseline_app(kit_url: str) -> web.Application:
    async def forward(request: web.Request) -> web.Response:
        session = request.app[SESSION]
        url = request.query.get("Url")
        if url:  # the relay: fetch the image, forward it base64 in the kit's JSON, as the proxy must
            async with session.get(url) as got:
                body = b'{"img":"' + base64.b64encode(await got.read()) + b'"}'
        else:
            body = await request.read()
        async with session.post(kit_url, data=body, headers={"Content-Type": "application/json"}) as resp:
            return web.Response(body=await resp.read(), status=resp.status, content_type="application/json")

    async def pooled_session(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = ClientSession(connector=TCPConnector(limit=64))
        yield
        await app[SESSION].close()

    app = web.Application(client_max_size=MAX_BODY)
    app.cleanup_ctx.append(pooled_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def serve(app: web.Application) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(runner.addresses[0][1], flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    parser.add_argument("role", choices=["stub", "baseline"])
    parser.add_argument("--image-bytes", type=int, default=50 * 1024, help="stub: size of /img.png")
    parser.add_argument("--kit-url", help="baseline: the stub's OCR route")
    args = parser.parse_args()
    app = stub_app(noise_png(args.image_bytes)) if args.role == "stub" else baseline_app(args.kit_url)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C in the terminal reaches the whole process group
        asyncio.run(serve(app))


if __name__ == "__main__":
    main()
