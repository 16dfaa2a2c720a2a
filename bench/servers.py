"""The loopback servers the bench talks to, each started as its own process (`python -m bench.servers ROLE`)
so that no server shares a GIL with the load generator or with another server.

- `stub`: the AI Solution Kit stand-in (POST /prod/lite-ocr) and the image host (GET /img.png).
- `baseline`: the least any proxy must do: get the image bytes (the body, or a GET of `Url`), forward
  them as-is to the stub on a pooled session and relay the answer.

Each prints its port on stdout once it listens, then serves until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
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


def stub_app(png: bytes) -> web.Application:
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
    return app


def baseline_app(kit_url: str) -> web.Application:
    async def forward(request: web.Request) -> web.Response:
        session = request.app[SESSION]
        url = request.query.get("Url")
        if url:
            async with session.get(url) as got:
                body = await got.read()
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
