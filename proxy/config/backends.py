"""A backend per action: one action's kit call sent somewhere else than its mapping's `kit_route`.

The mapping owns the default (mappings/*/*.yaml `kit_route`, reached through `kit_url` or
`kit_sagemaker_endpoints`); `action_backends` only overrides it, per Aliyun action name, e.g.
VISION_PROXY_ACTION_BACKENDS='{"SegmentCommonImage": {"transport": "sagemaker", "endpoint": "u2net"}}'.
The endpoint must speak the kit's contract for that route (README "A backend per action"). Action names are
checked against the mappings at start-up (proxy/kit/routing.py), where the mappings are known."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, HttpUrl, field_validator, model_validator


class ActionBackend(BaseModel):
    """Where one action's kit call goes. `api-gateway`: POST {url}/{stage}/{route} signed for execute-api
    (unset url, stage, route: the kit's kit_url, kit_stage, and the mapping route's path). `sagemaker`:
    InvokeEndpoint on `endpoint` at `url` (unset: sagemaker_url, else the region's SageMaker Runtime)."""

    model_config = ConfigDict(extra="forbid")

    transport: Literal["api-gateway", "sagemaker"] = "api-gateway"
    url: HttpUrl | None = None
    stage: str | None = None
    route: str | None = None
    endpoint: str | None = None

    @field_validator("url")
    @classmethod
    def _origin(cls, url: HttpUrl | None) -> HttpUrl | None:
        if url is not None and ((url.path or "/") != "/" or url.query):
            raise ValueError("give the base URL only (scheme://host[:port]); set stage and route apart")
        return url

    @field_validator("stage", "route")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*", value):
            raise ValueError(f"{value!r} is not a path below the API (letters, digits, -._~ and inner /)")
        return value

    @model_validator(mode="after")
    def _transport_fields(self) -> Self:
        if self.transport == "sagemaker":
            if not self.endpoint or not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", self.endpoint):
                raise ValueError("transport sagemaker needs endpoint: a SageMaker endpoint name (letters, digits, "
                                 "hyphens; max 63)")
            if self.stage or self.route:
                raise ValueError("stage and route are API Gateway's; a SageMaker endpoint takes endpoint only")
        elif self.endpoint:
            raise ValueError("endpoint is a SageMaker endpoint name: set transport to sagemaker")
        return self


# With no kit configured, the embedded backend's general-object model answers Aliyun's general matting actions
# (proxy/kit/local/general.py); its person model (the kit's own route) keeps SegmentBody and SegmentHDBody.
GENERAL_SEGMENTATION_ROUTE = "general-segmentation"  # served by the embedded backend only
EMBEDDED_ACTION_BACKENDS = {
    "SegmentCommonImage": ActionBackend(route=GENERAL_SEGMENTATION_ROUTE),
    "SegmentHDCommonImage": ActionBackend(route=GENERAL_SEGMENTATION_ROUTE),
}


class BackendSettings(BaseModel):
    action_backends: dict[str, ActionBackend] = {}
    # used only when kit_url is unset (the embedded backend); action_backends entries take precedence
    embedded_action_backends: dict[str, ActionBackend] = dict(EMBEDDED_ACTION_BACKENDS)
