"""The request path, top to bottom: parse → route → authenticate → bind → convert (kit) → serialize.

One handler runs the steps in order; every failure on the way is an `AliyunError` answered in the
caller's format, and anything unexpected becomes `InternalError` (logged, never a stack trace on the
wire). Services start and stop with the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from . import mappings, workers
from .actions import CONVERTERS, Backends, Call
from .aliyun import serialize
from .aliyun.errors import AliyunError, Err, invalid
from .aliyun.nonces import open_nonce_store
from .aliyun.request import InboundRequest, begin, merge_form, new_request_id, read_body
from .aliyun.signature import Authenticator
from .config import Settings
from .exchange import Exchange, Observer
from .hints import explain_refusal
from .images import ImageLoader
from .jobs import JobRunner
from .kit import budget, routing
from .kit.client import KitClient
from .kit.credentials import CredentialSource
from .kit.keepwarm import keep_warm
from .kit.local.server import LocalBackend
from .kit.timeouts import caller_waits
from .limits import Admission, CallerLimits
from .observability import metrics
from .observers.coverage import CoverageObserver
from .observers.log import log_exchange
from .observers.metrics import observe_metrics
from .observers.mirror import AwsAnswer, Mirror
from .pixels import PixelBudget, tune_malloc
from .results import LocalResultStore, ResultStore, open_store
from .shadow.aliyun import AliyunClient
from .shadow.records import STORE_SUBDIR, RecordStore
from .sides import AWS_ONLY, Route, Sides
from .uploads import UploadAuthority
from .uploads.endpoint import is_upload_host, post_object
from .uploads.own import OwnObjects

log = structlog.get_logger("proxy")


@dataclass
class Services:
    registry: mappings.Registry
    auth: Authenticator
    backends: Backends
    sides: Sides  # who answers: on the request path
    mirror: Mirror  # the shadow comparison: an observer beside it
    local: LocalBackend | None = None
    results_cleanup: asyncio.Task[None] | None = None
    keep_warm: asyncio.Task[None] | None = None
    drain_deadline: float | None = None  # monotonic time by which a SIGTERM drain must be done

    @property
    def settings(self) -> Settings:
        return self.backends.settings


class _Answered(Exception):
    """The answer is already made (an unmapped action Aliyun answered in shadow mode)."""


class Gateway:
    def __init__(self, services: Services, observers: list[Observer]) -> None:
        self.s = services
        self.observers = observers
        self.inflight = 0
        self.draining = False
        self.limits = CallerLimits.from_settings(services.settings)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        inbound: InboundRequest | None = None
        spec: mappings.ActionSpec | None = None
        caller = None
        call: Call | None = None
        route: Route = AWS_ONLY
        error: AliyunError | None = None
        admission: Admission | None = None
        metrics.IN_FLIGHT.inc()
        caller_waits(self.s.settings.kit_timeout_seconds)  # the deadline of every kit call made for this caller
        try:
            inbound = begin(request)
            structlog.contextvars.bind_contextvars(request_id=inbound.request_id)
            await read_body(request, inbound, self.s.settings.max_body_bytes,
                            self.s.settings.client_body_timeout_seconds)
            unmapped = self.s.sides.unmapped_product(self.s.registry, inbound)  # shadow: Aliyun answers it
            if unmapped is not None:
                caller = await self.s.auth.authenticate(inbound)
                response = await self.s.sides.forward_unmapped(unmapped, inbound, caller)
                route = Route("aliyun", False)
                raise _Answered()
            spec = self.s.registry.route(inbound.action, inbound.version)
            caller = await self.s.auth.authenticate(inbound)
            merge_form(inbound)  # V3: only now is its Content-Type known to be signed
            admission = self.limits.admit(caller)  # this caller's QPS and concurrency (Throttling.User)
            route = self.s.sides.route(spec, inbound, caller)
            if route.primary == "aliyun":
                response = await self.s.sides.answer_from_aliyun(spec, inbound, caller)
            else:
                body, call = await self._convert(spec, inbound)
                response = serialize.success(spec.action, inbound.request_id, body, inbound.format)
        except _Answered:
            pass
        except AliyunError as err:
            error = err
        except Exception:
            log.exception("proxy.internal_error")
            error = Err.INTERNAL_ERROR()
        finally:
            metrics.IN_FLIGHT.dec()
            if admission is not None:
                admission.release()
        if error is not None:
            error = explain_refusal(error, self.s.settings)  # an SSRF refusal names VISION_PROXY_FETCH_ALLOW
            response = self._error(error, inbound, request, spec.product if spec else "")
        if self.draining:
            response.headers["Connection"] = "close"  # clients move to another replica
        exchange = exchange_of(inbound, spec, caller, response, error, time.perf_counter() - started,
                               call if route.mirror else None, route.primary, route.mirror)
        for observe in self.observers:
            try:
                observe(exchange)
            except Exception:  # an observer must never change or lose the caller's answer
                log.exception("proxy.observer_failed", observer=getattr(observe, "__name__", "?"))
        structlog.contextvars.clear_contextvars()
        return response

    async def _convert(self, spec: mappings.ActionSpec, inbound: InboundRequest) -> tuple[dict[str, Any], Call]:
        if self.inflight >= self.s.settings.max_inflight:
            raise Err.THROTTLING()
        self.inflight += 1
        try:
            return await answer_with_aws(self.s.backends, spec, inbound)
        finally:
            self.inflight -= 1

    def _error(self, err: AliyunError, inbound: InboundRequest | None, request: web.Request,
               product: str) -> web.Response:
        host = self.s.settings.public_name or request.headers.get("Host", "").split("://")[-1]
        request_id = inbound.request_id if inbound else new_request_id()
        fmt = inbound.format if inbound else "json"
        return serialize.error(err, request_id, host, product or "vision", fmt)


def exchange_of(inbound: InboundRequest | None, spec: mappings.ActionSpec | None, caller: str | None,
                response: web.Response, error: AliyunError | None, seconds: float, kept: Call | None,
                primary: str = "aws", mirror: bool = False) -> Exchange:
    """The frozen value the observers see; `kept` hands over the input and result images of a mirrored call."""
    body = response.body if isinstance(response.body, bytes) else b""
    return Exchange(inbound, spec, caller, response.status, body, response.content_type,
                    error.code if error else None, error.kind if error else None, seconds, primary, mirror,
                    input_image=kept.loaded.data if kept and kept.loaded else None,
                    result_images=tuple(kept.stored) if kept else (), job_images=kept.job_images if kept else None)


async def answer_with_aws(backends: Backends, spec: mappings.ActionSpec,
                          inbound: InboundRequest) -> tuple[dict[str, Any], Call]:
    """The AWS side: bind the parameters, run the action's converter (the kit behind it)."""
    call = Call(spec, spec.bind(inbound.params), inbound, backends)
    return await CONVERTERS[spec.converter](call), call


