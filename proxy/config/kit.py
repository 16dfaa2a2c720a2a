"""The AI Solution Kit behind the proxy: where it is (API Gateway, a private API, SageMaker), its routes,
its payload and time limits, and how super-resolution is tiled for it. Unset `kit_url`: the embedded
backend."""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import BaseModel, Field, HttpUrl, ValidationInfo, field_validator, model_validator

from .values import MiB


class KitRoutes(BaseModel):
    """AI Solution Kit resource paths, below the stage (the `-ml` ones are SageMaker-backed)."""

    ocr: str = "lite-ocr"
    segmentation: str = "human-segmentation"
    super_resolution: str = "super-resolution-ml"


class KitRouteTimeouts(BaseModel):
    """Seconds one kit call may take when no caller waits on it (async jobs and their tiles, keep-warm, shadow):
    the kit's own limits (proxy/kit/timeouts.py). 30 s: API Gateway cuts every route at 29 s (the Lambdas
    themselves at 19 s), so its own 504 arrives first. Routes sent straight to SageMaker use
    kit_sagemaker_timeout_seconds instead."""

    ocr: Annotated[float, Field(gt=0)] = 30.0
    segmentation: Annotated[float, Field(gt=0)] = 30.0
    super_resolution: Annotated[float, Field(gt=0)] = 30.0


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


# An example of each base URL that takes no path, for the error message.
ORIGIN_EXAMPLES = {"kit_connect_url": "https://vpce-0abc-xyz.execute-api.cn-northwest-1.vpce.amazonaws.com.cn",
                   "sagemaker_url": "https://runtime.sagemaker.cn-northwest-1.amazonaws.com.cn"}


class KitSettings(BaseModel):
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

    # The kit as a private API: connect to `kit_connect_url` (the VPC endpoint's DNS name), send and sign
    # `Host: kit_host_header` (default: kit_url's host), and `x-apigw-api-id: kit_api_id` when set.
    kit_connect_url: HttpUrl | None = None
    kit_host_header: str | None = None
    kit_api_id: str | None = None

    # SageMaker endpoints called directly (InvokeEndpoint), bypassing API Gateway for chosen routes:
    # KitRoutes field name -> endpoint name, e.g. {"super_resolution": "super-resolution"}. Such a route is
    # POSTed to {sagemaker_url}/endpoints/{name}/invocations, SigV4-signed for service `sagemaker`.
    kit_sagemaker_endpoints: dict[str, str] = {}
    # Base URL of SageMaker Runtime (a VPC endpoint's name, a test server). Unset: botocore's regional
    # endpoint for aws_region (or the embedded backend when kit_url is unset).
    sagemaker_url: HttpUrl | None = None

    # super-resolution tiling: input px per kit call, sized for the kit's ~6 MB response limit
    sr_tile_size_x2: int = Field(512, ge=64)
    sr_tile_size_x4: int = Field(256, ge=64)
    sr_tile_overlap: int = Field(16, ge=0, le=31)
    sr_tile_concurrency: int = Field(4, ge=1)

    @field_validator("kit_url")
    @classmethod
    def _base_only(cls, url: HttpUrl | None) -> HttpUrl | None:
        if url is not None and (url.path or "/") != "/":
            raise ValueError("give the API's base URL without the stage or a route; set kit_stage for the stage")
        return url

    @field_validator("kit_connect_url", "sagemaker_url")
    @classmethod
    def _origin_only(cls, url: HttpUrl | None, info: ValidationInfo) -> HttpUrl | None:
        if url is not None and ((url.path or "/") != "/" or url.query):
            raise ValueError(f"give scheme://host[:port] only, e.g. {ORIGIN_EXAMPLES[str(info.field_name)]}")
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

    @field_validator("kit_sagemaker_endpoints")
    @classmethod
    def _sagemaker_endpoints(cls, endpoints: dict[str, str]) -> dict[str, str]:
        for route, name in endpoints.items():
            if route not in KitRoutes.model_fields:
                raise ValueError(f"{route!r} is not a kit route; use one of {', '.join(KitRoutes.model_fields)}")
            if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name):  # SageMaker's EndpointName pattern
                raise ValueError(f"{name!r} is not a SageMaker endpoint name (letters, digits, hyphens; max 63)")
        return endpoints

    @model_validator(mode="after")
    def _private_api_needs_kit_url(self) -> Self:
        if self.kit_url is None and (self.kit_connect_url or self.kit_host_header or self.kit_api_id):
            raise ValueError("kit_connect_url, kit_host_header and kit_api_id need kit_url (the API's base URL)")
        return self

    def kit_route_url(self, route: str) -> str:
        """Full URL of one kit route; `route` is a field name of `KitRoutes`."""
        if self.kit_url is None:
            raise RuntimeError("kit_url is not set")
        base = str(self.kit_url).rstrip("/")
        return f"{base}/{self.kit_stage}/{getattr(self.kit_routes, route)}"
