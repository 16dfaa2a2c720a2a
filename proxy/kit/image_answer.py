"""The kit's image answers, read without a JSON parse (see result_image)."""

from __future__ import annotations

import re

import pybase64

_RESULT_HEAD = re.compile(rb'[ \t\r\n]*\{[ \t\r\n]*"result"[ \t\r\n]*:[ \t\r\n]*"')
_RESULT_TAIL = re.compile(rb'"[ \t\r\n]*\}[ \t\r\n]*\Z')


def result_image(raw: bytes) -> bytes | None:
    """The image of an answer that is exactly `{"result": "<base64>"}` (the kit's image routes), decoded from
    the body in place: a JSON parse would make a multi-MB str of it, then ASCII bytes again for base64, and
    fault in fresh pages for both (40 tiles of 2.7 MB each for a 1920x1080 ×4). pybase64 (SIMD) decodes
    2.7 MB in well under a millisecond, so this stays on the loop. None for anything else (an error shape,
    other keys, JSON escapes such as `\\/`, bad base64): that is parsed as JSON, as before."""
    head = _RESULT_HEAD.match(raw)
    tail = _RESULT_TAIL.search(raw, max(0, len(raw) - 64))
    if head is None or tail is None or tail.start() < head.end():
        return None
    try:
        return pybase64.b64decode(memoryview(raw)[head.end():tail.start()], validate=True)
    except ValueError:  # binascii.Error: a quote, a backslash or anything outside the alphabet
        return None
