"""Slow and idle clients: every connection is bounded in time, as nginx bounds them.

aiohttp already closes a connection that stays idle `keepalive_timeout` seconds, counted from its accept
and from the end of each answer, while no complete request head has arrived (so it also bounds a head sent
slowly after an idle spell). Two bounds are added here:

- the **header** deadline: a request head must be complete `client_header_timeout` seconds after its
  first byte (one byte a second would otherwise hold the connection for the whole keep-alive time);
  aiohttp has no such knob, hence the small `RequestHandler` subclass below;
- the **body** deadline: the whole body within `client_body_timeout` seconds of the head
  (`request.read_body`), answered with Aliyun's 408 `Timeout`, then the connection is closed without
  aiohttp's lingering read of the rest.

Each closure is counted in `vision_proxy_client_timeouts_total{phase="header"|"body"|"keepalive"}`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ..config import Settings
from ..observability import metrics
from .errors import AliyunError, Err


class GuardedHandler(RequestHandler):
    """aiohttp's connection handler plus a header deadline and counted closures."""

    __slots__ = ("_header_timeout", "_header_timer", "_heads_then")

    def __init__(self, manager: web.Server, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._heads_then = 0  # heads parsed on this connection when the timer started

    def _awaiting_head(self) -> bool:
        """Bytes now belong to a request head: before the first one, or while the handler waits for the next
        (not while a request is served, nor during aiohttp's lingering read of an unread body)."""
        return self._request_count == 0 or (self._waiter is not None and not self._waiter.done())

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None:
            if self._request_count != self._heads_then:  # the head completed
                self._cancel_header_timer()
        elif data and self._awaiting_head():
            self._heads_then = self._request_count
            self._header_timer = self._loop.call_later(self._header_timeout, self._header_expired)

    def _header_expired(self) -> None:
        self._header_timer = None
        if self._request_count == self._heads_then and self.transport is not None:
            metrics.CLIENT_TIMEOUTS.labels("header").inc()
            self.force_close()

    def _process_keepalive(self) -> None:
        was_open = self.transport is not None
        super()._process_keepalive()
        if was_open and self.transport is None:
            metrics.CLIENT_TIMEOUTS.labels("keepalive").inc()

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def close_after_answer(self) -> None:
        """Answer the current request, then close at once: no lingering read of a body that is not coming."""
        self._lingering_time = 0.0
        self.close()


class GuardedServer(web.Server):
    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, loop=self._loop, header_timeout=self.header_timeout, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose connections are GuardedHandlers (the server aiohttp builds, handler swapped)."""

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        # The same handler, factory and options aiohttp chose (keepalive_timeout, access log, handler_args).
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation, loop=asyncio.get_running_loop(),
                             header_timeout=self._header_timeout, **plain._kwargs)


def make_runner(app: web.Application, settings: Settings, **kwargs: Any) -> web.AppRunner:
    """The runner for the Aliyun listener, with the configured header, body and keep-alive bounds."""
    return GuardedRunner(app, header_timeout=settings.client_header_timeout_seconds,
                         keepalive_timeout=settings.keepalive_timeout_seconds, **kwargs)


def body_timed_out(request: web.BaseRequest) -> AliyunError:
    """The body did not arrive in time: counted, answered 408 `Timeout`, and the connection closed after."""
    metrics.CLIENT_TIMEOUTS.labels("body").inc()
    if isinstance(request.protocol, GuardedHandler):
        request.protocol.close_after_answer()
    return Err.TIMEOUT(headers={"Connection": "close"})
