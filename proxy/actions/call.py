"""What a converter receives: the action's contract, its typed parameters, and the services it may use."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..aliyun.errors import Err, invalid, missing
from ..aliyun.request import InboundRequest
from ..config import Settings
from ..images import ImageLoader, LoadedImage
from ..jobs import SUBMITTED_MESSAGE, JobRunner, Work
from ..kit.client import KitClient
from ..mappings import ActionSpec
from ..observability import metrics
from ..pixels import PixelBudget
from ..results import ResultStore, ResultStoreError
from ..uploads import UploadAuthority


@dataclass
class Backends:
    """The services behind the converters, built once at start-up."""

    settings: Settings
    kit: KitClient
    images: ImageLoader
    results: ResultStore
    jobs: JobRunner
    budget: PixelBudget  # bytes of decoded pixels in flight (matting, enlargement, EXIF rotation)
    uploads: UploadAuthority | None = None  # AuthorizeFileUpload's policies (proxy/uploads)
    action_routes: dict[str, str] = field(default_factory=dict)  # action -> its own backend (kit/routing.py)


@dataclass
class Call:
    spec: ActionSpec
    params: dict[str, Any]
    inbound: InboundRequest
    backends: Backends
    loaded: LoadedImage | None = None  # the input image, kept for a shadow comparison's report
    stored: list[bytes] = field(default_factory=list)  # result images, kept for a shadow comparison
    job_images: asyncio.Future[tuple[bytes, ...]] | None = None  # an async job's result images, once done

    @property
    def kit(self) -> KitClient:
        return self.backends.kit

    @property
    def settings(self) -> Settings:
        return self.backends.settings

    @property
    def kit_route(self) -> str:
        """The kit route the mapping names for this action, unless configuration gives it its own backend."""
        if self.spec.kit_route is None:
            raise RuntimeError(f"{self.spec.action} declares no kit_route")
        return self.backends.action_routes.get(self.spec.action, self.spec.kit_route)

    async def image(self, need_pixels: bool = False) -> LoadedImage:
        """The action's image: from its URL parameter, or from the raw body where the action allows it."""
        spec = self.spec.image
        if spec is None:
            raise RuntimeError(f"{self.spec.action} declares no image")
        url = self.params.get(spec.url_param)
        raw = self.inbound.raw_image_body if spec.raw_body else None
        if url and raw is not None:
            raise invalid(spec.url_param, "Send either the image URL or the image body, not both.")
        if raw is not None:
            self.loaded = await self.backends.images.from_bytes(raw, spec)
        elif not url:
            raise missing(spec.url_param)
        else:
            self.loaded = await self.backends.images.from_url(url, spec, need_pixels)
        return self.loaded

    async def store(self, data: bytes, extension: str, content_type: str) -> str:
        """Keep a result image and return the expiring URL the caller downloads it from."""
        key = f"{self.spec.product}/{self.inbound.request_id.lower()}.{extension}"
        base = self.settings.public_base_url or f"http://{self.inbound.host.split('://')[-1]}"
        try:
            url = await self.backends.results.put(key, data, content_type, base)
        except ResultStoreError:
            raise Err.SERVICE_UNAVAILABLE() from None
        metrics.RESULTS_STORED.labels(self.settings.result_store).inc()
        self.stored.append(data)
        return url

    async def submit(self, work: Work) -> dict[str, Any]:
        """Run `work` as an Aliyun async job: the RequestId is the JobId, the answer comes at once."""
        if self.spec.job is None:  # the mapping says how the shadow follows the answer: it must agree
            raise RuntimeError(f"{self.spec.action} runs a job but its mapping declares no job")
        done = self.job_images = asyncio.get_running_loop().create_future()

        async def tracked() -> dict[str, Any]:
            try:
                return await work()
            finally:  # before the job's record says it finished, so a follower finds the images
                if not done.done():
                    done.set_result(tuple(self.stored))

        await self.backends.jobs.submit(self.inbound.request_id, self.spec.action, tracked)
        return {"Message": SUBMITTED_MESSAGE}


Converter = Callable[[Call], Awaitable[dict[str, Any]]]
