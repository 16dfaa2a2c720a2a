"""The one config model. Every field reads from `VISION_PROXY_<NAME>` and from an optional YAML file.

`Settings` is flat (the public contract is one variable per field), assembled from one section per concern,
each a module beside this one with its fields and their validators: server, callers, images, kit, results,
shadow, uploads, backends (a backend per action). Checks that span two sections live here.
Precedence: command-line flags > environment > YAML file >
defaults. A wrong value stops start-up with a message naming the key (see `load_settings`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from .backends import ActionBackend, BackendSettings
from .callers import CallerKey, CallerLimit, CallerSettings
from .images import ImageSettings
from .kit import KitLimits, KitRoutes, KitRouteTimeouts, KitSettings
from .results import ResultSettings
from .server import ServerSettings, is_loopback
from .shadow import ShadowSettings
from .uploads import UploadSettings
from .values import MiB

__all__ = ["ActionBackend", "CallerKey", "CallerLimit", "ConfigError", "KitLimits", "KitRouteTimeouts", "KitRoutes",
           "MiB", "Settings", "describe", "is_loopback", "load_settings"]


class Settings(ServerSettings, CallerSettings, ImageSettings, KitSettings, BackendSettings, ResultSettings,
               ShadowSettings, UploadSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VISION_PROXY_", env_nested_delimiter="__", extra="forbid")

    @model_validator(mode="after")
    def _keys_or_loopback(self) -> Self:
        if not self.caller_keys and not is_loopback(self.host):
            raise ValueError(
                f"no caller_keys configured and host {self.host!r} is not loopback: refusing to accept "
                "unauthenticated callers from the network (set VISION_PROXY_CALLER_KEYS)"
            )
        return self

    @model_validator(mode="after")
    def _limits_name_known_callers(self) -> Self:
        unknown = sorted(set(self.caller_limits) - set(self.caller_keys))
        if unknown:
            raise ValueError(f"caller_limits names AccessKeyIds that are not in caller_keys: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _s3_interface_endpoint(self) -> Self:
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
