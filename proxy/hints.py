"""First steps that explain themselves: start-up warnings a newcomer would otherwise have to guess at (a
misspelt variable, shadow without keys, a region that does not match the kit's host), and the SSRF
refusal naming the setting that opens it. Each is one line naming the key and the fix."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping

import structlog

from .aliyun.errors import AliyunError, Err
from .config import Settings, is_loopback
from .ssrf import UNREACHABLE

log = structlog.get_logger("config")
PREFIX = "VISION_PROXY_"
FETCH_HINT = ("to fetch images from it, add its host or network (e.g. 127.0.0.1/32, 10.0.0.0/8) to "
              "VISION_PROXY_FETCH_ALLOW")


def setting_names() -> list[str]:
    return [PREFIX + name.upper() for name in Settings.model_fields]


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per VISION_PROXY_* variable that names no setting, with the nearest valid name."""
    environ = os.environ if environ is None else environ
    names = setting_names()
    known = set(names)
    lines = []
    for var in sorted(environ):
        if not var.startswith(PREFIX):
            continue
        top = var.split("__", 1)[0]  # VISION_PROXY_KIT_ROUTES__OCR: a nested field of kit_routes
        if top in known:
            continue
        near = difflib.get_close_matches(top, names, n=1, cutoff=0.6)
        fix = f"did you mean {near[0]}?" if near else "see README.md, Settings"
        lines.append(f"config warning: {var} is not a setting and is ignored; {fix}")
    return lines


def startup_warnings(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    lines = unknown_variables(environ)
    if settings.shadow_mode != "aws" and not settings.shadow_keys:
        lines.append(f"config warning: shadow_mode={settings.shadow_mode} without VISION_PROXY_SHADOW_KEYS: V3 "
                     "callers cannot be forwarded to Aliyun nor async jobs followed there, so they are not compared "
                     "(set VISION_PROXY_SHADOW_KEYS=callerId=AliyunKeyId:AliyunSecret)")
    host = (settings.kit_url.host if settings.kit_url else "") or ""
    if host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        china_region, china_host = settings.aws_region.startswith("cn-"), host.endswith(".com.cn")
        if china_region != china_host:
            want = ".amazonaws.com.cn" if china_region else ".amazonaws.com"
            lines.append(f"config warning: VISION_PROXY_AWS_REGION={settings.aws_region} but the kit host {host} "
                         f"is not in that partition (expected *{want}): SigV4 signatures will not verify; "
                         "set VISION_PROXY_AWS_REGION to the kit's region")
    return lines


def report_startup(settings: Settings) -> list[str]:
    """Log each warning (structlog) and return them, for the CLI to print on stderr too."""
    lines = startup_warnings(settings)
    for line in lines:
        log.warning("config.warning", message=line.removeprefix("config warning: "))
    return lines


def explain_refusal(err: AliyunError, settings: Settings) -> AliyunError:
    """An SSRF refusal, logged with the setting that opens it; a proxy that only listens on loopback (a
    developer's) also says it in the answer. A network-facing one never tells callers what is open."""
    if err.kind is not Err.IMAGE_URL or UNREACHABLE not in err.message:
        return err
    log.warning("image.url_refused", setting="VISION_PROXY_FETCH_ALLOW", hint=FETCH_HINT)
    if not is_loopback(settings.host):
        return err
    return err.hinted(FETCH_HINT)
