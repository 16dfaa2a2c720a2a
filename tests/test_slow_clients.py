"""Slow and idle clients are closed within the configured bounds while signed calls keep being answered.

The proxy runs with short bounds (1 s head, 1 s body, 3 s keep-alive). The tests assert that connections
get closed, and how (the 408 answer, the counters); the 30 s loop bound only keeps a regression from
hanging the suite, it is not a timing claim.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests import imagegen, raw
from tests.harness import ProxyServer, metric_value

GENERAL = ("RecognizeGeneral", "2021-07-07")
BOUND = 30.0  # seconds: a regression guard, never reached when the proxy works


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyServer]:
    with ProxyServer(caller_keys="testid:testsecret", client_header_timeout_seconds=1,
                     client_body_timeout_seconds=1, keepalive_timeout_seconds=3) as server:
        yield server


def timeouts(phase: str) -> float:
    return metric_value("vision_proxy_client_timeouts_total", phase=phase)


def signed_call(proxy: ProxyServer, body: bytes) -> int:
    headers = raw.v3_headers(*GENERAL, host=proxy.endpoint, body=body, content_type="application/octet-stream")
    return raw.request(proxy.port, headers=headers, body=body)[0]


class Caller(threading.Thread):
    """Signed calls in a loop while the slow clients are at it: every one must be answered 200."""

    def __init__(self, proxy: ProxyServer) -> None:
        super().__init__(daemon=True)
        self.proxy, self.statuses, self.done = proxy, [], threading.Event()
        self.body = imagegen.text_image("PNG")

    def run(self) -> None:
        while not self.done.is_set():
            self.statuses.append(signed_call(self.proxy, self.body))

    def stop(self) -> list[int]:
        self.done.set()
        self.join(60)
        return self.statuses


def connect(proxy: ProxyServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    sock.setblocking(False)
    return sock


def trickle_until_closed(socks: list[socket.socket], payload: bytes) -> dict[socket.socket, bytes]:
    """Send `payload` one byte per socket per round (a few bytes a second) until the proxy closes each;
    return what each received before its close."""
    received = {s: b"" for s in socks}
    sent = dict.fromkeys(socks, 0)
    open_ = set(socks)
    end = time.monotonic() + BOUND
    while open_ and time.monotonic() < end:
        for sock in list(open_):
            try:
                while chunk := sock.recv(65536):
                    received[sock] += chunk
                open_.discard(sock)  # b"": the proxy closed it
                continue
            except BlockingIOError:
                pass
            except ConnectionError:
                open_.discard(sock)
                continue
            if sent[sock] < len(payload):
                try:
                    sock.send(payload[sent[sock]:sent[sock] + 1])
                    sent[sock] += 1
                except (BlockingIOError, ConnectionError):
                    pass
        time.sleep(0.3)
    assert not open_, f"{len(open_)} of {len(socks)} slow connections still open after {BOUND} s"
    for sock in socks:
        sock.close()
    return received


def test_slow_request_heads_are_closed_while_signed_calls_are_answered(proxy):
    body = imagegen.text_image("PNG")
    head = "".join(f"{k}: {v}\r\n" for k, v in raw.v3_headers(*GENERAL, host=proxy.endpoint, body=body).items())
    payload = f"POST / HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
    before = timeouts("header")
    caller = Caller(proxy)
    caller.start()
    received = trickle_until_closed([connect(proxy) for _ in range(40)], payload)
    statuses = caller.stop()
    assert not any(received.values())  # closed before a head was complete: nothing to answer
    assert timeouts("header") - before >= 40
    assert statuses and set(statuses) == {200}


def test_trickled_body_is_answered_timeout_and_closed(proxy):
    body = imagegen.text_image("PNG")
    headers = raw.v3_headers(*GENERAL, host=proxy.endpoint, body=body, content_type="application/octet-stream")
    head = "POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(body)}\r\n\r\n"
    before = timeouts("body")
    caller = Caller(proxy)
    caller.start()
    socks = [connect(proxy) for _ in range(10)]
    for sock in socks:
        sock.sendall(head.encode())  # the whole head at once: only the body is slow
    received = trickle_until_closed(socks, body)
    statuses = caller.stop()
    for answer in received.values():
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.split()[1] == b"408", answer[:200]
        assert b"connection: close" in rest.lower()
        assert json.loads(rest.partition(b"\r\n\r\n")[2])["Code"] == "Timeout"
    assert timeouts("body") - before >= 10
    assert statuses and set(statuses) == {200}


def test_idle_connections_are_closed_after_keepalive(proxy):
    before = timeouts("keepalive")
    silent = connect(proxy)  # connects and never sends a byte
    reused = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    body = imagegen.text_image("PNG")
    headers = raw.v3_headers(*GENERAL, host=proxy.endpoint, body=body, content_type="application/octet-stream")
    reused.sendall(("POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                    + f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += reused.recv(65536)
    head, _, rest = answer.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(rest) < length:
        rest += reused.recv(65536)
    assert head.split()[1] == b"200" and b"connection: close" not in head.lower()  # kept alive, then idle
    reused.setblocking(False)
    received = trickle_until_closed([silent, reused], b"")
    assert not any(received.values())
    assert timeouts("keepalive") - before >= 2
