"""Where the proxy listens, how it treats its connections, and what it loads at start-up."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from .values import MiB


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    admin_host: str | None = Field(None, description="/metrics, /healthz, /readyz; default: host")
    admin_port: int = Field(9090, ge=0, le=65535)
    drain_grace_seconds: float = Field(20.0, ge=0, description="on SIGTERM: time for in-flight work to finish")
    public_name: str = Field("", description="HostId in error bodies; default: the Host the caller used")

    # inbound limits
    max_body_bytes: int = Field(12 * MiB, ge=1024)
    max_inflight: int = Field(256, ge=1)
    # slow clients (nginx's defaults; proxy/aliyun/connections.py): head complete after its first byte, whole body
    # after the head (12 MiB in 60 s is 210 KB/s), idle keep-alive: above an ALB's 60 s idle timeout
    client_header_timeout_seconds: float = Field(60.0, gt=0)
    client_body_timeout_seconds: float = Field(60.0, gt=0)
    keepalive_timeout_seconds: float = Field(75.0, gt=0)

    mappings_dir: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
