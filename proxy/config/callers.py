"""Who may call: Aliyun keys, replay protection (in memory or Redis) and per-caller limits."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from .values import key_entries


class CallerKey(BaseModel):
    """An Aliyun AccessKey the proxy accepts; STS callers are configured the same way plus their token."""

    secret: SecretStr
    security_token: SecretStr | None = None


class CallerLimit(BaseModel):
    """Per-AccessKeyId limits (proxy/limits.py); an unset field inherits the caller_qps/caller_concurrency default."""

    model_config = ConfigDict(extra="forbid")

    qps: float | None = Field(None, gt=0)  # sustained requests a second; bursts of up to max(1, qps)
    concurrency: int | None = Field(None, ge=1)  # requests of this caller being answered at once


def _parse_caller_keys(value: Any) -> Any:
    """`id:secret[:sts-token]` pairs separated by commas or newlines, or the path of a file holding them."""
    if not isinstance(value, str):
        return value
    keys: dict[str, dict[str, str]] = {}
    for item in key_entries(value, ":", "AccessKeyId:Secret"):
        parts = item.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError("each entry must be AccessKeyId:Secret or AccessKeyId:Secret:SecurityToken")
        keys[parts[0]] = {"secret": parts[1], **({"security_token": parts[2]} if len(parts) == 3 else {})}
    return keys


class CallerSettings(BaseModel):
    caller_keys: Annotated[dict[str, CallerKey], NoDecode] = {}
    timestamp_window_seconds: int = Field(900, ge=1)
    # in-memory replay store: 20 B a nonce held 900 s; 2 M sustains 2 200 req/s (one replica: 450-800), 40 MB
    nonce_cache_size: int = Field(2_000_000, ge=1)

    # per-caller limits (proxy/limits.py): beyond them that caller alone gets Throttling.User; unset: none
    caller_qps: float | None = Field(None, gt=0, description="default for every AccessKeyId")
    caller_concurrency: int | None = Field(None, ge=1, description="default for every AccessKeyId")
    caller_limits: dict[str, CallerLimit] = {}  # AccessKeyId -> its own limits, e.g. {"LTAI..": {"qps": 5}}

    # Nonces shared by replicas; unset: in memory (one replica). A secret: the URL may carry a password.
    redis_url: SecretStr | None = None
    redis_fail_open: bool = False  # True: accept requests unchecked for replays while Redis fails (a risk)
    # Redis is on every request's path: a bounded pool of connections opened ahead, that callers wait on.
    # A VPC Redis connects and answers in about a millisecond; the timeouts leave room for a busy process.
    redis_pool_size: int = Field(32, ge=1, le=1024)
    redis_connect_timeout_seconds: float = Field(1.0, gt=0, le=10)
    redis_command_timeout_seconds: float = Field(0.5, gt=0, le=10)  # one reply
    redis_budget_seconds: float = Field(1.5, gt=0, le=10)  # one claim in all: pool wait, connect, reply
    redis_key_prefix: str = "vision-proxy:nonce:"

    _parse_keys = field_validator("caller_keys", mode="before")(_parse_caller_keys)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and urlsplit(url.get_secret_value()).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("give redis://[:password@]host:port[/db], rediss://… (TLS) or unix://path")
        return url
