"""Agreement has one definition (proxy/shadow/agreement.py): the report, the dashboard and the alerts use
the same outcome sets, so the number a lead reads in the report is the one the SRE watches."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import yaml

from proxy.observability.metrics import LATENCY_BUCKETS
from proxy.shadow.agreement import PROMQL_AGREED, PROMQL_COMPARED, agreement, error_rate

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "vision-proxy"


def _outcome_sets(text: str) -> set[str]:
    return set(re.findall(r'outcome=~?\\?"([a-z|]+)\\?"', text))


def test_agreement_counts_ignored_as_agreeing_and_errors_apart() -> None:
    assert agreement({"matched": 2, "ignored": 1, "mismatched": 1, "error": 6}) == 0.75
    assert agreement({"error": 3}) is None
    assert error_rate({"matched": 3, "error": 1}) == 0.25


def test_dashboard_agreement_panels_use_the_reports_definition() -> None:
    dashboard = json.loads((CHART / "dashboards" / "vision-proxy.json").read_text())
    panels = [p for p in dashboard["panels"] if "agreement" in (p.get("title", "") + p.get("description", "")).lower()]
    assert panels, "the dashboard has no agreement panel"
    for panel in panels:
        exprs = " ".join(t["expr"] for t in panel["targets"])
        assert _outcome_sets(exprs) == {PROMQL_AGREED, PROMQL_COMPARED}, (panel["title"], exprs)


def test_mismatch_alert_divides_by_the_same_comparisons() -> None:
    rule = (CHART / "templates" / "prometheusrule.yaml").read_text()
    block = rule.split("alert: VisionProxyShadowMismatch", 1)[1].split("- alert:", 1)[0]
    assert _outcome_sets(block) == {"mismatched", PROMQL_COMPARED}


def test_latency_buckets_are_dense_around_the_alert_threshold() -> None:
    """histogram_quantile interpolates inside a bucket: the p99 alert is only as sharp as the buckets beside it."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    threshold = float(values["metrics"]["prometheusRule"]["thresholds"]["latencyP99Seconds"])
    assert threshold in LATENCY_BUCKETS
    near = [b for b in LATENCY_BUCKETS if threshold - 3 <= b <= threshold + 2]
    assert all(b - a <= 1 for a, b in itertools.pairwise(near)) and len(near) >= 5, near
