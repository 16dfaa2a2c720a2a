"""`python -m bench [--quick]`: the proxy's added latency and its throughput, as ratios to a bare
pass-through (`bench.servers baseline`) measured in the same run against the same loopback kit stub.

Four processes, so no two share a GIL: this one (the load generator), the kit stub, the baseline and the
proxy (`python -m proxy serve`, unauthenticated loopback mode, default logging sent to /dev/null).
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import aiohttp

from .load import Target, latencies, p50, p95, send, throughputs
from .servers import noise_png

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MiB = 1024 * 1024
V3 = {"x-acs-action": "RecognizeGeneral", "x-acs-version": "2021-07-07"}


@dataclass(frozen=True)
class Profile:
    warmup: int  # requests per side before timing
    count: int  # timed sequential requests per side
    concurrency: int  # workers in the throughput test
    seconds: float  # throughput test time per side
    max_requests: int  # throughput test request cap per side


FULL = Profile(warmup=10, count=100, concurrency=8, seconds=4.0, max_requests=5000)
QUICK = Profile(warmup=3, count=20, concurrency=8, seconds=1.0, max_requests=1000)


class Fleet:
    """The server processes; `stop` ends every one it started, whatever happened in between."""

    def __init__(self) -> None:
        self.procs: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None, port: int | None = None) -> int:
        """Start `python ARGS`; without `port`, the server reports the one it bound as its first line."""
        log = tempfile.TemporaryFile()  # noqa: SIM115 - kept open for the server's life, closed by stop()
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL if port else subprocess.PIPE, stderr=log)
        self.procs[name] = (proc, log)
        if port:
            return port
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"{name} did not start:\n{self.stderr(name)}")
        return int(line)

    def stderr(self, name: str) -> str:
        proc, log = self.procs[name]
        if proc.poll() is None:
            return "(still running)"
        log.seek(0)
        return log.read()[-3000:].decode("utf-8", "replace")

    def check(self) -> None:
        for name, (proc, _) in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.stderr(name)}")

    def stop(self) -> None:
        for proc, _ in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc, log in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def free_port() -> int:
    """`vision-proxy serve` prints the port it was given, not the one bound, so pick one up front."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proxy_env(kit_port: int) -> dict[str, str]:
    """A clean environment: dummy AWS keys for botocore's chain, loopback fetches, no caller keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISION_PROXY_", "AWS_"))}
    env.update(VISION_PROXY_KIT_URL=f"http://127.0.0.1:{kit_port}", VISION_PROXY_FETCH_ALLOW="127.0.0.1/32",
               VISION_PROXY_ADMIN_PORT="0",  # any free port: another run (or engineer) may hold 9090
               AWS_ACCESS_KEY_ID="AKIDBENCHMARK", AWS_SECRET_ACCESS_KEY="bench-secret",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    return env


async def wait_ready(session: aiohttp.ClientSession, url: str, fleet: Fleet, seconds: float = 30) -> None:
    """Any HTTP answer (even an Aliyun error) means the server listens and its services have started."""
    deadline = time.monotonic() + seconds
    while True:
        fleet.check()
        try:
            async with session.get(url) as resp:
                await resp.read()
                return
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {seconds:g} s") from None
            await asyncio.sleep(0.1)


async def verify(session: aiohttp.ClientSession, base: Target, proxy: Target) -> None:
    """Both sides must really carry the stub's answer before their timings mean anything."""
    answer = json.loads(await send(session, base))
    data = json.loads(await send(session, proxy)).get("Data")
    if not isinstance(answer, list) or not isinstance(data, str) or "hello" not in data:
        raise RuntimeError(f"unexpected answers: baseline {answer!r:.200}, proxy Data {data!r:.200}")


