"""The one config model. Every field reads from `VISION_PROXY_<NAME>` and from an optional YAML file.

Precedence: command-line flags > environment > YAML file > defaults. A wrong value stops start-up with
a message naming the key (see `load_settings`).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, HttpUrl, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

MiB = 1024 * 1024


class CallerKey(BaseModel):
    """An Aliyun AccessKey the proxy accepts; STS callers are configured the same way plus their token."""

    secret: SecretStr
    security_token: SecretStr | None = None


class CallerLimit(BaseModel):
    """Per-AccessKeyId limits (proxy/limits.py); an unset field inherits the caller_qps/caller_concurrency default."""

    model_config = {"extra": "forbid"}

    qps: float | None = Field(None, gt=0)  # sustained requests a second; bursts of up to max(1, qps)
    concurrency: int | None = Field(None, ge=1)  # requests of this caller being answered at once


class KitRouteTimeouts(BaseModel):
    """Seconds one kit call may take when no caller waits on it (async jobs and their tiles, keep-warm, shadow):
    the kit's own limits (proxy/kit/timeouts.py). 30 s: API Gateway cuts every route at 29 s (the Lambdas
    themselves at 19 s), so its own 504 arrives first. Routes sent straight to SageMaker use
    kit_sagemaker_timeout_seconds instead."""

    ocr: Annotated[float, Field(gt=0)] = 30.0
    segmentation: Annotated[float, Field(gt=0)] = 30.0
    super_resolution: Annotated[float, Field(gt=0)] = 30.0


class KitRoutes(BaseModel):
    """AI Solution Kit resource paths, below the stage (the `-ml` ones are SageMaker-backed)."""

    ocr: str = "lite-ocr"
    segmentation: str = "human-segmentation"
    super_resolution: str = "super-resolution-ml"


class KitLimits(BaseModel):
    """The kit's payload limits, the one place they are written (proxy/kit/budget.py turns them into image
    sizes). Defaults are AWS's: a Lambda behind API Gateway's proxy integration (the kit's lambda-feature-
    construct.ts) takes a request event of at most 6,291,456 bytes (RequestEntityTooLargeException: "Request
    must be smaller than 6291456 bytes") and answers at most 6,291,556 (6 MiB + 100; over it the gateway
    says 502); a REST API body is at most 10 MiB (413 from API Gateway)."""

    max_request_bytes: int = Field(default=6_291_456, ge=64 * 1024, description="Lambda request event, whole")
    max_response_bytes: int = Field(default=6_291_556, ge=64 * 1024, description="Lambda answer, whole")
    max_gateway_body_bytes: int = Field(default=10 * MiB, ge=64 * 1024, description="API Gateway REST request body")
    # What the gateway wraps around the body in the event: ~40 headers twice (headers, multiValueHeaders;
    # the SigV4 ones with an STS token run to ~2 KB), requestContext, identity. Measured ~4-6 KB; room to spare.
    event_overhead_bytes: int = Field(default=16 * 1024, ge=0)
    answer_margin_bytes: int = Field(default=64 * 1024, ge=0, description="read cap = max_response_bytes + this")


def _key_entries(value: str, marker: str, shape: str) -> list[str]:
    """Entries of a key list given inline (commas or newlines; `#` comments) or as the path of a file holding
    them (a mounted Secret). An inline list is told from a path by `marker`; values are never echoed."""
    text = value.strip()
    if text and marker not in text.splitlines()[0]:
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"neither '{shape}' pairs nor the path of a readable file (value not shown)")
        text = path.read_text()
    entries = (item.strip() for item in text.replace(",", "\n").splitlines())
    return [item for item in entries if item and not item.startswith("#")]


def _parse_caller_keys(value: Any) -> Any:
    """`id:secret[:sts-token]` pairs separated by commas or newlines, or the path of a file holding them."""
    if not isinstance(value, str):
        return value
    keys: dict[str, dict[str, str]] = {}
    for item in _key_entries(value, ":", "AccessKeyId:Secret"):
        parts = item.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError("each entry must be AccessKeyId:Secret or AccessKeyId:Secret:SecurityToken")
        keys[parts[0]] = {"secret": parts[1], **({"security_token": parts[2]} if len(parts) == 3 else {})}
    return keys


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VISION_PROXY_", env_nested_delimiter="__", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    admin_host: str | None = Field(None, description="/metrics, /healthz, /readyz; default: host")
    admin_port: int = Field(9090, ge=0, le=65535)
    drain_grace_seconds: float = Field(20.0, ge=0, description="on SIGTERM: time for in-flight work to finish")
    public_name: str = Field("", description="HostId in error bodies; default: the Host the caller used")

    # caller authentication
    caller_keys: Annotated[dict[str, CallerKey], NoDecode] = {}
    timestamp_window_seconds: int = Field(900, ge=1)
    # in-memory replay store: 20 B a nonce held 900 s; 2 M sustains 2 200 req/s (one replica: 450-800), 40 MB
    nonce_cache_size: int = Field(2_000_000, ge=1)

    # per-caller limits (proxy/limits.py): beyond them that caller alone gets Throttling.User; unset: none
    caller_qps: float | None = Field(None, gt=0, description="default for every AccessKeyId")
    caller_concurrency: int | None = Field(None, ge=1, description="default for every AccessKeyId")
    caller_limits: dict[str, CallerLimit] = {}  # AccessKeyId -> its own limits, e.g. {"LTAI..": {"qps": 5}}

    # inbound limits
    max_body_bytes: int = Field(12 * MiB, ge=1024)
    max_inflight: int = Field(256, ge=1)
    # slow clients (nginx's defaults; proxy/connections.py): head complete after its first byte, whole body
    # after the head (12 MiB in 60 s is 210 KB/s), idle keep-alive: above an ALB's 60 s idle timeout
    client_header_timeout_seconds: float = Field(60.0, gt=0)
    client_body_timeout_seconds: float = Field(60.0, gt=0)
    keepalive_timeout_seconds: float = Field(75.0, gt=0)
    # decoded pixels in flight (EXIF rotation, matting, enlargement; proxy/pixels.py). The default leaves the
    # Helm chart's 2 GiB limit ~1 GiB for the process itself and the encoded bodies, images and answers in flight
    decode_budget_bytes: int = Field(1024 * MiB, ge=16 * MiB)
    decode_wait_seconds: float = Field(5.0, ge=0, description="wait for budget this long, then Throttling")

    # images
    image_mode: Literal["fetch", "pass-url"] = "fetch"
    fetch_allow: Annotated[list[str], NoDecode] = []
    fetch_timeout_seconds: float = Field(5.0, gt=0)
    fetch_max_bytes: int = Field(20 * MiB, ge=1024)

    # the AI Solution Kit (unset kit_url: the embedded local backend)
    kit_url: HttpUrl | None = None
    kit_stage: str = "prod"
    kit_routes: KitRoutes = KitRoutes()
    aws_region: str = "cn-northwest-1"
    # a caller waits (sync actions): all kit calls of one request end within this many seconds of its arrival
    # (the Aliyun SDKs' default read timeout is 10 s; the rest is the proxy's own work)
    kit_timeout_seconds: float = Field(9.0, gt=0)
    kit_route_timeouts: KitRouteTimeouts = KitRouteTimeouts()  # nobody waits: the kit's own limits
    kit_sagemaker_timeout_seconds: float = Field(65.0, gt=0)  # InvokeEndpoint gives a container 60 s
    # opt-in: every N seconds one tiny signed call per route, so a cold start lands on no caller
    kit_keep_warm_seconds: float | None = Field(None, gt=0)
    kit_connect_timeout_seconds: float = Field(3.0, gt=0)
    kit_max_connections: int = Field(64, ge=1)
    kit_limits: KitLimits = KitLimits()  # payload limits; VISION_PROXY_KIT_LIMITS__MAX_REQUEST_BYTES etc.

    mappings_dir: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # ---- super-resolution tiling: input px per kit call, sized for the kit's ~6 MB response limit
    sr_tile_size_x2: int = Field(512, ge=64)
    sr_tile_size_x4: int = Field(256, ge=64)
    sr_tile_overlap: int = Field(16, ge=0, le=31)
    sr_tile_concurrency: int = Field(4, ge=1)

    # ---- async jobs: a bounded pool; a job not done by its deadline reads TIMEOUT_FAILED
    job_workers: int = Field(2, ge=1)
    job_queue_size: int = Field(100, ge=1)
    job_deadline_seconds: float = Field(300.0, gt=0)
    job_record_ttl_seconds: float = Field(86_400.0, gt=0)

    # ---- shadow traffic: Aliyun and AWS side by side (proxy/shadow/)
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
    shadow_store_max_records: int = Field(2000, ge=1)
    shadow_store_max_bytes: int = Field(512 * MiB, ge=1024)

    _parse_actions = field_validator("shadow_actions", mode="before")(_split_list)

    @field_validator("shadow_keys", mode="before")
    @classmethod
    def _parse_shadow_keys(cls, value: Any) -> Any:
        """`callerId=AliyunKeyId:AliyunSecret` pairs (commas or lines), or the path of a file holding them."""
        if not isinstance(value, str):
            return value
        keys: dict[str, tuple[str, str]] = {}
        for item in _key_entries(value, "=", "callerId=AliyunKeyId:AliyunSecret"):
            caller, _, key = item.partition("=")
            key_id, _, secret = key.partition(":")
            if not (caller and key_id and secret):
                raise ValueError("each entry must be callerId=AliyunKeyId:AliyunSecret")
            keys[caller] = (key_id, secret)
        return keys

    # ---- result store: result images (matting, super-resolution) and async-job records (proxy/results/)
    result_store: Literal["local", "s3"] = "local"
    result_ttl_seconds: int = Field(1800, ge=1, le=604_800, description="result URL life; Aliyun's is 30 min")
    result_cleanup_interval_seconds: float = Field(60.0, gt=0)
    # local: files under data_dir, served at {public_base_url or the caller's scheme://host}/results/<key>
    public_base_url: str | None = None
    data_dir: Path = Path("data")
    result_signing_key: SecretStr | None = None  # unset: a random per-process key (one replica only)
    # s3: credentials from botocore's default chain
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None  # default: aws_region
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"

    # ---- issue 6: private API access (execute-api VPC endpoint), shared replay protection (Redis) ----
    # The kit as a private API: connect to `kit_connect_url` (the VPC endpoint's DNS name), send and sign
    # `Host: kit_host_header` (default: kit_url's host), and `x-apigw-api-id: kit_api_id` when set.
    kit_connect_url: HttpUrl | None = None
    kit_host_header: str | None = None
    kit_api_id: str | None = None
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

    @field_validator("kit_connect_url")
    @classmethod
    def _connect_base_only(cls, url: HttpUrl | None) -> HttpUrl | None:
        if url is not None and ((url.path or "/") != "/" or url.query):
            raise ValueError("give scheme://host[:port] only, e.g. https://vpce-0abc-xyz.execute-api."
                             "cn-northwest-1.vpce.amazonaws.com.cn")
        return url

    @field_validator("kit_host_header")
    @classmethod
    def _host_only(cls, host: str | None) -> str | None:
        if host is not None and not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", host):
            raise ValueError("give a host name (and optional :port), no scheme or path")
        return host or None

    @field_validator("kit_api_id")
    @classmethod
    def _api_id(cls, api_id: str | None) -> str | None:
        if api_id is not None and not re.fullmatch(r"[a-z0-9]{1,64}", api_id):
            raise ValueError("an API Gateway REST API id is lowercase letters and digits, e.g. abc123defg")
        return api_id or None

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and urlsplit(url.get_secret_value()).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("give redis://[:password@]host:port[/db], rediss://… (TLS) or unix://path")
        return url

    @model_validator(mode="after")
    def _private_api_needs_kit_url(self) -> Settings:
        if self.kit_url is None and (self.kit_connect_url or self.kit_host_header or self.kit_api_id):
            raise ValueError("kit_connect_url, kit_host_header and kit_api_id need kit_url (the API's base URL)")
        return self

    @model_validator(mode="after")
    def _s3_interface_endpoint(self) -> Settings:
        """An S3 interface endpoint's DNS name only reaches buckets with the `bucket.` label, and only in
        its own region: say so at start-up rather than as a signature or DNS error on the first result."""
        host = urlsplit(self.s3_endpoint_url or "").hostname or ""
        found = re.fullmatch(r"(?:(\w+)\.)?vpce-[\w-]+\.s3\.([\w-]+)\.vpce\.amazonaws\.com(?:\.cn)?", host)
        if found:
            if found.group(1) != "bucket":
                raise ValueError(f"s3_endpoint_url: an S3 interface endpoint is addressed as "
                                 f"https://bucket.{host.split('.', 1)[1] if found.group(1) else host}")
            if found.group(2) != (self.s3_region or self.aws_region):
                raise ValueError(f"s3_endpoint_url is in {found.group(2)} but s3_region is "
                                 f"{self.s3_region or self.aws_region}: set VISION_PROXY_S3_REGION")
        return self
    # ---- end of issue 6 block

    # ---- SageMaker endpoints called directly (InvokeEndpoint), bypassing API Gateway for chosen routes ----
    # KitRoutes field name -> SageMaker endpoint name, e.g. {"super_resolution": "super-resolution"}. Such a
    # route is POSTed to {sagemaker_url}/endpoints/{name}/invocations, SigV4-signed for service `sagemaker`.
    kit_sagemaker_endpoints: dict[str, str] = {}
    # Base URL of SageMaker Runtime (a VPC endpoint's name, a test server). Unset: botocore's regional
    # endpoint for aws_region (or the embedded backend when kit_url is unset).
    sagemaker_url: HttpUrl | None = None

    @field_validator("kit_sagemaker_endpoints")
    @classmethod
    def _sagemaker_endpoints(cls, endpoints: dict[str, str]) -> dict[str, str]:
        for route, name in endpoints.items():
            if route not in KitRoutes.model_fields:
                raise ValueError(f"{route!r} is not a kit route; use one of {', '.join(KitRoutes.model_fields)}")
            if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name):  # SageMaker's EndpointName pattern
                raise ValueError(f"{name!r} is not a SageMaker endpoint name (letters, digits, hyphens; max 63)")
        return endpoints

    @field_validator("sagemaker_url")
    @classmethod
    def _sagemaker_base_only(cls, url: HttpUrl | None) -> HttpUrl | None:
        if url is not None and ((url.path or "/") != "/" or url.query):
            raise ValueError("give scheme://host[:port] only, e.g. https://runtime.sagemaker.cn-northwest-1."
                             "amazonaws.com.cn")
        return url
    # ---- end of SageMaker block

    _parse_keys = field_validator("caller_keys", mode="before")(_parse_caller_keys)
    _parse_allow = field_validator("fetch_allow", mode="before")(_split_list)

    @field_validator("fetch_allow")
    @classmethod
    def _check_allow(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            if "/" in entry:
                ipaddress.ip_network(entry, strict=False)  # raises ValueError naming the entry
        return entries

    @field_validator("kit_url")
    @classmethod
    def _base_only(cls, url: HttpUrl | None) -> HttpUrl | None:
        if url is not None and (url.path or "/") != "/":
            raise ValueError("give the API's base URL without the stage or a route; set kit_stage for the stage")
        return url

    @field_validator("public_base_url", "s3_endpoint_url")
    @classmethod
    def _base_url(cls, url: str | None) -> str | None:
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("give scheme://host[:port][/path], with no query or fragment")
        return url.rstrip("/")

    @field_validator("result_signing_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < 16:
            raise ValueError("use at least 16 characters (e.g. `openssl rand -base64 32`)")
        return key

    @field_validator("s3_prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        prefix = prefix.strip("/")
        return f"{prefix}/" if prefix else ""

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> Settings:
        if self.result_store == "s3" and not self.s3_bucket:
            raise ValueError("result_store is 's3' but s3_bucket (VISION_PROXY_S3_BUCKET) is not set")
        return self

    @model_validator(mode="after")
    def _limits_name_known_callers(self) -> Settings:
        unknown = sorted(set(self.caller_limits) - set(self.caller_keys))
        if unknown:
            raise ValueError(f"caller_limits names AccessKeyIds that are not in caller_keys: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _keys_or_loopback(self) -> Settings:
        if not self.caller_keys and not is_loopback(self.host):
            raise ValueError(
                f"no caller_keys configured and host {self.host!r} is not loopback: refusing to accept "
                "unauthenticated callers from the network (set VISION_PROXY_CALLER_KEYS)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, YamlConfigSettingsSource(settings_cls)

    def kit_route_url(self, route: str) -> str:
        """Full URL of one kit route; `route` is a field name of `KitRoutes`."""
        if self.kit_url is None:
            raise RuntimeError("kit_url is not set")
        base = str(self.kit_url).rstrip("/")
        return f"{base}/{self.kit_stage}/{getattr(self.kit_routes, route)}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigError(Exception):
    """Start-up configuration is wrong; the message names the key."""


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    class FileSettings(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": config_file})

    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"--config: no such file: {config_file}")
    try:
        return FileSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(settings)"
        env = f" (VISION_PROXY_{key.split('.')[0].upper()})" if err["loc"] else ""
        lines.append(f"config error: {key}{env}: {err['msg']}")
    return "\n".join(lines)
