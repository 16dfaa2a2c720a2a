"""`vision-proxy report`: one self-contained HTML page summarising a shadow record store.

For a migration lead at a glance: per action, how often Aliyun and AWS agree, how the agreement metrics
are distributed (inline SVG histograms with the threshold drawn in), both sides' latency, and the worst
cases side by side (OCR boxes drawn on the input, both masks, both enlargements). No external assets:
pictures are rendered with Pillow and embedded as data URIs, so the file can be mailed or attached.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageDraw

from .compare import DEFAULT_THRESHOLDS, Line, family_of, mask_of, ocr_lines
from .records import Record, RecordStore

ALIYUN_RGB = (229, 72, 77)
AWS_RGB = (47, 111, 237)
OUTCOMES = ("matched", "ignored", "mismatched", "error")
WORST_PER_ACTION = 3
MAX_PICTURE_SIDE = 720
DETAIL_CROP = 200  # side of the 1:1 crop shown for super-resolution detail

# Which metrics get a histogram, and their axis range (values outside land in the end bins).
HISTOGRAMS: dict[str, list[tuple[str, float, float]]] = {
    "ocr": [("f1", 0, 1), ("cer", 0, 1), ("recall", 0, 1), ("precision", 0, 1)],
    "matting": [("iou", 0, 1), ("mad", 0, 0.5)],
    "super_resolution": [("ssim", 0, 1), ("psnr", 10, 50)],
}
# The metric that ranks the worst cases (ascending: lower is worse), per family.
WORST_KEY = {"ocr": ("f1", True), "matting": ("iou", True), "super_resolution": ("ssim", True)}
FAMILY_TITLE = {"ocr": "OCR", "matting": "Matting", "super_resolution": "Super-resolution"}


def providers(mode: str) -> tuple[str, str]:
    """Who answered as primary and as secondary: in reverse-shadow AWS serves and Aliyun is the shadow."""
    return ("AWS", "Aliyun") if mode == "reverse-shadow" else ("Aliyun", "AWS")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if float(value).is_integer() and abs(value) >= 2:  # counts and sizes
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.{digits}f}"


def _when(iso: str) -> str:
    """ISO-8601 UTC as '2026-11-25 15:43:04 UTC' (seconds are enough for a reader)."""
    return iso[:19].replace("T", " ") + " UTC" if len(iso) >= 19 else iso


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms"


def _data_uri(img: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(buf, "JPEG", quality=85)
        mime = "image/jpeg"
    else:
        img.save(buf, "PNG", optimize=True)
        mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _fit(img: Image.Image, side: int = MAX_PICTURE_SIDE) -> Image.Image:
    img = img.copy()
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    return img


def _open(data: bytes | None) -> Image.Image | None:
    if not data:
        return None
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------------------
# Pictures


def ocr_overlay(image: Image.Image | None, primary: Sequence[Line], secondary: Sequence[Line],
                colours: tuple[tuple[int, int, int], tuple[int, int, int]]) -> Image.Image:
    """The input with both sets of line polygons drawn (primary first, secondary over it, both outlined)."""
    if image is None:
        xs = [p[0] for ln in [*primary, *secondary] for p in ln.poly] or [100.0]
        ys = [p[1] for ln in [*primary, *secondary] for p in ln.poly] or [100.0]
        image = Image.new("RGB", (int(max(xs)) + 20, int(max(ys)) + 20), (250, 250, 250))
    base = image.convert("RGB")
    scale = min(1.0, MAX_PICTURE_SIDE / max(base.size))
    if scale < 1:
        base = base.resize((max(1, round(base.width * scale)), max(1, round(base.height * scale))),
                           Image.Resampling.LANCZOS)
    base = Image.blend(base, Image.new("RGB", base.size, "white"), 0.25)  # fade the photo, keep the boxes
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    width = max(2, round(max(base.size) / 300))
    for lines, colour in ((primary, colours[0]), (secondary, colours[1])):
        for ln in lines:
            pts = [(x * scale, y * scale) for x, y in ln.poly]
            draw.polygon(pts, fill=(*colour, 40))
            draw.line([*pts, pts[0]], fill=(*colour, 255), width=width)
    return Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB")


def mask_difference(a: Image.Image, b: Image.Image, colours: tuple[tuple[int, int, int], tuple[int, int, int]],
                    ) -> Image.Image:
    """Both foreground: dark grey; only primary: primary's colour; only secondary: secondary's colour."""
    if b.size != a.size:
        b = b.resize(a.size, Image.Resampling.BILINEAR)
    fa = a.point(lambda v: 255 if v >= 128 else 0)
    fb = b.point(lambda v: 255 if v >= 128 else 0)
    out = Image.new("RGB", a.size, (255, 255, 255))
    out.paste((70, 70, 78), mask=ImageChops.logical_and(fa.convert("1"), fb.convert("1")).convert("L"))
    out.paste(colours[0], mask=ImageChops.subtract(fa, fb))
    out.paste(colours[1], mask=ImageChops.subtract(fb, fa))
    return out


def _checker(img: Image.Image) -> Image.Image:
    """An RGBA cut-out over a light checkerboard, so transparency reads as transparency."""
    size = 12
    board = Image.new("RGB", img.size, (236, 236, 240))
    draw = ImageDraw.Draw(board)
    for y in range(0, img.height, size):
        for x in range((y // size) % 2 * size, img.width, 2 * size):
            draw.rectangle([x, y, x + size - 1, y + size - 1], fill=(252, 252, 252))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        board.paste(rgba, mask=rgba.getchannel("A"))
        return board
    return img.convert("RGB")


def _centre_crop(img: Image.Image, side: int) -> Image.Image:
    left, top = max(0, (img.width - side) // 2), max(0, (img.height - side) // 2)
    return img.crop((left, top, min(img.width, left + side), min(img.height, top + side)))


# ---------------------------------------------------------------------------------------------------------
# SVG


def histogram_svg(values: Sequence[float], lo: float, hi: float, bound: Mapping[str, float] | None,
                  title: str, bins: int = 10) -> str:
    """A small histogram; bars on the failing side of the threshold are drawn in the warning colour."""
    w, h, pad_l, pad_b, pad_t = 280, 132, 28, 20, 34
    counts = [0] * bins
    for v in values:
        if v is None or math.isnan(v):
            continue
        i = int((v - lo) / (hi - lo) * bins) if hi > lo else 0
        counts[min(bins - 1, max(0, i))] += 1
    top = max(counts) or 1
    bw = (w - pad_l - 8) / bins
    parts = [f'<svg class="hist" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
             f'aria-label="{_e(title)}"><text x="{pad_l}" y="14" class="ht">{_e(title)}</text>']
    base_y = h - pad_b
    parts.append(f'<line x1="{pad_l}" y1="{base_y}" x2="{w - 8}" y2="{base_y}" class="axis"/>')
    for i, c in enumerate(counts):
        x0 = lo + (hi - lo) * i / bins
        x1 = lo + (hi - lo) * (i + 1) / bins
        mid = (x0 + x1) / 2
        limits = bound or {}
        failing = ("min" in limits and mid < limits["min"]) or ("max" in limits and mid > limits["max"])
        bh = (base_y - pad_t) * c / top
        cls = "bar bad" if failing else "bar"
        x = pad_l + i * bw
        parts.append(f'<rect x="{x + 1:.1f}" y="{base_y - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" '
                     f'class="{cls}"><title>{x0:.3g}–{x1:.3g}: {c}</title></rect>')
        if c:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{base_y - bh - 3:.1f}" class="hc">{c}</text>')
    for value in (bound or {}).values():
        if lo <= value <= hi:
            x = pad_l + (value - lo) / (hi - lo) * (w - pad_l - 8)
            parts.append(f'<line x1="{x:.1f}" y1="{pad_t - 4}" x2="{x:.1f}" y2="{base_y}" class="thr"/>')
    parts.append(f'<text x="{pad_l}" y="{h - 5}" class="hl">{lo:g}</text>'
                 f'<text x="{w - 8}" y="{h - 5}" class="hl" text-anchor="end">{hi:g}</text>'
                 f'<text x="4" y="{pad_t + 8}" class="hl">{top}</text></svg>')
    return "".join(parts)


def outcome_bar(counts: Mapping[str, int], width: int = 160) -> str:
    """A stacked bar of outcomes (inline SVG)."""
    total = sum(counts.values()) or 1
    x = 0.0
    rects = []
    for name in OUTCOMES:
        n = counts.get(name, 0)
        if not n:
            continue
        w = width * n / total
        rects.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="12" class="o-{name}">'
                     f'<title>{name}: {n}</title></rect>')
        x += w
    return f'<svg class="obar" width="{width}" height="12" viewBox="0 0 {width} 12">{"".join(rects)}</svg>'


# ---------------------------------------------------------------------------------------------------------
# Page


CSS = """
:root{--aliyun:rgb(229,72,77);--aws:rgb(47,111,237);--ok:#2f9e66;--ign:#8d96a8;--bad:#e8833a;--err:#8e4ec6;
--ink:#1d2330;--muted:#636b7d;--line:#e3e6ec;--bg:#f5f6f9}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Noto Sans","WenQuanYi Zen Hei",sans-serif}
main{max-width:1320px;margin:0 auto;padding:28px 32px 60px}
header h1{font-size:26px;margin:0 0 4px;letter-spacing:-.01em}
header p{margin:0;color:var(--muted)}
h2{font-size:20px;margin:36px 0 12px;padding-top:8px;border-top:1px solid var(--line)}
h3{font-size:15px;margin:20px 0 8px}
.cards{display:flex;gap:14px;margin:20px 0 8px;flex-wrap:wrap}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:14px 18px;min-width:170px;
box-shadow:0 1px 2px rgba(20,30,50,.04)}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.card .v{font-size:28px;font-weight:650;margin-top:2px}
.legend{display:flex;gap:16px;flex-wrap:wrap;color:var(--muted);font-size:13px;margin:10px 0 0}
.sw{display:inline-block;width:11px;height:11px;border-radius:3px;margin-right:5px;vertical-align:-1px}
table{border-collapse:collapse;background:#fff;border:1px solid var(--line);border-radius:10px;overflow:hidden;
width:100%}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:middle}
th{background:#fafbfc;font-weight:600;font-size:12px;color:var(--muted);text-transform:uppercase;
letter-spacing:.04em}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.nw{white-space:nowrap}
a{color:inherit;text-decoration:none}a:hover{text-decoration:underline}
tr:last-child td{border-bottom:0}
.chip{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;color:#fff}
.o-matched{fill:var(--ok);background:var(--ok)}.o-ignored{fill:var(--ign);background:var(--ign)}
.o-mismatched{fill:var(--bad);background:var(--bad)}.o-error{fill:var(--err);background:var(--err)}
.aliyun{color:var(--aliyun)}.aws{color:var(--aws)}
.hists{display:flex;gap:14px;flex-wrap:wrap}
.hist{background:#fff;border:1px solid var(--line);border-radius:10px}
.hist .ht{font-size:12px;font-weight:600;fill:var(--ink)}.hist .hl{font-size:10px;fill:var(--muted)}
.hist .hc{font-size:9px;fill:var(--muted);text-anchor:middle}
.hist .bar{fill:#9fb6d9}.hist .bar.bad{fill:#f0b27f}.hist .axis{stroke:#c9ced8}
.hist .thr{stroke:var(--ink);stroke-dasharray:3 3;stroke-width:1.2}
.case{background:#fff;border:1px solid var(--line);border-radius:12px;padding:16px 18px;margin:14px 0;
box-shadow:0 1px 2px rgba(20,30,50,.04)}
.case-head{display:flex;gap:12px;align-items:baseline;flex-wrap:wrap;margin-bottom:10px}
.case-head .id{color:var(--muted);font-size:12px;font-family:ui-monospace,monospace}
.case-body{display:grid;grid-template-columns:minmax(0,1fr) 300px;gap:18px}
.pics{display:flex;gap:12px;flex-wrap:wrap;align-items:flex-start}
figure{margin:0;flex:1 1 0;min-width:160px}
figure img{display:block;max-width:100%;height:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
figure img.px{image-rendering:pixelated;width:100%}
.pics.detail{margin-top:12px}.pics.detail figure{flex:0 0 auto;width:min(400px,48%)}
figcaption{font-size:12px;color:var(--muted);margin-top:4px;font-weight:600}
.scores td{padding:4px 8px;font-size:13px;white-space:nowrap}
.scores tr.fail td{background:#fff4ea;color:#a24c0c;font-weight:600}
.scores tr.noise td{background:#f2f3f6}
ul.diffs{margin:8px 0 0;padding-left:18px;font-size:13px;max-height:220px;overflow:auto}
ul.diffs li{margin:2px 0}
.k-missing{color:var(--aliyun)}.k-extra{color:var(--aws)}.k-text_changed{color:#a24c0c}.k-box_shifted{color:#6b7385}
.note{color:var(--muted);font-size:12px;margin:6px 0 0}
.empty{color:var(--muted);font-style:italic}
"""


class _Action:
    def __init__(self, action: str) -> None:
        self.action = action
        self.family = family_of(action) or ""
        self.records: list[Record] = []

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.outcome for r in self.records)

    @property
    def product(self) -> str:
        return self.records[0].product if self.records else ""


def agreement(counts: Mapping[str, int]) -> float | None:
    """(matched + ignored) / compared; errors are not comparisons and are counted apart."""
    compared = counts.get("matched", 0) + counts.get("ignored", 0) + counts.get("mismatched", 0)
    return (counts.get("matched", 0) + counts.get("ignored", 0)) / compared if compared else None


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


def _summary_table(groups: Sequence[_Action]) -> str:
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
            f'<td class="n" data-outcome="total">{len(g.records)}</td>{cells}'
            f'<td class="n">{"–" if agree is None else f"{agree:.0%}"}</td><td>{outcome_bar(c)}</td>'
            f'{"".join(lat)}</tr>')
    head = ("<tr><th>Action</th><th>Total</th><th>Matched</th><th>Ignored</th><th>Mismatched</th><th>Error</th>"
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
    return f'<table class="scores">{"".join(rows)}</table>'


def _figure(title: str, img: Image.Image | None, cls: str = "", fmt: str = "PNG", pixelated: bool = False) -> str:
    if img is None:
        return f'<figure class="{cls}"><div class="empty">{_e(title)}: not stored</div></figure>'
    css = ' class="px"' if pixelated else ""
    return (f'<figure class="{cls}"><img{css} alt="{_e(title)}" src="{_data_uri(img, fmt)}">'
            f'<figcaption>{_e(title)}</figcaption></figure>')


def _case_pictures(store: RecordStore, record: Record, family: str) -> str:
    names = providers(record.mode)
    colours = (ALIYUN_RGB, AWS_RGB) if names[0] == "Aliyun" else (AWS_RGB, ALIYUN_RGB)
    pic_input = _open(store.read_image(record, "input"))
    if family == "ocr":
        try:
            p_lines = ocr_lines(record.action, record.primary.get("body") or {})
            s_lines = ocr_lines(record.action, record.secondary.get("body") or {})
        except (ValueError, TypeError, KeyError, AttributeError):
            return '<p class="empty">answers could not be parsed</p>'
        overlay = ocr_overlay(pic_input, p_lines, s_lines, colours)
        caption = f"{names[0]} boxes ({'red' if names[0] == 'Aliyun' else 'blue'}) and {names[1]} boxes " \
                  f"({'blue' if names[1] == 'AWS' else 'red'}) on the input"
        return f'<div class="pics">{_figure(caption, overlay, "overlay", "JPEG")}</div>'
    # Pictures are laid out Aliyun first, AWS second, whichever side was primary.
    order = (0, 1) if names[0] == "Aliyun" else (1, 0)
    raw = [store.read_image(record, "primary"), store.read_image(record, "secondary")]
    imgs = [_open(raw[0]), _open(raw[1])]
    figs = []
    if family == "matting":
        if pic_input:
            figs.append(_figure("Input", _fit(pic_input), "input", "JPEG"))
        masks = [mask_of(raw[i] or b"")[0] if imgs[i] else None for i in (0, 1)]
        for i in order:
            m = masks[i]
            figs.append(_figure(f"{names[i]} mask", _fit(m) if m else None, names[i].lower()))
        if masks[0] and masks[1]:
            figs.append(_figure("Difference: red only Aliyun, blue only AWS",
                                _fit(mask_difference(masks[0], masks[1], colours)), "diff"))
        return f'<div class="pics">{"".join(figs)}</div>'
    if pic_input:  # shown at the enlargement's size, pixelated: what "no super-resolution" would look like
        target = imgs[0].size if imgs[0] else pic_input.size
        figs.append(_figure("Input, pixels enlarged", _fit(pic_input.convert("RGB").resize(
            target, Image.Resampling.NEAREST)), "input", "PNG"))
    for i in order:
        img = imgs[i]
        figs.append(_figure(f"{names[i]} result", _fit(_checker(img)) if img else None, names[i].lower(), "JPEG"))
    detail = ""
    p_img, s_img = imgs
    if p_img and s_img:
        crops = [_centre_crop(p_img.convert("RGB"), DETAIL_CROP),
                 _centre_crop(s_img.convert("RGB").resize(p_img.size, Image.Resampling.BICUBIC)
                              if s_img.size != p_img.size else s_img.convert("RGB"), DETAIL_CROP)]
        detail = ('<div class="pics detail">'
                  + "".join(_figure(f"{names[i]}: centre {DETAIL_CROP} px, zoomed", crops[i], names[i].lower(),
                                    pixelated=True) for i in order) + "</div>")
    return f'<div class="pics">{"".join(figs)}</div>{detail}'


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


def _action_section(store: RecordStore, group: _Action, worst: int) -> str:
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
        hists.append(histogram_svg(values, lo, hi, bound, f"{label} · n={len(values)}"))
    top_failed = ", ".join(f"{_e(n)} ×{k}" for n, k in failed.most_common()) or "none"
    chosen = _worst(group, worst)
    cases = [_case(store, r, group.family) for r in chosen]
    heading = "Worst cases" if any(r.outcome != "matched" for r in chosen) else \
        "No disagreement: the lowest-scoring case"
    return (
        f'<section class="action" id="a-{_e(group.action)}" data-action="{_e(group.action)}">'
        f'<h2>{_e(group.action)} <span class="note">{_e(group.product)} · '
        f'{_e(FAMILY_TITLE.get(group.family, ""))} · {len(group.records)} comparisons</span></h2>'
        f'<p>{outcome_bar(c, 320)} &nbsp; '
        + " · ".join(f'<span class="sw o-{o}"></span>{o} {c.get(o, 0)}' for o in OUTCOMES)
        + f'</p><p class="note">Failed thresholds: {top_failed}</p>'
        f'<div class="hists">{"".join(hists)}</div>{_errors_table(group)}'
        f'<h3>{heading}</h3>'
        + ("".join(cases) if cases else '<p class="empty">no compared records</p>')
        + "</section>")


def render_report(store: RecordStore, *, worst: int = WORST_PER_ACTION, title: str = "Shadow comparison") -> str:
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
        '<span>Agreement = (matched + ignored) / compared; errors are counted apart. '
        'Ignored = thresholds broken, but no worse than Aliyun against itself.</span></div>')
    sections = "".join(_action_section(store, g, worst) for g in groups)
    body = (
        f'<main><header><h1>{_e(title)}: Aliyun vs AWS</h1>'
        f'<p>{_e(period)} · modes {_e(modes)} · store {_e(store.root)} · generated {now}</p></header>'
        f'{cards}{legend}<h2>By action</h2>'
        + (_summary_table(groups) if groups else '<p class="empty">The store holds no records yet.</p>')
        + sections + "</main>")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f'<body>{body}</body></html>')


def write_report(store_dir: Path | str, out: Path | str, *, worst: int = WORST_PER_ACTION) -> Path:
    """Render the store at store_dir into the file out (parents created); returns the path."""
    store = RecordStore(store_dir)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(store, worst=worst), "utf-8")
    return path
