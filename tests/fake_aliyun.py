"""The "real Aliyun" for shadow tests, which cannot be reached from here: a server that checks each
forwarded request is exactly what the caller sent (V1: the caller's own signature still verifies) or
correctly re-signed (V3: with the Aliyun key configured for that caller), and answers in the shapes of
Aliyun's official examples.

Its OCR knows where the test image's lines really are (from the font metrics), and reports one line in
the rotated -90° convention Aliyun uses, so the comparators' geometry is exercised. `flaw` injects the
differences a migration lead must see: a missing line, a shifted box, a worse mask, a slow answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import uuid
from typing import Any

from aiohttp import web
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from proxy.aliyun import serialize
from proxy.aliyun.request import InboundRequest, begin
from proxy.aliyun.signature import v1_sign, v1_string_to_sign, v3_sign, v3_string_to_sign
from tests import imagegen
from tests.harness import mapping

CALLER_SECRET = {"testid": "testsecret"}  # V1: Aliyun knows the caller's own key
ALIYUN_KEY = ("LTAIshadowkey", "shadow-secret")  # V3: the key the proxy re-signs with
ASYNC_MESSAGE = ("该调用为异步调用，任务已提交成功，请以requestId的值作为jobId参数调用同类目下"
                 "GetAsyncJobResult接口查询任务执行状态和结果。")


def line_boxes() -> list[tuple[str, tuple[int, int, int, int]]]:
    font = ImageFont.truetype(imagegen.font_path(), imagegen.FONT_SIZE)
    draw = ImageDraw.Draw(Image.new("RGB", imagegen.SIZE))
    return [(text, tuple(int(v) for v in draw.textbbox((x, y), text, font=font)))  # type: ignore[misc]
            for text, x, y in imagegen.LINES]


class FakeAliyun:
    def __init__(self) -> None:
        self.flaw: str | None = None
        self.received: list[dict[str, Any]] = []
        self.images: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.base_url = ""
        self.mask: bytes | None = None  # the matte this "Aliyun" answers with (set by the test)
        self.throttle_after: int | None = None  # answer this many business calls, then refuse as throttled

    def app(self) -> web.Application:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_get("/oss/{name}", self.oss)
        app.router.add_route("*", "/{tail:.*}", self.rpc)
        return app

    async def oss(self, request: web.Request) -> web.Response:
        data = self.images.get(request.match_info["name"])
        return web.Response(body=data, content_type="image/png") if data else web.Response(status=404)

    async def rpc(self, request: web.Request) -> web.Response:
        inbound = begin(request)
        inbound.body = await request.read()
        inbound.body_sha256 = hashlib.sha256(inbound.body).hexdigest()
        if inbound.content_type == "application/x-www-form-urlencoded" and inbound.body:
            from urllib.parse import parse_qsl

            inbound.params.update(parse_qsl(inbound.body.decode(), keep_blank_values=True))
        verdict = self._verify(inbound)
        self.received.append({"action": inbound.action, "kind": inbound.signature_kind, "verdict": verdict,
                              "params": dict(inbound.params), "host": inbound.host,
                              "body_sha256": inbound.body_sha256})
        request_id = str(uuid.uuid4()).upper()
        if verdict != "ok":
            return web.json_response({"RequestId": request_id, "HostId": "fake", "Code": "SignatureDoesNotMatch",
                                      "Message": verdict, "Recommend": ""}, status=400)
        if self.flaw == "slow":
            await asyncio.sleep(3)
        answered = sum(1 for r in self.received if r["verdict"] == "ok" and "JobId" not in r["params"]) - 1
        if self.throttle_after is not None and answered >= self.throttle_after:
            return web.json_response({"RequestId": request_id, "HostId": "fake", "Code": "Throttling.User",
                                      "Message": "Request was denied due to user flow control.",
                                      "Recommend": ""}, status=400)
        if self.flaw == "error":
            return web.json_response({"RequestId": request_id, "HostId": "fake", "Code": "InternalError",
                                      "Message": "boom", "Recommend": ""}, status=500)
        body = await self._answer(inbound, request_id)
        if inbound.signature_kind == "v1" and inbound.format == "xml":  # Aliyun answers V1 in the asked Format
            return serialize.success(inbound.action or "", request_id,
                                     {k: v for k, v in body.items() if k != "RequestId"}, "xml")
        return web.Response(body=json.dumps(body, ensure_ascii=False).encode(),
                            content_type="application/json", charset="utf-8")

    def _verify(self, inbound: InboundRequest) -> str:
        if inbound.signature_kind == "v1":
            secret = CALLER_SECRET.get(inbound.params.get("AccessKeyId", ""))
            sts = v1_string_to_sign(inbound.method, inbound.params)
            ok = secret is not None and v1_sign(secret, sts) == inbound.params.get("Signature")
            return "ok" if ok else "v1 signature does not verify"
        auth = inbound.headers.get("Authorization", "")
        fields = dict(p.split("=", 1) for p in auth.split(" ", 1)[-1].split(","))
        if fields.get("Credential") != ALIYUN_KEY[0]:
            return "v3 not re-signed with the configured Aliyun key"
        sts = v3_string_to_sign(inbound.method, inbound.path, inbound.query, inbound.headers,
                                fields["SignedHeaders"], inbound.body_sha256)
        return "ok" if v3_sign(ALIYUN_KEY[1], sts) == fields.get("Signature") else "v3 signature does not verify"

    async def _answer(self, inbound: InboundRequest, request_id: str) -> dict[str, Any]:
        """Shaped by the action's mapping (its compare and job facts), so a new mapping is answered unedited."""
        try:
            spec = mapping(inbound.action or "", inbound.version)
        except StopIteration:  # an action the proxy does not map: Aliyun still knows it
            return {"RequestId": request_id, "Data": {"Action": inbound.action, "Params": sorted(inbound.params)}}
        if "JobId" in inbound.params and spec.converter.startswith("async_jobs."):  # the job poller
            job_id = inbound.params["JobId"]
            job = self.jobs.get(job_id, {"Status": "PROCESS_FAILED", "ErrorCode": "InvalidParameter"})
            return {"RequestId": request_id, "Data": {"JobId": job_id, **job}}
        compare = spec.compare
        if compare is None:
            return {"RequestId": request_id}
        if compare.lines == "text_rectangles":
            return {"RequestId": request_id, "Data": {"Results": self._characters()}}
        if compare.lines == "prism_words":
            return {"RequestId": request_id, "Data": json.dumps(self._prism(), ensure_ascii=False)}
        if compare.lines == "all_text_blocks":
            return {"RequestId": request_id, "Data": self._all_text(inbound.params.get("OutputCoordinate"))}
        assert compare.family == "matting", f"the fake answers no {compare.family} action"
        url = self._publish(self._matte())
        if spec.job:
            self.jobs[request_id] = {"Status": "PROCESS_SUCCESS", "Result": json.dumps({spec.result_keys[0]: url})}
            return {"RequestId": request_id, "Message": ASYNC_MESSAGE}
        return {"RequestId": request_id, "Data": {spec.result_keys[0]: url}}

    def _lines(self) -> list[tuple[str, tuple[int, int, int, int]]]:
        lines = line_boxes()
        if self.flaw == "missing-line":
            lines = lines[:-1]
        if self.flaw == "shifted-box":
            text, (x0, y0, x1, y1) = lines[0]
            lines[0] = (text, (x0 + 300, y0 + 60, x1 + 300, y1 + 60))
        return lines

    def _characters(self) -> list[dict[str, Any]]:
        results = []
        for i, (text, (x0, y0, x1, y1)) in enumerate(self._lines()):
            w, h = x1 - x0, y1 - y0
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            if i == 1:  # Aliyun's other form for horizontal text: Angle -90, sides swapped, centred
                rect = {"Left": round(cx - h / 2), "Top": round(cy - w / 2), "Width": h, "Height": w, "Angle": -90}
            else:
                rect = {"Left": x0, "Top": y0, "Width": w, "Height": h, "Angle": 0}
            results.append({"TextRectangles": rect, "Text": text, "Probability": 0.99})
        return results

    def _prism(self) -> dict[str, Any]:
        words = []
        for text, (x0, y0, x1, y1) in self._lines():
            words.append({"angle": 0, "direction": 0, "height": y1 - y0, "width": x1 - x0, "word": text, "prob": 99,
                          "x": x0, "y": y0, "pos": [{"x": x0, "y": y0}, {"x": x1, "y": y0}, {"x": x1, "y": y1},
                                                    {"x": x0, "y": y1}]})
        w, h = imagegen.SIZE
        return {"content": "".join(f"{t} " for t, _ in self._lines()), "height": h, "width": w, "orgHeight": h,
                "orgWidth": w, "prism_version": "1.0.9", "prism_wnum": len(words), "prism_wordsInfo": words}

    def _all_text(self, coordinate: str | None) -> dict[str, Any]:
        """RecognizeAllText's Data (an object): one sub-image, a block per line, coordinates when asked."""
        blocks = []
        for i, (text, (x0, y0, x1, y1)) in enumerate(self._lines()):
            block: dict[str, Any] = {"BlockId": i, "BlockAngle": 0, "BlockContent": text, "BlockConfidence": 99}
            if coordinate == "points":
                block["BlockPoints"] = [{"X": x0, "Y": y0}, {"X": x1, "Y": y0}, {"X": x1, "Y": y1}, {"X": x0, "Y": y1}]
            elif coordinate == "rectangle":
                block["BlockRect"] = {"CenterX": (x0 + x1) // 2, "CenterY": (y0 + y1) // 2, "Width": x1 - x0,
                                      "Height": y1 - y0}
            blocks.append(block)
        w, h = imagegen.SIZE
        return {"Height": h, "Width": w, "Content": "".join(f"{t} " for t, _ in self._lines()), "SubImageCount": 1,
                "SubImages": [{"SubImageId": 0, "Angle": 0,
                               "BlockInfo": {"BlockCount": len(blocks), "BlockDetails": blocks}}],
                "AlgoVersion": "", "IsMixedMode": False}

    def _matte(self) -> bytes:
        assert self.mask is not None, "set FakeAliyun.mask"
        if self.flaw != "worse-mask":
            return self.mask
        worse = Image.open(io.BytesIO(self.mask)).convert("L").filter(ImageFilter.MinFilter(41))
        out = io.BytesIO()
        worse.save(out, "PNG")
        return out.getvalue()

    def _publish(self, data: bytes) -> str:
        name = f"{uuid.uuid4().hex}.png"
        self.images[name] = data
        return f"{self.base_url}/oss/{name}?Expires=1617184150&OSSAccessKeyId=LTAI4FoLmvQ9urWXgSRp&Signature=x"
