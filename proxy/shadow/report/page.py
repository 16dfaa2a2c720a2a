"""The page: one section per action (outcomes, histograms, errors, worst cases) under summary cards."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from ...coverage import scan
from ..agreement import DEFINITION, agreement
from ..compare import DEFAULT_THRESHOLDS
from ..cost import cost_table
from ..cost import html as cost_html
from ..records import Record, RecordStore
from ..verdicts import Criteria, Verdict, judge, overall
from .charts import histogram_svg, outcome_bar
from .coverage import html_table
from .decision import evidence_html, sides_html, verdict_html
from .figures import _case_pictures
from .labels import FAMILY_TITLE, METRIC_HELP, OUTCOMES, _e, _ms, _when, providers
from .style import CSS
from .tables import _Action, _errors_table, _latencies, _score_table, _summary_table, _thresholds, percentile

WORST_PER_ACTION = 3


# Which metrics get a histogram, and their axis range (values outside land in the end bins).
HISTOGRAMS: dict[str, list[tuple[str, float, float]]] = {
    "ocr": [("f1", 0, 1), ("cer", 0, 1), ("recall", 0, 1), ("precision", 0, 1)],
    "matting": [("iou", 0, 1), ("mad", 0, 0.5)],
    "super_resolution": [("ssim", 0, 1), ("psnr", 10, 50)],
}


# The metric that ranks the worst cases (ascending: lower is worse), per family.
WORST_KEY = {"ocr": ("f1", True), "matting": ("iou", True), "super_resolution": ("ssim", True)}


def _case(store: RecordStore, record: Record, family: str) -> str:
    names = providers(record.mode)
    details = record.details or {}
    diffs = details.get("differences") or []
    diff_html = ""
    if diffs:
        items = "".join(f'<li class="k-{_e(d.get("kind", ""))}">{_e(d.get("message", ""))}</li>' for d in diffs[:40])
        more = f"<li>… {len(diffs) - 40} more</li>" if len(diffs) > 40 else ""
        diff_html = f'<h3>Differences</h3><ul class="diffs">{items}{more}</ul>'
    reasons = "".join(f'<p class="note">{_e(r)}</p>' for r in details.get("reasons") or [] if "noise" in r)
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in details.get("notes") or [])
    latency = record.latency_ms or {}
    return (
        f'<article class="case" data-record="{_e(record.id)}" data-outcome="{_e(record.outcome)}">'
        f'<div class="case-head"><span class="chip o-{_e(record.outcome)}">{_e(record.outcome)}</span>'
        f'<b>{_e(record.action)}</b><span class="note">{_e(_when(record.time))} · mode {_e(record.mode)} · '
        f'{names[0]} {_ms(latency.get("primary"))}, {names[1]} {_ms(latency.get("secondary"))}</span>'
        f'<span class="id">{_e(record.id)}</span></div>'
        f'<div class="case-body"><div>{_case_pictures(store, record, family)}</div>'
        f'<div>{_score_table(record, family)}{reasons}{diff_html}{notes}</div></div></article>')


def _worst(group: _Action, limit: int) -> list[Record]:
    metric, ascending = WORST_KEY.get(group.family, ("", True))
    rank = {"mismatched": 0, "ignored": 1, "matched": 2}

    def key(r: Record) -> tuple[int, int, float]:
        v = r.scores.get(metric)
        value = v if v is not None else -math.inf
        return (rank.get(r.outcome, 3), 0 if r.images else 1, value if ascending else -value)

    # OCR answers carry their boxes, so any compared record can be drawn; matting and super-resolution
    # need the stored pictures, which the store keeps for mismatches only.
    compared = [r for r in group.records if r.outcome != "error" and (group.family == "ocr" or r.images)]
    worst = sorted((r for r in compared if r.outcome != "matched"), key=key)[:limit]
    return worst or sorted(compared, key=key)[:1]  # nothing disagrees: the lowest-scoring agreement


def action_verdict(group: _Action, criteria: Criteria) -> Verdict:
    return judge(group.counts, percentile(_latencies(group.records, "AWS"), 95),
                 percentile(_latencies(group.records, "Aliyun"), 95), criteria)


def _action_section(store: RecordStore, group: _Action, worst: int, verdict: Verdict) -> str:
    c = group.counts
    failed = Counter(name for r in group.records for name in r.failed if r.outcome == "mismatched")
    hists = []
    bounds: Mapping[str, Mapping[str, float]] = DEFAULT_THRESHOLDS.get(group.family, {})
    if group.records:
        bounds = _thresholds(group.records[-1], group.family)
    for metric, lo, hi in HISTOGRAMS.get(group.family, []):
        values = [v for r in group.records if r.outcome != "error" and (v := r.scores.get(metric)) is not None]
        bound = bounds.get(metric)
        label = metric + (" (" + ", ".join(f"{k} {v:g}" for k, v in bound.items()) + ")" if bound else "")
        hists.append(f'<div class="histfig">{histogram_svg(values, lo, hi, bound, f"{label} · n={len(values)}")}'
                     f'<p class="note metric-help">{_e(METRIC_HELP.get(metric, ""))}</p></div>')
    top_failed = ", ".join(f"{_e(n)} ×{k}" for n, k in failed.most_common()) or "none"
    chosen = _worst(group, worst)
    cases = [_case(store, r, group.family) for r in chosen]
    heading = "Worst cases" if any(r.outcome != "matched" for r in chosen) else \
        "No disagreement: the lowest-scoring case"
    return (
        f'<section class="action" id="a-{_e(group.action)}" data-action="{_e(group.action)}">'
        f'<h2>{_e(group.action)} <span class="note">{_e(group.product)} · '
        f'{_e(FAMILY_TITLE.get(group.family, ""))} · {len(group.records)} comparisons</span></h2>'
        f'{verdict_html(verdict, group.action)}'
        f'<p>{outcome_bar(c, 320)} &nbsp; '
        + " · ".join(f'<span class="sw o-{o}"></span>{o} {c.get(o, 0)}' for o in OUTCOMES)
        + f'</p><p class="note">Failed thresholds: {top_failed}</p>'
        f'<div class="hists">{"".join(hists)}</div>{_errors_table(group)}'
        f'<h3>Every mismatch and error</h3>{evidence_html(group.records)}'
        f'<h3>{heading}</h3>'
        + ("".join(cases) if cases else '<p class="empty">no compared records</p>')
        + "</section>")


def render_report(store: RecordStore, *, worst: int = WORST_PER_ACTION, title: str = "Shadow comparison",
                  criteria: Criteria | None = None) -> str:
    """The report as one HTML string."""
    by_action: dict[str, _Action] = defaultdict(lambda: _Action(""))
    for r in store.records():
        if r.action not in by_action:
            by_action[r.action] = _Action(r.action)
        by_action[r.action].records.append(r)
    family_order = {"ocr": 0, "matting": 1, "super_resolution": 2}
    groups = sorted(by_action.values(), key=lambda g: (family_order.get(g.family, 9), g.action))
    everything = [r for g in groups for r in g.records]
    total = Counter(r.outcome for r in everything)
    agree = agreement(total)
    period = f"{_when(everything[0].time)} → {_when(everything[-1].time)}" if everything else "no records"
    modes = ", ".join(sorted({r.mode for r in everything})) or "–"
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cards = (
        f'<div class="cards"><div class="card"><div class="k">Comparisons</div><div class="v" id="total">'
        f'{len(everything)}</div></div>'
        f'<div class="card"><div class="k">Agreement</div><div class="v">{"–" if agree is None else f"{agree:.0%}"}'
        f'</div></div>'
        f'<div class="card"><div class="k">Mismatched</div><div class="v" style="color:var(--bad)">'
        f'{total.get("mismatched", 0)}</div></div>'
        f'<div class="card"><div class="k">Errors</div><div class="v" style="color:var(--err)">'
        f'{total.get("error", 0)}</div></div>'
        f'<div class="card"><div class="k">Actions</div><div class="v">{len(groups)}</div></div></div>')
    legend = (
        '<div class="legend">'
        + "".join(f'<span><span class="sw o-{o}"></span>{o}</span>' for o in OUTCOMES)
        + '<span><span class="sw" style="background:var(--aliyun)"></span>Aliyun</span>'
        '<span><span class="sw" style="background:var(--aws)"></span>AWS</span>'
        f'<span class="definition">{_e(DEFINITION)}</span></div>')
    criteria = criteria or Criteria()
    verdicts = {g.action: action_verdict(g, criteria) for g in groups}
    sections = "".join(_action_section(store, g, worst, verdicts[g.action]) for g in groups)
    body = (
        f'<main><header><h1>{_e(title)}: Aliyun vs AWS</h1>'
        f'<p>{_e(period)} · modes {_e(modes)} · store {_e(store.root)} · generated {now}</p></header>'
        f'<h2>Verdict</h2>{verdict_html(overall(list(verdicts.values())), "overall")}'
        f'{sides_html(everything)}{cards}{legend}<h2>By action</h2>'
        + (_summary_table(groups, verdicts) if groups else '<p class="empty">The store holds no records yet.</p>')
        + sections + "</main>")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f'<body>{body}</body></html>')


def write_report(store_dir: Path | str, out: Path | str, *, worst: int = WORST_PER_ACTION,
                 criteria: Criteria | None = None, coverage: Path | None = None, prices: Path | None = None) -> Path:
    """Render the store at store_dir into the file out (parents created); returns the path. The coverage
    table is read from `coverage` (default: the coverage directory beside the store, <data_dir>/coverage)."""
    store = RecordStore(store_dir)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    page = render_report(store, worst=worst, criteria=criteria)
    # what the traffic costs on each side, from the user's price table
    page = page.replace("</main>", cost_html(cost_table(list(store.records()), prices)) + "</main>")
    found = scan(coverage or Path(store_dir).parent / "coverage")
    if found.rows:
        page = page.replace("</main>", f"<h2>Coverage: what the app sends</h2>{html_table(found)}</main>")
    path.write_text(page, "utf-8")
    return path
