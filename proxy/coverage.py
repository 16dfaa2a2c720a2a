"""The coverage scan over what the proxy saw (proxy/observers/coverage.py writes it): per Aliyun action and
version, how often the app called it and what became of the calls, and which parameters it sent, marked
`ignored` (accepted, no effect on the kit: the mapping's `ignored`) or `unknown` (not in the mapping).
`vision-proxy coverage` prints it; the report shows it as a table."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SUBDIR = "coverage"  # under data_dir: one file per process, written by proxy/observers/coverage.py
RESULTS = ("served", "aliyun", "refused", "unknown")


@dataclass
class Row:
    product: str
    action: str
    version: str
    results: Counter[str] = field(default_factory=Counter)
    params: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (effect, count)

    @property
    def calls(self) -> int:
        return sum(self.results.values())

    @property
    def mapped(self) -> bool:
        return self.results.get("unknown", 0) < self.calls or bool(self.product)


@dataclass
class Scan:
    rows: list[Row]
    since: str
    until: str
    files: int


def coverage_dir(data_dir: Path) -> Path:
    return Path(data_dir) / SUBDIR


def scan(directory: Path) -> Scan:
    """Merge every process's counts under the directory (one file per pod and process)."""
    rows: dict[tuple[str, str], Row] = {}
    params: dict[tuple[str, str], Counter[tuple[str, str]]] = defaultdict(Counter)
    since, until, files = "", "", 0
    for path in sorted(Path(directory).glob("*.json")) if Path(directory).is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        files += 1
        since = min(since or data["since"], data["since"])
        until = max(until, data["until"])
        for c in data.get("calls", []):
            row = rows.setdefault((c["action"], c["version"]), Row(c["product"], c["action"], c["version"]))
            row.product = row.product or c["product"]
            row.results[c["result"]] += int(c["count"])
        for p in data.get("parameters", []):
            params[(p["action"], p["version"])][(p["parameter"], p["effect"])] += int(p["count"])
    for key, counted in params.items():
        if key in rows:
            rows[key].params = {name: (effect, n) for (name, effect), n in sorted(counted.items())}
    ordered = sorted(rows.values(), key=lambda r: (-r.calls, r.action, r.version))
    return Scan(ordered, since, until, files)


def params_text(row: Row) -> str:
    marks = {"ignored": " (ignored: no effect)", "unknown": " (unknown)", "honoured": ""}
    return ", ".join(f"{name} ×{n}{marks[effect]}" for name, (effect, n) in row.params.items()) or "–"


def table(result: Scan) -> str:
    """A plain-text table for the terminal."""
    if not result.rows:
        return "no coverage recorded yet (the proxy writes it under <data_dir>/coverage as it serves)"
    head = ["action", "version", "product", "calls", *RESULTS, "parameters sent"]
    lines = [[r.action, r.version, r.product or "(not mapped)", str(r.calls),
              *(str(r.results.get(k, 0)) for k in RESULTS), params_text(r)] for r in result.rows]
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head) - 1)]
    out = [f"coverage {result.since} → {result.until} ({result.files} file(s)); served = answered by AWS, "
           "aliyun = answered by Aliyun (shadow mode), refused = an error answer, unknown = no mapping"]
    for cells in [head, *lines]:
        out.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)) + "  " + cells[-1])
    return "\n".join(out)


def coverage_command(directory: Path) -> int:
    import sys

    if not directory.is_dir():
        print(f"coverage: no coverage records at {directory} (give --store DIR)", file=sys.stderr)
        return 2
    print(table(scan(directory)))
    return 0
