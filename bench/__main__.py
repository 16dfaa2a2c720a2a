"""`python -m bench [--quick]`: the proxy's added latency and its throughput, as ratios to a bare
pass-through (`bench.servers baseline`) measured in the same run against the same loopback kit stub.

Four processes, so no two share a GIL: this one (the load generator), the kit stub, the baseline and the
proxy (`python -m proxy serve` run through `bench.lag`, which probes its event loop; a caller key, so every
request is signed and verified (bench/signing.py); default logging, rendered and sent to /dev/null). The
baseline and the proxy share one core, the load generator and the stub the other, for OCR by URL (the
issue's "one core each"; bench/cores.py). Each server's CPU and peak RSS are read from /proc. Nothing
leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import aiohttp

from . import cores, procstat, signing
from .lag import window
from .load import Target, latencies, p50, p99, send, throughputs
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
    heavy: int  # sequential jobs per side for matting and enlargement


FULL = Profile(warmup=10, count=100, concurrency=8, seconds=4.0, max_requests=5000, heavy=6)
QUICK = Profile(warmup=3, count=20, concurrency=8, seconds=1.0, max_requests=1000, heavy=2)


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

    def pid(self, name: str) -> int:
        return self.procs[name][0].pid

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
    """A clean environment: dummy AWS keys for botocore's chain, loopback fetches, the bench's caller key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISION_PROXY_", "AWS_"))}
    env.update(VISION_PROXY_KIT_URL=f"http://127.0.0.1:{kit_port}", VISION_PROXY_FETCH_ALLOW="127.0.0.1/32",
               VISION_PROXY_ADMIN_PORT="0",  # any free port: another run (or engineer) may hold 9090
               VISION_PROXY_CALLER_KEYS=signing.CALLER_KEYS,
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


def _ok_ocr(answer: Any, proxy: bool) -> bool:
    if not proxy:
        return isinstance(answer, list)
    data = answer.get("Data")
    return isinstance(data, str) and "hello" in data


def _ok_url(key: str) -> Callable[[Any, bool], bool]:
    return lambda answer, proxy: not proxy or isinstance(answer.get("Data", {}).get(key), str)


async def verify(session: aiohttp.ClientSession, case: Case, base: Target, proxy: Target) -> None:
    """Both sides must really carry the stub's answer before their timings mean anything."""
    for target, is_proxy in ((base, False), (proxy, True)):
        answer = json.loads(await send(session, target))
        if not case.ok(answer, is_proxy):
            raise RuntimeError(f"{case.name}: unexpected answer from {target.url}: {answer!r:.300}")


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    body: bytes
    headers: dict[str, str]
    ok: Callable[[Any, bool], bool]
    heavy: bool = False  # one job at a time: sequential jobs, no throughput burst
    output_raw: int = 0  # the output's raw RGB bytes (heavy jobs: peak RSS growth is compared to it)
    one_core: bool = False  # baseline and proxy pinned to one core, load and stub to the other (bench/cores.py)


def cases(stub: int) -> list[Case]:
    raw = {"Content-Type": "application/octet-stream", **V3}
    img = f"http://127.0.0.1:{stub}"
    sr = {"x-acs-action": "MakeSuperResolutionImage", "x-acs-version": "2019-09-30"}
    seg = {"x-acs-action": "SegmentHDBody", "x-acs-version": "2019-12-30"}
    # 1 MB and 4 MB fit the kit's payload budget: the budget costs them one length check. 6 MB does not: the
    # proxy re-encodes it (the baseline forwards it as-is, which the real kit would refuse with a 413).
    return [Case("url 50KB png", "?" + urlencode({"Url": f"{img}/img.png"}), b"", V3, _ok_ocr, one_core=True),
            Case("raw 1MB png", "", noise_png(MiB), raw, _ok_ocr),
            Case("raw 4MB png", "", noise_png(4 * MiB), raw, _ok_ocr),
            Case("raw 6MB fitted", "", noise_png(6 * MiB), raw, _ok_ocr),
            Case("matte 12MP", "?" + urlencode({"ImageURL": f"{img}/photo.jpg"}), b"", seg, _ok_url("ImageURL"),
                 heavy=True, output_raw=4000 * 3000 * 3),
            Case("x4 1920x1080", "?" + urlencode({"Url": f"{img}/hd.jpg", "UpscaleFactor": "4"}), b"", sr,
                 _ok_url("Url"), heavy=True, output_raw=7680 * 4320 * 3)]


async def heavy_jobs(session: aiohttp.ClientSession, targets: dict[Target, int], count: int
                     ) -> dict[Target, dict[str, Any]]:
    """`count` jobs per side one after another (interleaved): ms per job, CPU per job, peak RSS growth."""
    out: dict[Target, dict[str, Any]] = {t: {"ms": [], "cpu": 0.0, "growth": 0.0, "windows": []} for t in targets}
    for i in range(count):
        for target in targets if i % 2 == 0 else reversed(list(targets)):
            pid = targets[target]
            procstat.reset_peak(pid)
            rss, cpu, started = procstat.rss_mb(pid), procstat.cpu_seconds(pid), time.monotonic()
            await send(session, target)
            ended = time.monotonic()
            row = out[target]
            row["ms"].append((ended - started) * 1000)
            row["cpu"] += procstat.cpu_seconds(pid) - cpu
            row["growth"] = max(row["growth"], procstat.peak_rss_mb(pid) - rss)
            row["windows"].append((started, ended))
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")  # CPU time counts in clock ticks: a tiny job may read 0


async def run(fleet: Fleet, profile: Profile, lag_file: str, data_dir: str, only: str = "") -> list[dict[str, Any]]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)  # like Ctrl-C: unwind, clean up
    print("bench: starting stub, baseline and proxy", file=sys.stderr)
    stub = fleet.start("stub", ["-m", "bench.servers", "stub", "--image-bytes", str(50 * 1024)])
    kit_route = f"http://127.0.0.1:{stub}/prod/lite-ocr"
    base = fleet.start("baseline", ["-m", "bench.servers", "baseline", "--kit-url", kit_route])
    port = free_port()
    proxy = fleet.start("proxy", ["-m", "bench.lag", lag_file, "serve", "--port", str(port)],
                        {**proxy_env(stub), "VISION_PROXY_DATA_DIR": data_dir}, port=port)
    pids = {"base": fleet.pid("baseline"), "proxy": fleet.pid("proxy")}
    rows = []
    connector = aiohttp.TCPConnector(limit=profile.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        await wait_ready(session, f"http://127.0.0.1:{proxy}/", fleet)
        for case in (c for c in cases(stub) if only in c.name):
            b = Target(f"http://127.0.0.1:{base}/{case.query}", case.body, case.headers)
            need = 1 + (profile.heavy if case.heavy else profile.warmup + profile.count + profile.max_requests)
            p = Target(f"http://127.0.0.1:{proxy}/{case.query}", case.body, case.headers,
                       signing.signed(f"http://127.0.0.1:{proxy}", case.query, case.headers, case.body, need))
            cores.place(list(pids.values()), [os.getpid(), fleet.pid("stub")], case.one_core)
            await verify(session, case, b, p)
            row: dict[str, Any] = {"scenario": case.name, "body_bytes": len(case.body)}
            if case.heavy:
                print(f"bench: {case.name}: {profile.heavy} jobs per side", file=sys.stderr)
                jobs = await heavy_jobs(session, {b: pids["base"], p: pids["proxy"]}, profile.heavy)
                b_ms, p_ms, windows = jobs[b]["ms"], jobs[p]["ms"], jobs[p]["windows"]
                row["lag_alone_p99"] = float("nan")  # jobs run one at a time: the lag columns are that already
                row.update(base_rps=1000 / statistics.mean(b_ms), proxy_rps=1000 / statistics.mean(p_ms),
                           base_cpu_ms=jobs[b]["cpu"] * 1000 / len(b_ms),
                           proxy_cpu_ms=jobs[p]["cpu"] * 1000 / len(p_ms),
                           proxy_rss_growth_mb=jobs[p]["growth"],
                           rss_per_output=jobs[p]["growth"] * MiB / case.output_raw)
            else:
                print(f"bench: {case.name}: latency x{profile.count}, throughput c={profile.concurrency}",
                      file=sys.stderr)
                procstat.reset_peak(pids["proxy"])
                rss = procstat.rss_mb(pids["proxy"])
                b_ms, p_ms, alone = await latencies(session, b, p, profile.warmup, profile.count)
                sides = await throughputs(session, {b: lambda: procstat.cpu_seconds(pids["base"]),
                                                    p: lambda: procstat.cpu_seconds(pids["proxy"])},
                                          profile.concurrency, profile.seconds, profile.max_requests)
                windows = sides[p].windows
                row["lag_alone_p99"] = p99([ms for start, end in alone for ms in window(lag_file, start, end)])
                row.update(base_rps=sides[b].rps, proxy_rps=sides[p].rps, base_cpu_ms=sides[b].cpu_ms,
                           proxy_cpu_ms=sides[p].cpu_ms, proxy_rss_growth_mb=procstat.peak_rss_mb(pids["proxy"]) - rss)
            fleet.check()
            lag = [ms for start, end in windows for ms in window(lag_file, start, end)]
            row.update(base_p50=p50(b_ms), base_p99=p99(b_ms), proxy_p50=p50(p_ms), proxy_p99=p99(p_ms),
                       added_ms=p50(p_ms) - p50(b_ms), rps_ratio=row["proxy_rps"] / row["base_rps"],
                       cpu_ratio=_ratio(row["proxy_cpu_ms"], row["base_cpu_ms"]),
                       lag_p50=p50(lag) if lag else float("nan"),
                       lag_p99=p99(lag), lag_max=max(lag, default=float("nan")))
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'scenario':<15}{'base p50':>9}{'p99':>7}{'proxy p50':>10}{'p99':>7}{'added':>7}"
            f"{'base rps':>9}{'proxy rps':>10}{'rps x':>6}{'base cpu':>9}{'proxy cpu':>10}{'cpu x':>6}"
            f"{'+RSS MB':>8}{'lag p99':>8}{'max':>6}{'alone':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['scenario']:<15}{r['base_p50']:>9.1f}{r['base_p99']:>7.1f}{r['proxy_p50']:>10.1f}"
                     f"{r['proxy_p99']:>7.1f}{r['added_ms']:>7.1f}{r['base_rps']:>9.1f}{r['proxy_rps']:>10.1f}"
                     f"{r['rps_ratio']:>6.2f}{r['base_cpu_ms']:>9.2f}{r['proxy_cpu_ms']:>10.2f}{r['cpu_ratio']:>6.2f}"
                     f"{r['proxy_rss_growth_mb']:>8.0f}{r['lag_p99']:>8.1f}{r['lag_max']:>6.1f}{r['lag_alone_p99']:>6.1f}")
    lines.append("ms: latency p50 / nearest-rank p99 of sequential requests; added = proxy p50 - base p50; rps: "
                 "throughput at the set concurrency (heavy jobs: one at a time); cpu: the server process's own CPU "
                 "ms per request (utime+stime); +RSS: the proxy's peak RSS (VmHWM) above its RSS before; lag: "
                 "the proxy's event-loop lag (ms) during the throughput test (heavy: during the jobs); alone: its p99 "
                 "while the proxy serves one request at a time. Compare ratios only, within one run.")
    for r in rows:
        if "rss_per_output" in r:
            lines.append(f"{r['scenario']}: proxy peak RSS growth = {r['rss_per_output']:.2f}x the output's raw RGB "
                         "size; baseline = fetch the image and forward it once (no real work).")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (fewer requests, shorter bursts)")
    parser.add_argument("--no-json", action="store_true", help="do not write bench/results/*.json")
    parser.add_argument("--only", metavar="TEXT", help="run only the scenarios whose name contains TEXT")
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    fleet = Fleet()
    started = time.monotonic()
    cores.available()  # the cores there are, before the bench pins itself to one
    try:
        with tempfile.TemporaryDirectory(prefix="vision-bench-") as tmp:
            rows = asyncio.run(run(fleet, profile, f"{tmp}/lag.txt", f"{tmp}/data", args.only or ""))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        fleet.stop()
    pinned = "OCR by URL: baseline and proxy on one, load and stub on the other" if cores.split() else "unpinned"
    print(f"vision-proxy bench ({'quick' if args.quick else 'full'}): python {platform.python_version()}, "
          f"{os.cpu_count()} cpus ({pinned}), "
          f"{profile.count} sequential requests per side after {profile.warmup} warm-up, "
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
