"""The report's tables: per-action summary (counts, agreement, latency percentiles), a case's scores
against its thresholds, an action's errors; and the per-action grouping of records they read."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from ..agreement import agreement
from ..compare import DEFAULT_THRESHOLDS
from ..records import Record
from ..verdicts import Verdict
from .charts import outcome_bar
from .labels import FAMILY_TITLE, METRIC_HELP, OUTCOMES, _e, _fmt, providers


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class _Action:
    def __init__(self, action: str) -> None:
        self.action = action
        self.records: list[Record] = []

    @property
    def family(self) -> str:
        """The family its records carry (from the action's mapping when recorded), "" when none says."""
        return next((r.family for r in reversed(self.records) if r.family), "")

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.outcome for r in self.records)

    @property
    def product(self) -> str:
        return self.records[0].product if self.records else ""


def _latencies(records: Iterable[Record], provider: str) -> list[float]:
    out = []
    for r in records:
        side = "primary" if providers(r.mode)[0] == provider else "secondary"
        v = (r.latency_ms or {}).get(side)
        if v is not None:
            out.append(float(v))
    return out


def _thresholds(record: Record, family: str) -> Mapping[str, Mapping[str, float]]:
    t = (record.details or {}).get("thresholds")
    return t if isinstance(t, Mapping) else DEFAULT_THRESHOLDS.get(family, {})


def _summary_table(groups: Sequence[_Action], verdicts: Mapping[str, Verdict]) -> str:
    rows = []
    for g in groups:
        c = g.counts
        agree = agreement(c)
        lat = []
        for who in ("Aliyun", "AWS"):
            values = _latencies(g.records, who)
            p50, p95 = percentile(values, 50), percentile(values, 95)
            text = "–" if p50 is None or p95 is None else f"{p50:,.0f} / {p95:,.0f} ms"
            lat.append(f'<td class="n nw">{text}</td>')
        cells = "".join(f'<td class="n" data-outcome="{o}">{c.get(o, 0)}</td>' for o in OUTCOMES)
        rows.append(
            f'<tr data-action="{_e(g.action)}"><td><a href="#a-{_e(g.action)}"><b>{_e(g.action)}</b></a><br>'
            f'<span class="note">{_e(g.product)} · {_e(FAMILY_TITLE.get(g.family, "not compared"))}</span></td>'
            f'<td class="verdict-cell" data-verdict="{_e(verdicts[g.action].verdict)}">'
            f'{_e(verdicts[g.action].verdict)}</td>'
            f'<td class="n" data-outcome="total">{len(g.records)}</td>{cells}'
            f'<td class="n">{"–" if agree is None else f"{agree:.0%}"}</td><td>{outcome_bar(c)}</td>'
            f'{"".join(lat)}</tr>')
    head = ("<tr><th>Action</th><th>Verdict</th><th>Total</th>"
            "<th>Matched</th><th>Ignored</th><th>Mismatched</th><th>Error</th>"
            "<th>Agreement</th><th>Outcomes</th><th class='aliyun n'>Aliyun p50 / p95</th>"
            "<th class='aws n'>AWS p50 / p95</th></tr>")
    return f'<table id="summary"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _score_table(record: Record, family: str) -> str:
    bounds = _thresholds(record, family)
    within = set((record.details or {}).get("within_noise") or [])
    names = list(dict.fromkeys([*bounds, *record.scores]))
    rows = []
    for name in names:
        value = record.scores.get(name)
        bound = bounds.get(name, {})
        text = " · ".join(f"{k} {v:g}" for k, v in bound.items())
        cls = "fail" if name in record.failed else "noise" if name in within else ""
        noise = (record.noise or {}).get(name) if record.noise else None
        extra = f" (noise {_fmt(noise)})" if noise is not None else ""
        flag = " ✗" if name in record.failed else " ≈ noise" if name in within else ""
        rows.append(f'<tr class="{cls}"><td>{_e(name)}{flag}</td><td class="n">{_fmt(value)}{extra}</td>'
                    f'<td class="note">{_e(text)}</td></tr>')
        if name in METRIC_HELP:
            rows.append(f'<tr class="help"><td colspan="3" class="note metric-help">{_e(METRIC_HELP[name])}</td></tr>')
    return f'<table class="scores">{"".join(rows)}</table>'


def _errors_table(group: _Action) -> str:
    pairs: Counter[tuple[str, str]] = Counter()
    for r in group.records:
        if r.outcome != "error":
            continue
        sides = []
        for side in (r.primary, r.secondary):
            body = side.get("body")
            code = body.get("Code") if isinstance(body, Mapping) else None
            status = side.get("status")
            sides.append(f"{status} {code}" if code else f"{status}")
        names = providers(r.mode)
        pairs[(f"{names[0]}: {sides[0]}", f"{names[1]}: {sides[1]}")] += 1
    if not pairs:
        return ""
    rows = "".join(f"<tr><td>{_e(a)}</td><td>{_e(b)}</td><td class='n'>{n}</td></tr>" for (a, b), n in
                   pairs.most_common(10))
    return (f'<h3>Errors</h3><table class="errors"><tr><th>Primary answer</th><th>Secondary answer</th>'
            f'<th>Count</th></tr>{rows}</table>')
