"""The payload budget: the kit's limits from config, turned into image bytes that really fit."""

from __future__ import annotations

import base64
import json

import pytest

from proxy.config import KitLimits, Settings
from proxy.kit import budget


def test_defaults_are_the_kits_limits() -> None:
    limits = Settings().kit_limits
    assert (limits.max_request_bytes, limits.max_response_bytes) == (6_291_456, 6_291_556)
    assert limits.max_gateway_body_bytes == 10 * 1024 * 1024


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISION_PROXY_KIT_LIMITS__MAX_REQUEST_BYTES", "1048576")
    assert Settings().kit_limits.max_request_bytes == 1_048_576


@pytest.mark.parametrize("limits", [KitLimits(), KitLimits(max_request_bytes=1_000_000),
                                    KitLimits(max_gateway_body_bytes=500_000)])
def test_the_largest_image_fits_and_one_more_base64_quantum_does_not(limits: KitLimits) -> None:
    raw = budget.max_image_bytes(limits)
    body = json.dumps({"img": base64.b64encode(b"\0" * raw).decode(), "scale": 4}).encode()
    assert budget.request_fits(len(body), limits)
    assert len(body) + limits.event_overhead_bytes <= limits.max_request_bytes
    assert len(body) <= limits.max_gateway_body_bytes
    bigger = budget.base64_length(raw + 3) + budget.REQUEST_WRAP_BYTES
    assert not budget.request_fits(bigger, limits)


def test_answer_budget_and_read_cap() -> None:
    limits = KitLimits()
    png = budget.max_answer_image_bytes(limits)
    answer = json.dumps({"result": base64.b64encode(b"\0" * png).decode()})
    wrapped = json.dumps({"statusCode": 200, "headers": {"Access-Control-Allow-Headers": "*",
                          "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "*"},
                          "body": answer})
    assert len(wrapped) <= limits.max_response_bytes
    assert budget.answer_read_cap(limits) > limits.max_response_bytes
