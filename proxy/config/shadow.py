"""Shadow traffic: who answers the caller, which calls are mirrored to the other side, and how compared."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from .values import MiB, key_entries, split_list


class ShadowSettings(BaseModel):
    shadow_mode: Literal["aws", "shadow", "reverse-shadow"] = "aws"  # who answers the caller
    shadow_actions: Annotated[list[str], NoDecode] = []  # mirrored actions; empty: every shadow-safe one
    shadow_sample: float = Field(0.1, ge=0, le=1, description="share of eligible calls mirrored")
    shadow_sample_by: Literal["random", "access-key"] = "random"  # access-key: the same callers, consistently
    shadow_keys: Annotated[dict[str, tuple[str, SecretStr]], NoDecode] = {}  # caller id -> Aliyun key (V3, polls)
    aliyun_endpoints: dict[str, str] = {}  # product -> URL; defaults to Aliyun's public endpoints
    shadow_timeout_seconds: float = Field(120.0, gt=0)
    shadow_queue_size: int = Field(32, ge=1)
    shadow_concurrency: int = Field(2, ge=1)
    shadow_max_body_bytes: int = Field(4 * MiB, ge=0)  # bigger requests are not mirrored
    shadow_max_image_bytes: int = Field(64 * MiB, ge=1024)  # result images downloaded to compare
    shadow_noise: bool = False  # ask the primary twice; a difference within its own noise is not blamed
    shadow_thresholds: dict[str, dict[str, dict[str, float]]] = {}  # action -> metric -> {min|max}
    # The go/no-go verdict (proxy/shadow/verdicts.py): an action is GO with at least this many comparisons,
    # this agreement, at most this error rate, and AWS's p95 latency at most this multiple of Aliyun's.
    shadow_verdict_min_samples: int = Field(30, ge=1, description="comparisons an action needs for a verdict")
    shadow_verdict_min_agreement: float = Field(0.95, ge=0, le=1, description="(matched+ignored)/compared")
    shadow_verdict_max_error_rate: float = Field(0.05, ge=0, le=1, description="errors / recorded calls")
    shadow_verdict_max_latency_ratio: float = Field(1.5, gt=0, description="AWS p95 / Aliyun p95")
    shadow_store_max_records: int = Field(2000, ge=1)
    shadow_store_max_bytes: int = Field(512 * MiB, ge=1024)

    _parse_actions = field_validator("shadow_actions", mode="before")(split_list)

    @field_validator("shadow_keys", mode="before")
    @classmethod
    def _parse_shadow_keys(cls, value: Any) -> Any:
        """`callerId=AliyunKeyId:AliyunSecret` pairs (commas or lines), or the path of a file holding them."""
        if not isinstance(value, str):
            return value
        keys: dict[str, tuple[str, str]] = {}
        for item in key_entries(value, "=", "callerId=AliyunKeyId:AliyunSecret"):
            caller, _, key = item.partition("=")
            key_id, _, secret = key.partition(":")
            if not (caller and key_id and secret):
                raise ValueError("each entry must be callerId=AliyunKeyId:AliyunSecret")
            keys[caller] = (key_id, secret)
        return keys
