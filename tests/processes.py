"""`python -m proxy serve` as a real subprocess: started, waited for (its /readyz), and always stopped.

    with proxy_process({"VISION_PROXY_CALLER_KEYS": "testid:testsecret"}) as served:
        sdk.ocr(served.endpoint)...                  # the app port; served.admin is the admin port
        metric_value("vision_proxy_requests_total", served.metrics(), code="OK")
        served.sigterm(); served.proc.wait(30)       # or served.stop() -> exit code (SIGTERM, then kill)
        assert "testsecret" not in served.output()   # stdout and stderr so far

`env` is laid over `clean_env()` (none of this machine's VISION_PROXY_* or AWS_* settings); the ports are
free loopback ports unless `port` is given. The log goes to a file, not a pipe (a pipe fills up and stalls
the process under load). Several processes starting at once: construct each `ProxyProcess` (it starts at
once), enter them together (`with a, b:`) and `wait_ready` each: they start in parallel, all are stopped.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import requests

from tests.harness import clean_env, free_port


class ProxyProcess:
    """One `python -m proxy serve --port PORT ARGS` process, started on construction; a context manager
    that stops it (SIGTERM, then kill) and removes its log."""

    def __init__(self, env: Mapping[str, str] | None = None, *, port: int | None = None,
                 args: Sequence[str] = ()) -> None:
        self.port, self.admin = port or free_port(), free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.endpoint}"
        self._dir = Path(tempfile.mkdtemp(prefix="proxy-process-"))
        self.log_path = self._dir / "proxy.log"
        full_env = clean_env(**{"VISION_PROXY_ADMIN_PORT": str(self.admin), **(env or {})})
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "proxy", "serve", "--port", str(self.port), *args],
                                         env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 60) -> Self:
        """Return once /readyz answers 200; fail with the process's output if it exits or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.admin_get("/readyz").status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {self.proc.returncode}" if self.proc.poll() is not None else "not ready"
                raise AssertionError(f"proxy process {state} after {timeout} s:\n{self.output()[-3000:]}")
            time.sleep(0.2)

    def admin_get(self, path: str) -> requests.Response:
        """GET on the admin listener (/healthz, /readyz, /metrics)."""
        return requests.get(f"http://127.0.0.1:{self.admin}{path}", timeout=5)

    def metrics(self) -> str:
        """The /metrics page now, for `tests.harness.metric_value`."""
        return self.admin_get("/metrics").text

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def sigterm(self) -> None:
        """Send SIGTERM (the start of a drain) without waiting."""
        self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait for the exit (kill after `timeout`); the exit code. Idempotent."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)


@contextmanager
def proxy_process(env: Mapping[str, str] | None = None, *, port: int | None = None, args: Sequence[str] = (),
                  ready_seconds: float = 60) -> Iterator[ProxyProcess]:
    """Start a proxy process, wait (at most `ready_seconds`) for /readyz, yield it; always stop it."""
    with ProxyProcess(env, port=port, args=args) as served:
        yield served.wait_ready(ready_seconds)
