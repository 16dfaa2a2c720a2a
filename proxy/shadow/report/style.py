"""The report's stylesheet, inlined into the page so the file stands alone."""

from __future__ import annotations

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
.verdict{display:flex;gap:18px;align-items:center;background:#fff;border:2px solid var(--line);border-radius:12px;
padding:10px 16px;margin:10px 0}
.verdict .vname{font-size:22px;font-weight:750;min-width:190px}
.v-go{border-color:var(--ok)}.v-go .vname{color:var(--ok)}.v-nogo{border-color:#d93b3b}.v-nogo .vname{color:#d93b3b}
.v-nodata{border-color:var(--ign)}.v-nodata .vname{color:var(--muted)}
ul.criteria{margin:0;padding:0;list-style:none;display:flex;gap:16px;flex-wrap:wrap;font-size:13px}
ul.criteria li.pass::before{content:"✓ ";color:var(--ok)}ul.criteria li.fail::before{content:"✗ ";color:#d93b3b}
ul.criteria li.unknown::before{content:"? ";color:var(--muted)}
.loud{background:#d93b3b;color:#fff;font-weight:700;font-size:16px;padding:12px 16px;border-radius:10px}
#sides{width:auto;margin:10px 0}#sides th{text-transform:none;font-size:13px}
td.verdict-cell{font-size:12px;font-weight:700;line-height:1.2}
td.verdict-cell[data-verdict="GO"]{color:var(--ok)}td.verdict-cell[data-verdict="NO-GO"]{color:#d93b3b}
td.verdict-cell[data-verdict="NOT ENOUGH DATA"]{color:var(--muted)}
#summary{table-layout:auto}
.histfig{max-width:340px}.metric-help{font-size:11px}
details.evidence{background:#fff;border:1px solid var(--line);border-radius:10px;padding:8px 12px}
details.evidence summary{cursor:pointer;font-weight:600}
details.evidence .scroll{max-height:480px;overflow:auto;margin-top:8px}
details.evidence td{font-size:12px;vertical-align:top}
"""
