"""The report's decision parts: the verdicts beside their criteria, who answered on each side (loudly when
it was the embedded demo models), the time span and sample rate, and every failing case as evidence
(collapsed, one row per case: image, both sides' status, code, message and latency, the reasons)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..answered import EMBEDDED
from ..records import Record
from ..verdicts import GO, NO_GO, Verdict
from .labels import _e, _ms, _when, providers

EVIDENCE_OUTCOMES = ("mismatched", "error")


def verdict_html(verdict: Verdict, scope: str) -> str:
    cls = "go" if verdict.verdict == GO else "nogo" if verdict.verdict == NO_GO else "nodata"
    checks = "".join(
        f'<li class="{"pass" if c.passed else "fail" if c.passed is False else "unknown"}">'
        f'<b>{_e(c.name)}</b> {_e(c.value)} <span class="note">(needs {_e(c.rule)})</span></li>'
        for c in verdict.checks)
    return (f'<div class="verdict v-{cls}" data-verdict="{_e(verdict.verdict)}" data-scope="{_e(scope)}">'
            f'<span class="vname">{_e(verdict.verdict)}</span><ul class="criteria">{checks}</ul></div>')


def sides_html(records: Sequence[Record]) -> str:
    """Both sides named, as the records say they were; the embedded backend flagged in red."""
    aws = sorted({str((r.details or {}).get("sides", {}).get("aws") or "not recorded") for r in records})
    aliyun = sorted({str((r.details or {}).get("sides", {}).get("aliyun") or "not recorded") for r in records})
    rates = sorted({float(v) for r in records if (v := (r.details or {}).get("sample_rate")) is not None})
    span = f"{_when(records[0].time)} → {_when(records[-1].time)}" if records else "no records"
    loud = ""
    if any(a == EMBEDDED for a in aws):
        loud = ('<p class="loud" id="embedded-warning">AWS side: embedded demo models — not the kit. These '
                'numbers say nothing about the AWS AI Solution Kit; set VISION_PROXY_KIT_URL to compare it.</p>')
    rate = ", ".join(f"{r:.0%}" for r in rates) or "not recorded"
    return (f'{loud}<table id="sides"><tr><th>AWS side</th><td data-side="aws">{"<br>".join(map(_e, aws))}</td></tr>'
            f'<tr><th>Aliyun side</th><td data-side="aliyun">{"<br>".join(map(_e, aliyun))}</td></tr>'
            f'<tr><th>Time span</th><td id="span">{_e(span)}</td></tr>'
            f'<tr><th>Sample rate</th><td id="sample-rate">{_e(rate)}</td></tr></table>')


def _side(side: Mapping[str, Any]) -> str:
    body = side.get("body")
    status = side.get("status")
    if isinstance(body, Mapping) and body.get("Code"):
        return f"HTTP {status} · {body.get('Code')}: {body.get('Message', '')}"
    if isinstance(body, str) and body:  # a transport failure's text (offline: the exception)
        return f"HTTP {status} · {body[:300]}"
    return f"HTTP {status} · answered"


def evidence_html(records: Iterable[Record]) -> str:
    """Every mismatch and error, newest first, in a collapsed table (the browser pages it by scrolling)."""
    failing = [r for r in records if r.outcome in EVIDENCE_OUTCOMES]
    if not failing:
        return '<p class="note evidence-none">No mismatches or errors.</p>'
    rows = []
    for r in reversed(failing):
        names = providers(r.mode)
        details = r.details or {}
        lat = r.latency_ms or {}
        reasons = "; ".join(str(x) for x in details.get("reasons") or []) or ", ".join(r.failed)
        rows.append(
            f'<tr class="failing" data-record="{_e(r.id)}" data-outcome="{_e(r.outcome)}">'
            f'<td class="nw">{_e(_when(r.time))}</td><td class="image">{_e(details.get("image") or "–")}</td>'
            f'<td><span class="chip o-{_e(r.outcome)}">{_e(r.outcome)}</span></td>'
            f'<td class="reasons">{_e(reasons)}</td>'
            f'<td class="primary">{_e(names[0])}: {_e(_side(r.primary))}<br><span class="note">'
            f'{_ms(lat.get("primary"))}</span></td>'
            f'<td class="secondary">{_e(names[1])}: {_e(_side(r.secondary))}<br><span class="note">'
            f'{_ms(lat.get("secondary"))}</span></td></tr>')
    return (f'<details class="evidence"><summary>All {len(failing)} failing cases (mismatches and errors)</summary>'
            '<div class="scroll"><table><tr><th>Time</th><th>Image</th><th>Outcome</th><th>Reasons</th>'
            f'<th>Primary</th><th>Secondary</th></tr>{"".join(rows)}</table></div></details>')
