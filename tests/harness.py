"""Run real servers for the tests: the proxy (with its embedded backend), image servers, fault kits.

Each server runs on its own event loop in a background thread, because the Aliyun SDKs under test are
blocking clients called from the test thread. Every server is a context manager that closes it:

    with ProxyServer(caller_keys="testid:testsecret") as proxy, serve_files({"/a.png": data}) as files:
        sdk.ocr(proxy.endpoint)...                     # files.url + "/a.png"
    with AppServer(FaultKit().app) as kit: ...         # any aiohttp Application factory
    with LoopThread() as lt, lt.started(LocalBackend(...)) as kit: ...   # async start()/close(), on a loop

Metrics (in this process, or scraped from a `serve` process, tests/processes.py) are read one way:

    metric_value("vision_proxy_kit_calls_total", route="ocr", status="403")    # this process's registry
    metric_value("vision_proxy_requests_total", served.metrics(), code="OK")   # a /metrics text
    metric_label_values("vision_proxy_coverage", "action")                     # the values a label takes

A `python -m proxy serve` subprocess: `proxy_process` in tests/processes.py.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, Self, TypeVar

from aiohttp import web
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from proxy.actions import CONVERTERS
from proxy.aliyun.connections import make_runner
from proxy.app import SERVICES, Services, build_app
from proxy.config import load_settings
from proxy.mappings import ActionSpec, Registry, default_dir, load


class _Startable(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...


_Service = TypeVar("_Service", bound=_Startable)


class LoopThread:
    """An asyncio loop in a daemon thread; `run` submits coroutines from the test thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def cancel_pending() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_pending())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    @contextmanager
    def started(self, service: _Service) -> Iterator[_Service]:
        """`await service.start()` on this loop, yield it, `await service.close()` on the way out: a
        LocalBackend, a KitClient or anything else with async start/close."""
        self.run(service.start())
        try:
            yield service
        finally:
            self.run(service.close())

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class AppServer:
    """Serve an aiohttp Application on 127.0.0.1 (port chosen by the OS) in a LoopThread; over TLS with
    `ssl_context` (then `url` still says http: build the https URL from `port`)."""

    def __init__(self, make_app: Callable[[], web.Application],
                 runner_factory: Callable[..., web.AppRunner] = web.AppRunner,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.lt = LoopThread()
        self.runner: web.AppRunner | None = None

        async def start() -> int:
            self.runner = runner_factory(make_app(), access_log=None, shutdown_timeout=1)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=ssl_context)
            await site.start()
            return int(self.runner.addresses[0][1])

        self.port = self.lt.run(start())
        self.endpoint = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.endpoint}"

    def close(self) -> None:
        if self.runner is not None:
            self.lt.run(self.runner.cleanup())
        self.lt.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class ProxyServer(AppServer):
    """The real proxy application, configured like `vision-proxy serve` would be."""

    def __init__(self, **settings: Any) -> None:
        self.settings = load_settings(None, **settings)
        super().__init__(lambda: build_app(self.settings),  # served as `vision-proxy serve` serves it
                         lambda app, **kw: make_runner(app, self.settings, **kw))

    @property
    def services(self) -> Services:
        assert self.runner is not None
        return self.runner.app[SERVICES]


def proxy_with_aws_keys(access_key: str, secret_key: str, **settings: Any) -> ProxyServer:
    """A proxy whose AWS credentials come from botocore's default chain: the environment, set only while
    it starts (botocore resolves them then). Callers are the test SDK key; loopback images are allowed."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    try:
        return ProxyServer(**{"caller_keys": "testid:testsecret", "fetch_allow": "127.0.0.1/32", **settings})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def serve_files(files: dict[str, bytes], redirects: dict[str, str] | None = None) -> AppServer:
    """A plain HTTP server for test images: path -> bytes, `redirects` path -> a 302 Location (sent as
    given, UTF-8 included), 404 otherwise."""

    def app() -> web.Application:
        async def serve(request: web.Request) -> web.Response:
            if redirects and request.path in redirects:
                return web.Response(status=302, headers={"Location": redirects[request.path]})
            data = files.get(request.path)
            return web.Response(body=data) if data is not None else web.Response(status=404)

        application = web.Application()
        application.router.add_get("/{tail:.*}", serve)
        return application

    return AppServer(app)


def free_port() -> int:
    """A loopback port nothing listens on now (for servers that must be told their port up front)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a proxy subprocess: none of this machine's VISION_PROXY_* or AWS_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISION_PROXY_", "AWS_"))}
    return {**env, **extra}


def metric_value(name: str, text: str | None = None, /, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when none match), parsed with
    prometheus-client's own parser from `text` (a /metrics page) or, by default, this process's registry.
    Name the sample as exposed: `..._total` for a counter, `..._count`/`..._sum`/`..._bucket` for a histogram."""
    if text is None:
        text = generate_latest(REGISTRY).decode()
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and labels.items() <= s.labels.items())



def metric_label_values(prefix: str, label: str, text: str | None = None, /) -> set[str]:
    """Every value the label `label` takes on samples whose name starts with `prefix` (to check that a label
    set is closed), read like `metric_value` from `text` or this process's registry."""
    if text is None:
        text = generate_latest(REGISTRY).decode()
    return {s.labels[label] for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith(prefix) and label in s.labels}

def mapping(action: str, version: str | None = None) -> ActionSpec:
    """The action's mapping, as the proxy loads it (the first version found unless `version` is given)."""
    registry = _registry()
    return next(s for (name, v), s in sorted(registry.specs.items()) if name == action and version in (None, v))


def mapped(predicate: Callable[[ActionSpec], bool]) -> list[ActionSpec]:
    """Every mapped action the predicate accepts, in a stable order: tests cover new mappings unedited."""
    return [s for _, s in sorted(_registry().specs.items()) if predicate(s)]


@functools.cache
def _registry() -> Registry:
    return load(default_dir(), CONVERTERS)
