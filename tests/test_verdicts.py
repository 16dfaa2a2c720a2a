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


def test_verdict_criteria() -> None:
    from proxy.shadow.verdicts import GO, NO_GO, NOT_ENOUGH, Criteria, judge, overall

    criteria = Criteria(min_samples=10, min_agreement=0.9, max_error_rate=0.1, max_latency_ratio=2)
    good = judge({"matched": 19, "ignored": 1}, 300, 200, criteria)
    assert good.verdict == GO and all(c.passed for c in good.checks)
    assert judge({"matched": 9}, 300, 200, criteria).verdict == NOT_ENOUGH  # one short of the minimum
    slow = judge({"matched": 20}, 500, 200, criteria)  # 2.5x Aliyun's p95
    assert slow.verdict == NO_GO and [c.name for c in slow.checks if c.passed is False] == ["latency ratio"]
    erring = judge({"matched": 20, "error": 3}, 100, 100, criteria)  # 13 % errors
    assert erring.verdict == NO_GO and [c.name for c in erring.checks if c.passed is False] == ["error rate"]
    disagreeing = judge({"matched": 17, "mismatched": 3}, None, None, criteria)  # 85 %; latency unknown
    assert disagreeing.verdict == NO_GO and disagreeing.checks[-1].passed is None
    assert overall([good, judge({"matched": 1}, 1, 1, criteria)]).verdict == NOT_ENOUGH
    assert overall([good, slow]).verdict == NO_GO and overall([good]).verdict == GO
    assert overall([]).verdict == NOT_ENOUGH


def test_xml_answers_read_back_into_the_json_shape() -> None:
    from proxy.aliyun.serialize import success
    from proxy.shadow.compare import ocr_lines
    from proxy.shadow.xmlbody import parse_xml

    one = {"Data": {"Results": [{"Text": "hello", "Probability": 0.9,
                                 "TextRectangles": {"Left": 1, "Top": 2, "Width": 30, "Height": 10, "Angle": 0}}]}}
    body = success("RecognizeCharacter", "R-1", one, "xml").body
    assert isinstance(body, bytes)
    parsed = parse_xml(body)
    assert parsed is not None and parsed["RequestId"] == "R-1"
    (line,) = ocr_lines("text_rectangles", parsed)  # a list of one reads as one object in XML
    assert line.text == "hello" and line.bbox == (1.0, 2.0, 31.0, 12.0)
    assert parse_xml(b"not xml") is None


def test_the_aws_side_is_named_as_configured() -> None:
    from proxy.config import load_settings
    from proxy.shadow.answered import EMBEDDED, aws_side
    from tests.harness import mapping

    ocr, sr = mapping("RecognizeCharacter"), mapping("MakeSuperResolutionImage")
    kit = load_settings(None, kit_url="https://abc123.execute-api.cn-northwest-1.amazonaws.com.cn",
                        kit_sagemaker_endpoints={"super_resolution": "sr-endpoint"})
    assert aws_side(kit, ocr, embedded=False) == (
        "kit https://abc123.execute-api.cn-northwest-1.amazonaws.com.cn/prod/lite-ocr (route ocr)")
    assert aws_side(kit, sr, embedded=False) == "SageMaker endpoint sr-endpoint (SageMaker Runtime cn-northwest-1)"
    assert aws_side(kit, ocr, embedded=True) == EMBEDDED == "embedded demo models — not the kit"
