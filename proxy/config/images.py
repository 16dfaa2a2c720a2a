"""Caller images: fetched by the proxy or passed to the kit, behind the SSRF guard, within the pixel budget."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from .values import MiB, split_list


class ImageSettings(BaseModel):
    image_mode: Literal["fetch", "pass-url"] = "fetch"
    fetch_allow: Annotated[list[str], NoDecode] = []
    fetch_timeout_seconds: float = Field(5.0, gt=0)
    fetch_max_bytes: int = Field(20 * MiB, ge=1024)
    # decoded pixels in flight (EXIF rotation, matting, enlargement; proxy/pixels.py). The default leaves the
    # Helm chart's 2 GiB limit ~1 GiB for the process itself and the encoded bodies, images and answers in flight
    decode_budget_bytes: int = Field(1024 * MiB, ge=16 * MiB)
    decode_wait_seconds: float = Field(5.0, ge=0, description="wait for budget this long, then Throttling")
    # threads for CPU-bound image work (proxy/workers.py); 0: one fewer than the usable cores (affinity and
    # cgroup CPU quota), at least one, so the event loop keeps a core
    image_threads: int = Field(0, ge=0, le=256)

    _parse_allow = field_validator("fetch_allow", mode="before")(split_list)

    @field_validator("fetch_allow")
    @classmethod
    def _check_allow(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            if "/" in entry:
                ipaddress.ip_network(entry, strict=False)  # raises ValueError naming the entry
        return entries