def aws_for_shadow(backends: Backends) -> AwsAnswer:
    """The AWS side as the mirror asks it: in JSON, as a caller would have received it, images kept."""

    async def answer(spec: mappings.ActionSpec, inbound: InboundRequest) -> Exchange:
        started = time.perf_counter()
        call = error = None
        try:
            body, call = await answer_with_aws(backends, spec, inbound)
            response = serialize.success(spec.action, inbound.request_id, body, "json")
        except AliyunError as err:
            error = err
            response = serialize.error(err, inbound.request_id, "shadow", spec.product, "json")
        return exchange_of(inbound, spec, None, response, error, time.perf_counter() - started, call)

    return answer


@web.middleware
async def _aiohttp_errors(request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """aiohttp's own refusals (no route, bad method) answered in Aliyun's envelope, not text/plain."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        err = Err.INVALID_ACTION() if exc.status == 404 else Err.INTERNAL_ERROR() \
            if exc.status >= 500 else invalid("Request", f"{exc.reason}.")
        return serialize.error(err, new_request_id(), request.headers.get("Host", ""), "vision", "json")


async def start_services(settings: Settings, registry: mappings.Registry) -> Services:
    local: LocalBackend | None = None
    if settings.kit_url is None:
        local = LocalBackend(settings.aws_region, settings.kit_stage, settings.kit_routes, threads=2,
                             limits=settings.kit_limits)
        base = await local.start()
        settings = settings.model_copy(update={"kit_url": base})
        credentials = CredentialSource(local.credentials)
        log.info("kit.local_backend", url=base, note="no kit_url configured: using the embedded backend")
    else:
        credentials = CredentialSource()
    kit = KitClient(settings.kit_route_url, settings.aws_region, credentials, settings.kit_timeout_seconds,
                    settings.kit_connect_timeout_seconds, settings.kit_max_connections,
                    connect_url=str(settings.kit_connect_url) if settings.kit_connect_url else None,
                    host=settings.kit_host_header, api_id=settings.kit_api_id,
                    sagemaker_endpoints=settings.kit_sagemaker_endpoints,  # the embedded backend serves them too
                    sagemaker_url=str(settings.sagemaker_url or settings.kit_url)
                    if settings.sagemaker_url or local else None,
                    max_answer_bytes=budget.answer_read_cap(settings.kit_limits),
                    route_timeouts=settings.kit_route_timeouts.model_dump(),
                    sagemaker_timeout=settings.kit_sagemaker_timeout_seconds)
    pixel_budget = PixelBudget(settings.decode_budget_bytes, settings.decode_wait_seconds)
    log.info("workers.image_threads", threads=workers.configure(settings.image_threads))  # proxy/workers.py
    tune_malloc()
    images = ImageLoader(settings.fetch_allow, settings.fetch_timeout_seconds, settings.fetch_max_bytes,
                         pass_url=settings.image_mode == "pass-url", budget=pixel_budget)
    await kit.start()
    action_routes = await routing.apply(settings, registry, kit, embedded=local is not None)
    await images.start()
    nonces = await open_nonce_store(settings)
    auth = Authenticator(settings.caller_keys, settings.timestamp_window_seconds, nonces)
    if auth.open:
        log.warning("auth.disabled", host=settings.host,
                    warning="NO CALLER KEYS CONFIGURED: every caller is accepted without a signature "
                            "check. Allowed only on loopback; set VISION_PROXY_CALLER_KEYS.")
    results = await open_store(settings)
    cleanup = asyncio.create_task(_clean_results(results, settings.result_cleanup_interval_seconds))
    jobs = JobRunner(results, settings.job_workers, settings.job_queue_size, settings.job_deadline_seconds,
                     settings.job_record_ttl_seconds)
    jobs.start()
    uploads = upload_authority(settings, registry)
    images.own = OwnObjects(results, uploads).read  # uploads and earlier results: from the store, not HTTP
    backends = Backends(settings, kit, images, results, jobs, pixel_budget, uploads, action_routes)
    aliyun = AliyunClient(settings.aliyun_endpoints,
                          {c: (k, s.get_secret_value()) for c, (k, s) in settings.shadow_keys.items()},
                          settings.shadow_timeout_seconds)
    await aliyun.start()
    store = RecordStore(Path(settings.data_dir) / STORE_SUBDIR, max_records=settings.shadow_store_max_records,
                        max_bytes=settings.shadow_store_max_bytes)
    mirror = Mirror(settings, aliyun, store, images, jobs, aws_for_shadow(backends), embedded=local is not None)
    mirror.start()
    warm = None
    if settings.kit_keep_warm_seconds:  # created here, outside any request: no caller's deadline applies
        routes = {action_routes.get(s.action, s.kit_route) for s in registry.specs.values() if s.kit_route}
        warm = asyncio.create_task(keep_warm(kit, routes, settings.kit_keep_warm_seconds), name="kit-keep-warm")
    return Services(registry, auth, backends, Sides(settings, aliyun), mirror, local=local, results_cleanup=cleanup,
                    keep_warm=warm)


def upload_authority(settings: Settings, registry: mappings.Registry) -> UploadAuthority:
    """AuthorizeFileUpload's policies: signed with the result signing key (shared by the replicas) or, when
    none is set, a random key of this process; capped at the largest image any action accepts."""
    if settings.result_signing_key is not None:
        key = settings.result_signing_key.get_secret_value().encode()
    else:
        key = secrets.token_bytes(32)
        log.warning("uploads.ephemeral_signing_key", warning="no result_signing_key: upload policies are "
                    "signed with a random key of this process; several replicas need one shared key")
    largest = max((s.image.max_bytes for s in registry.specs.values() if s.image), default=settings.fetch_max_bytes)
    return UploadAuthority(key, settings.upload_bucket, settings.upload_host, settings.upload_ttl_seconds, largest)


async def _clean_results(store: ResultStore, interval: float) -> None:
    """Delete expired results and records now and then; a failure is logged and tried again next time."""
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await store.cleanup()
        except Exception:
            log.exception("results.cleanup_failed")
            continue
        if removed:
            metrics.RESULTS_CLEANED.inc(removed)
            log.info("results.cleanup", removed=removed)


async def stop_services(services: Services) -> None:
    for task in (services.results_cleanup, services.keep_warm):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    b = services.backends
    await services.mirror.close()
    await services.sides.aliyun.close()
    grace = b.settings.drain_grace_seconds
    if services.drain_deadline is not None:  # in-flight requests already used part of the one grace period
        grace = max(0.0, services.drain_deadline - time.monotonic())
    await b.jobs.close(grace)
    await b.results.close()
    await b.kit.close()
    await b.images.close()
    await services.auth.nonces.close()
    if services.local is not None:
        await services.local.close()
    workers.shutdown()


def build_registry(settings: Settings) -> mappings.Registry:
    return mappings.load(settings.mappings_dir or mappings.default_dir(), CONVERTERS)


SERVICES = web.AppKey("services", Services)
GATEWAY = web.AppKey("gateway", Gateway)


def build_app(settings: Settings) -> web.Application:
    """The application; raises MappingError here, before serving, when a mapping file is wrong."""
    registry = build_registry(settings)
    routing.check(settings, registry)  # raises ConfigError here: an action_backends name no mapping has
    # Bodies are read as a capped stream by the gateway; aiohttp's own 1 MiB cap must not cut in first.
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[_aiohttp_errors])

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        services = await start_services(settings, registry)
        app[SERVICES] = services
        coverage = CoverageObserver(settings.data_dir, registry)  # the coverage scan (proxy/coverage.py)
        app[GATEWAY] = Gateway(services, [log_exchange, observe_metrics, services.mirror.observe, coverage.observe])
        yield
        coverage.flush()
        await stop_services(services)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        backends = request.app[SERVICES].backends
        if backends.uploads is not None and is_upload_host(backends.uploads, request):  # {Bucket}.{upload_host}
            return await post_object(request, backends.uploads, backends.results, request.app[SERVICES].auth.nonces,
                                     backends.settings.client_body_timeout_seconds)
        return await request.app[GATEWAY].handle(request)

    async def serve_result(request: web.Request) -> web.StreamResponse:
        store = request.app[SERVICES].backends.results
        if not isinstance(store, LocalResultStore):
            raise web.HTTPNotFound()
        return await store.serve(request)

    app.cleanup_ctx.append(lifecycle)
    if settings.result_store == "local":  # S3 results are served by S3 itself
        app.router.add_get("/results/{key:.+}", serve_result)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
