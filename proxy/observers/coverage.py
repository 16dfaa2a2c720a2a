"""The coverage scan's observer: which Aliyun actions, versions and parameters the app really sends, in any
mode, and what became of them (served by AWS, answered by Aliyun in shadow mode, refused, unknown).

Counts only names, never values. Kept in memory and written (atomically) to
`<data_dir>/coverage/<host>-<pid>.json` at most every FLUSH_SECONDS and at shutdown; `vision-proxy
coverage` and the report merge every file there (proxy/coverage.py). Prometheus counters get closed label
sets: mapped actions, versions and parameters, anything else as "other".
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..aliyun.errors import Err
from ..coverage import SUBDIR
from ..exchange import Exchange
from ..mappings import Registry
from ..observability.metrics import COVERAGE_PARAMETERS, COVERAGE_REQUESTS, child
from ..shadow.aliyun import V1_COMMON

FLUSH_SECONDS = 30.0
MAX_NAMES = 200  # distinct unknown action / parameter names kept per file (a scanner cannot fill the disk)
NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
UNKNOWN_CODES = {Err.INVALID_ACTION.code, Err.INVALID_VERSION.code}  # no mapping for the action or version
V3_COMMON = {"x-acs-action", "x-acs-version"}


def result_of(ex: Exchange) -> str:
    if ex.spec is None:
        if ex.primary == "aliyun":  # shadow mode: an unmapped action Aliyun answered (proxy/sides.py)
            return "aliyun"
        return "unknown" if ex.code in UNKNOWN_CODES or ex.code is None else "refused"
    if ex.code is not None:
        return "refused"
    return "aliyun" if ex.primary == "aliyun" else "served"


class CoverageObserver:
    def __init__(self, data_dir: Path, registry: Registry) -> None:
        self.path = Path(data_dir) / SUBDIR / f"{socket.gethostname()}-{os.getpid()}.json"
        self.registry = registry
        self.actions = {s.action for s in registry.specs.values()}
        self.versions = {s.version for s in registry.specs.values()}
        self.calls: Counter[tuple[str, str, str, str]] = Counter()  # product, action, version, result
        self.params: Counter[tuple[str, str, str, str]] = Counter()  # action, version, parameter, effect
        self.names: set[str] = set()  # the actions in `calls`, and the parameters in `params`
        self.param_names: set[str] = set()
        self.since = datetime.now(UTC).isoformat(timespec="seconds")
        self._flushed = time.monotonic()

    def observe(self, ex: Exchange) -> None:
        inbound = ex.inbound
        if inbound is None or not (inbound.action or inbound.version):
            return  # not an RPC call at all (a probe, a stray GET)
        action, version = inbound.action or "", inbound.version or ""
        product = ex.spec.product if ex.spec else ""
        result = result_of(ex)
        if not NAME.fullmatch(action):
            action = "(unreadable)"
        names = self.names
        if action not in self.actions and action not in names and len(names) >= MAX_NAMES:
            action = "(other)"
        names.add(action)
        self.calls[(product, action, version, result)] += 1
        child(COVERAGE_REQUESTS, action if action in self.actions else "other",
              version if version in self.versions else "other", result).inc()
        declared = ex.spec.parameters if ex.spec else {}
        for name in inbound.params:
            if name in V1_COMMON or name.lower() in V3_COMMON or not NAME.fullmatch(name):
                continue
            param = declared.get(name)
            effect = "unknown" if param is None else "ignored" if param.ignored else "honoured"
            if effect == "unknown" and len(self.param_names) >= MAX_NAMES:
                name = "(other)"
            self.param_names.add(name)
            self.params[(action, version, name, effect)] += 1
            child(COVERAGE_PARAMETERS, action if action in self.actions else "other",
                  name if param is not None else "other", effect).inc()
        if time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self.flush()

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since, "until": datetime.now(UTC).isoformat(timespec="seconds"),
                "calls": [{"product": p, "action": a, "version": v, "result": r, "count": n}
                          for (p, a, v, r), n in sorted(self.calls.items())],
                "parameters": [{"action": a, "version": v, "parameter": p, "effect": e, "count": n}
                               for (a, v, p, e), n in sorted(self.params.items())]}

    def flush(self) -> None:
        """Write the counts so far (a small JSON file, replaced atomically)."""
        self._flushed = time.monotonic()
        if not self.calls:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps(self.to_dict(), indent=1))
            os.replace(tmp, self.path)
        except OSError:
            pass  # coverage is an aid: a read-only disk must not fail the caller's request
