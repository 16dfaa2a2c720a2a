"""A backend per action (Settings.action_backends): resolve each override against the mappings and register it
with the KitClient under the action's name, so `Call.kit_route` names it and metrics label it.

The mapping keeps the default; only the actions named in configuration are re-routed. With no kit configured,
`embedded_action_backends` applies first (the general actions to the embedded general-object model)."""

from __future__ import annotations

import asyncio
import difflib

from ..config import ActionBackend, ConfigError, Settings
from ..mappings import ActionSpec, Registry
from .client import KitClient, sagemaker_runtime_url


def overrides(settings: Settings, embedded: bool) -> dict[str, ActionBackend]:
    """Action name -> its backend: the embedded defaults (no kit configured only), then the operator's own."""
    chosen = dict(settings.embedded_action_backends) if embedded else {}
    return {**chosen, **settings.action_backends}


def check(settings: Settings, registry: Registry, embedded: bool | None = None) -> dict[str, ActionSpec]:
    """Each overridden action's mapping; an unknown name, or an action that calls no kit, is refused with the
    nearest name that would do. `embedded` defaults to whether kit_url is unset."""
    embedded = settings.kit_url is None if embedded is None else embedded
    calling = {spec.action: spec for spec in registry.specs.values() if spec.kit_route is not None}
    for name in overrides(settings, embedded):
        if name in calling:
            continue
        if name in registry.actions:
            raise ConfigError(f"config error: action_backends (VISION_PROXY_ACTION_BACKENDS): {name} calls no "
                              f"kit route; actions that do: {', '.join(sorted(calling))}")
        near = difflib.get_close_matches(name, list(calling), n=1, cutoff=0.5)
        hint = f"did you mean {near[0]}?" if near else f"use one of {', '.join(sorted(calling))}"
        raise ConfigError(f"config error: action_backends (VISION_PROXY_ACTION_BACKENDS): no action {name!r}; "
                          f"{hint}")
    return {name: calling[name] for name in overrides(settings, embedded)}


async def apply(settings: Settings, registry: Registry, kit: KitClient, embedded: bool) -> dict[str, str]:
    """Register every override with `kit`; answer action name -> route key for `Call.kit_route`. `settings`
    carries the kit_url in use (the embedded backend's when `embedded`)."""
    routes: dict[str, str] = {}
    chosen = overrides(settings, embedded)
    for name, spec in check(settings, registry, embedded).items():
        backend = chosen[name]
        assert spec.kit_route is not None  # check() kept only actions that call the kit
        if backend.transport == "sagemaker":
            base = str(backend.url or settings.sagemaker_url or (settings.kit_url if embedded else "")) or \
                await asyncio.to_thread(sagemaker_runtime_url, settings.aws_region)
            url = f"{base.rstrip('/')}/endpoints/{backend.endpoint}/invocations"
            limit = settings.kit_sagemaker_timeout_seconds
        else:
            base = str(backend.url or settings.kit_url).rstrip("/")
            path = backend.route or getattr(settings.kit_routes, spec.kit_route)
            url = f"{base}/{backend.stage or settings.kit_stage}/{path}"
            limit = getattr(settings.kit_route_timeouts, spec.kit_route)
        kit.add_route(name, url, sagemaker=backend.transport == "sagemaker",
                      own_api=backend.url is not None, limit=limit)
        routes[name] = name
    return routes