async def run(fleet: Fleet, profile: Profile) -> list[dict[str, Any]]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)  # like Ctrl-C: unwind, clean up
    print("bench: starting stub, baseline and proxy", file=sys.stderr)
    stub = fleet.start("stub", ["-m", "bench.servers", "stub", "--image-bytes", str(50 * 1024)])
    kit_route = f"http://127.0.0.1:{stub}/prod/lite-ocr"
    base = fleet.start("baseline", ["-m", "bench.servers", "baseline", "--kit-url", kit_route])
    port = free_port()
    proxy = fleet.start("proxy", ["-m", "proxy", "serve", "--port", str(port)], proxy_env(stub), port=port)
    raw = {"Content-Type": "application/octet-stream", **V3}
    url_query = "?" + urlencode({"Url": f"http://127.0.0.1:{stub}/img.png"})
    # 1 MB and 4 MB fit the kit's payload budget: the budget costs them one length check. 6 MB does not: the
    # proxy re-encodes it (the baseline forwards it as-is, which the real kit would refuse with a 413).
    cases = [("url 50KB png", url_query, b"", V3),
             ("raw 1MB png", "", noise_png(MiB), raw),
             ("raw 4MB png", "", noise_png(4 * MiB), raw),
             ("raw 6MB fitted", "", noise_png(6 * MiB), raw)]
    rows = []
    connector = aiohttp.TCPConnector(limit=profile.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await wait_ready(session, f"http://127.0.0.1:{proxy}/", fleet)
        for name, query, body, headers in cases:
            b = Target(f"http://127.0.0.1:{base}/{query}", body, headers)
            p = Target(f"http://127.0.0.1:{proxy}/{query}", body, headers)
            await verify(session, b, p)
            print(f"bench: {name}: latency x{profile.count}, throughput c={profile.concurrency}", file=sys.stderr)
            b_ms, p_ms = await latencies(session, b, p, profile.warmup, profile.count)
            b_rps, p_rps = await throughputs(session, b, p, profile.concurrency, profile.seconds,
                                             profile.max_requests)
            fleet.check()
            rows.append({"scenario": name, "body_bytes": len(body),
                         "base_p50": p50(b_ms), "base_p95": p95(b_ms), "proxy_p50": p50(p_ms), "proxy_p95": p95(p_ms),
                         "added_ms": p50(p_ms) - p50(b_ms), "latency_ratio": p50(p_ms) / p50(b_ms),
                         "base_rps": b_rps, "proxy_rps": p_rps, "rps_ratio": p_rps / b_rps})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'scenario':<14}{'base p50':>10}{'p95':>8}{'proxy p50':>11}{'p95':>8}{'added':>8}{'lat x':>7}"
            f"{'base rps':>10}{'proxy rps':>11}{'rps x':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['scenario']:<14}{r['base_p50']:>10.1f}{r['base_p95']:>8.1f}{r['proxy_p50']:>11.1f}"
                     f"{r['proxy_p95']:>8.1f}{r['added_ms']:>8.1f}{r['latency_ratio']:>7.2f}"
                     f"{r['base_rps']:>10.1f}{r['proxy_rps']:>11.1f}{r['rps_ratio']:>7.2f}")
    lines.append("latency in ms (p50 / nearest-rank p95); added = proxy p50 - base p50; lat x = p50 ratio "
                 "proxy/base; rps x = throughput ratio proxy/base. Compare ratios only, within one run.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (fewer requests, shorter bursts)")
    parser.add_argument("--no-json", action="store_true", help="do not write bench/results/*.json")
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    fleet = Fleet()
    started = time.monotonic()
    try:
        rows = asyncio.run(run(fleet, profile))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        fleet.stop()
    print(f"vision-proxy bench ({'quick' if args.quick else 'full'}): python {platform.python_version()}, "
          f"{os.cpu_count()} cpus, {profile.count} sequential requests per side after {profile.warmup} warm-up, "
          f"throughput at concurrency {profile.concurrency} for {profile.seconds:g} s per side; "
          f"took {time.monotonic() - started:.0f} s")
    print(table(rows))
    if not args.no_json:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / time.strftime("bench-%Y%m%d-%H%M%S.json", time.gmtime())
        out.write_text(json.dumps({"profile": asdict(profile), "python": platform.python_version(),
                                   "cpus": os.cpu_count(), "rows": rows}, indent=2) + "\n")
        print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
