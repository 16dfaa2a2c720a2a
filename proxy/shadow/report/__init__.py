"""`vision-proxy report`: one self-contained HTML page summarising a shadow record store.

For a migration lead at a glance: per action, how often Aliyun and AWS agree, how the agreement metrics
are distributed (inline SVG histograms with the threshold drawn in), both sides' latency, and the worst
cases side by side (OCR boxes drawn on the input, both masks, both enlargements). No external assets:
pictures are rendered with Pillow and embedded as data URIs, so the file can be mailed or attached.

One concern a module; this package is their public face:
- labels: provider names and colours, outcomes, family titles, HTML escaping and number formatting;
- charts: inline SVG histograms and outcome bars;
- figures: a case's pictures, drawn with Pillow;
- tables: the summary, score and error tables, and the per-action grouping they read;
- style: the stylesheet;
- page: the sections and the page itself (render_report, write_report).
"""

from ..agreement import agreement
from .charts import histogram_svg, outcome_bar
from .figures import DETAIL_CROP, MAX_PICTURE_SIDE, mask_difference, ocr_overlay
from .labels import ALIYUN_RGB, AWS_RGB, FAMILY_TITLE, OUTCOMES, providers
from .page import HISTOGRAMS, WORST_KEY, WORST_PER_ACTION, render_report, write_report
from .style import CSS
from .tables import percentile

__all__ = [
    "ALIYUN_RGB",
    "AWS_RGB",
    "CSS",
    "DETAIL_CROP",
    "FAMILY_TITLE",
    "HISTOGRAMS",
    "MAX_PICTURE_SIDE",
    "OUTCOMES",
    "WORST_KEY",
    "WORST_PER_ACTION",
    "agreement",
    "histogram_svg",
    "mask_difference",
    "ocr_overlay",
    "outcome_bar",
    "percentile",
    "providers",
    "render_report",
    "write_report",
]
