"""The coverage table in the report: the scan (proxy/coverage.py) as HTML."""

from __future__ import annotations

from ...coverage import RESULTS, Scan, params_text
from .labels import _e


def html_table(result: Scan) -> str:
    if not result.rows:
        return '<p class="empty">No coverage recorded (the proxy writes it under &lt;data_dir&gt;/coverage).</p>'
    head = "".join(f"<th>{h}</th>" for h in ("Action", "Version", "Product", "Calls", *RESULTS, "Parameters sent"))
    rows = "".join(
        f'<tr data-coverage="{_e(r.action)}"><td><b>{_e(r.action)}</b></td><td>{_e(r.version)}</td>'
        f'<td>{_e(r.product or "not mapped")}</td><td class="n">{r.calls}</td>'
        + "".join(f'<td class="n">{r.results.get(k, 0)}</td>' for k in RESULTS)
        + f'<td class="note">{_e(params_text(r))}</td></tr>' for r in result.rows)
    return (f'<p class="note">{_e(result.since)} → {_e(result.until)}; served = answered by AWS, aliyun = answered '
            'by Aliyun (shadow mode), refused = an error answer, unknown = no mapping; parameters marked ignored '
            f'are accepted but change nothing on the kit.</p><table id="coverage"><tr>{head}</tr>{rows}</table>')
