"""What a converter receives: the action's contract, its typed parameters, and the backend to call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..aliyun.errors import invalid, missing
from ..aliyun.request import InboundRequest
from ..images import ImageLoader, LoadedImage
from ..kit.client import KitClient
from ..mappings import ActionSpec


@dataclass
class Call:
    spec: ActionSpec
    params: dict[str, Any]
    inbound: InboundRequest
    kit: KitClient
    images: ImageLoader

    async def image(self) -> LoadedImage:
        """The action's image: from its URL parameter, or from the raw body where the action allows it."""
        spec = self.spec.image
        if spec is None:
            raise RuntimeError(f"{self.spec.action} declares no image")
        url = self.params.get(spec.url_param)
        raw = self.inbound.raw_image_body if spec.raw_body else None
        if url and raw is not None:
            raise invalid(spec.url_param, "Send either the image URL or the image body, not both.")
        if raw is not None:
            return await self.images.from_bytes(raw, spec)
        if not url:
            raise missing(spec.url_param)
        return await self.images.from_url(url, spec)


Converter = Callable[[Call], Awaitable[dict[str, Any]]]
