"""Converters: one small function per Aliyun response shape, grouped by product.

A converter takes a `Call` (the bound parameters plus the services it may use) and returns the
response body without `RequestId`. Mappings name converters as `<module>.<function>`.
"""

from __future__ import annotations

from .call import Call, Converter
from .ocr import recognize_character, recognize_general

CONVERTERS: dict[str, Converter] = {
    "ocr.recognize_character": recognize_character,
    "ocr.recognize_general": recognize_general,
}

__all__ = ["CONVERTERS", "Call", "Converter"]
