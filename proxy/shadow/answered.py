"""Who answered on each side, in words a lead can check: the kit's URL and route, a SageMaker endpoint,
or the embedded demo models (which are not the kit: a report made with them proves nothing about AWS);
and Aliyun's endpoint. Stored in each record, so the report says it for every comparison."""

from __future__ import annotations

from ..config import Settings
from ..mappings import ActionSpec

EMBEDDED = "embedded demo models — not the kit"


def aws_side(settings: Settings, spec: ActionSpec, embedded: bool) -> str:
    if embedded:
        return EMBEDDED
    route = spec.kit_route
    if route is None:
        return "the proxy itself (no kit route)"
    endpoint = settings.kit_sagemaker_endpoints.get(route)
    if endpoint:
        runtime = str(settings.sagemaker_url) if settings.sagemaker_url else f"SageMaker Runtime {settings.aws_region}"
        return f"SageMaker endpoint {endpoint} ({runtime})"
    return f"kit {settings.kit_route_url(route)} (route {route})"


def aliyun_side(spec: ActionSpec, endpoints: dict[str, str]) -> str:
    return f"Aliyun {endpoints.get(spec.product, spec.product)}"
