"""Read an Aliyun XML answer (POP's shape, proxy/aliyun/serialize.py) back into the JSON shape, so V1
callers that ask for `Format=XML` are compared like everyone else.

The root (`<{Action}Response>` or `<Error>`) is dropped, an element with children becomes an object,
repeated siblings a list, a leaf its text. XML cannot say "a list of one": the comparators accept an
object where a list is expected (proxy/shadow/compare/ocr.py, `_many`). Numbers stay strings; the
comparators convert them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


def _value(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    out: dict[str, Any] = {}
    for child in children:
        value = _value(child)
        if child.tag in out:
            existing = out[child.tag]
            out[child.tag] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[child.tag] = value
    return out


def parse_xml(body: bytes) -> dict[str, Any] | None:
    """The answer as a dict, or None when it is not XML with children. expat refuses entity expansion
    bombs (Python >= 3.11 with expat >= 2.4.1), and the body comes from Aliyun or the proxy itself."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    value = _value(root)
    return value if isinstance(value, dict) else None
