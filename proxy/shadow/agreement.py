"""The one definition of agreement, used by the report, and written out for the dashboard and alerts
(helm/vision-proxy/dashboards/vision-proxy.json, templates/prometheusrule.yaml; tests/test_verdicts.py
holds them to it).

Agreement = (matched + ignored) / (matched + ignored + mismatched). An `ignored` comparison broke a
threshold by no more than Aliyun differs from itself (the noise floor), so it counts as agreeing;
errors are not comparisons and are counted apart (the error rate).
"""

from __future__ import annotations

from collections.abc import Mapping

AGREED = ("matched", "ignored")
COMPARED = ("matched", "ignored", "mismatched")
DEFINITION = ("Agreement = (matched + ignored) / (matched + ignored + mismatched); errors are not comparisons "
              "and are counted apart. Ignored = thresholds broken, but no worse than Aliyun against itself.")
PROMQL_AGREED = "|".join(AGREED)  # outcome=~"matched|ignored"
PROMQL_COMPARED = "|".join(COMPARED)  # outcome=~"matched|ignored|mismatched"


def agreement(counts: Mapping[str, int]) -> float | None:
    """The share of comparisons that agree, None when nothing was compared."""
    compared = sum(counts.get(o, 0) for o in COMPARED)
    return sum(counts.get(o, 0) for o in AGREED) / compared if compared else None


def error_rate(counts: Mapping[str, int]) -> float | None:
    """errors / every recorded call (compared or not), None when nothing was recorded."""
    total = sum(counts.values())
    return counts.get("error", 0) / total if total else None
