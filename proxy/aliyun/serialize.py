"""Write Aliyun responses: JSON, or XML for V1 callers that ask for it (or say nothing, as POP defaults).

XML follows POP's shape: `<{Action}Response>` root, lists as repeated sibling elements, errors under
`<Error>` with `Recommend` in CDATA.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from .errors import AliyunError, OssErr
from .request import Format

JSON_TYPE = "application/json;charset=utf-8"
XML_TYPE = "text/xml;charset=utf-8"  # the exact type tea-openapi looks for before parsing an XML error


def success(action: str, request_id: str, body: dict[str, Any], fmt: Format) -> web.Response:
    payload = {"RequestId": request_id, **body}
    if fmt == "xml":
        return _respond(200, f"<{action}Response>{_xml(payload)}</{action}Response>", XML_TYPE, request_id)
    return _respond(200, _json(payload), JSON_TYPE, request_id)


def error(err: AliyunError, request_id: str, host_id: str, product: str, fmt: Format) -> web.Response:
    recommend = (f"https://api.aliyun.com/troubleshoot?q={err.code}&product={product}"
                 f"&requestId={request_id}")
    if fmt == "xml":
        text = (f"<Error><RequestId>{request_id}</RequestId><HostId>{escape(host_id)}</HostId>"
                f"<Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message>"
                f"<Recommend><![CDATA[{recommend}]]></Recommend></Error>")
        response = _respond(err.status, text, XML_TYPE, request_id)
    else:
        body = {"RequestId": request_id, "HostId": host_id, "Code": err.code, "Message": err.message,
                "Recommend": recommend}
        response = _respond(err.status, _json(body), JSON_TYPE, request_id)
    response.headers.update(err.headers)
    return response


def _respond(status: int, text: str, content_type: str, request_id: str) -> web.Response:
    if content_type == XML_TYPE:
        text = '<?xml version="1.0" encoding="UTF-8"?>' + text
    return web.Response(status=status, body=text.encode("utf-8"),
                        headers={"Content-Type": content_type, "x-acs-request-id": request_id})


COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once: json.dumps builds one a call


def _json(payload: dict[str, Any]) -> str:
    return COMPACT.encode(payload)


def _xml(value: Any, tag: str | None = None) -> str:
    if isinstance(value, dict):
        inner = "".join(_xml(v, k) for k, v in value.items())
    elif isinstance(value, list):
        return "".join(_xml(item, tag) for item in value)
    elif isinstance(value, bool):
        inner = "true" if value else "false"
    elif value is None:
        inner = ""
    else:
        inner = escape(str(value))
    return inner if tag is None else f"<{tag}>{inner}</{tag}>"


def oss_error(request: web.Request, err: OssErr, *args: object, **extra: str) -> web.Response:
    """OSS's error body (the proxy's own result URLs, its PostObject uploads), so clients that parse it keep
    working."""
    request_id = secrets.token_hex(12).upper()
    fields = {"Code": err.code, "Message": err.message(*args), "RequestId": request_id, "HostId": request.host,
              **extra}
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    return web.Response(status=err.status, body=f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{body}</Error>\n',
                        content_type="application/xml", headers={"x-oss-request-id": request_id})
