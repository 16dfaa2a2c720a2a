"""`vision-proxy cost` and the report's cost section: the same figures from one record store of mixed traffic
and a test price table; each record stands for 1/sample_rate calls; a price not in the table is not set."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from proxy.shadow.compare import Outcome
from proxy.shadow.records import Record, RecordStore
from proxy.shadow.report import write_report
from tests.harness import clean_env

PRICES = """
currency: CNY
aliyun:
  SegmentBody: {tiers: [{up_to: 1000, price: 0}, {price: 0.01, source: "test", date: "2026-12-01"}]}
  RecognizeCharacter: 0.002
aws:
  api_gateway_per_million: 30
  lambda_per_million_requests: 2
  lambda_per_gb_second: 0.0001
  sagemaker_instance_hour: {ml.g4dn.xlarge: 10}
  sagemaker_instances: {super_resolution: 1}
"""
# By hand from PRICES, one hour of records, 730 h a month, the kit's Lambda memory (10240 MB segmentation,
# 8192 MB OCR) and the measured AWS durations (0.5 s, 0.2 s):
EXPECTED = [
    # SegmentBody: 10 records at 0.1 = 100 calls = 73,000 a month; Aliyun (72,000 x 0.01); AWS per call
    # 30e-6 + 2e-6 + 0.0001 x 10 GB x 0.5 s = 0.000532
    ["MakeSuperResolutionImage", "2", "2", "1,460", "not set", "not set", "5,000.03", "7,300.04"],
    ["RecognizeCharacter", "4", "8", "5,840", "2.00", "11.68", "0.1920", "1.12"],
    ["SegmentBody", "10", "100", "73,000", "9.86", "720.00", "0.5320", "38.84"],
    ["total", "16", "110", "80,300", "not set", "not set", "91.41", "7,340.00"],
]


def _store(root: Path) -> Path:
    store = RecordStore(root)
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    plan = [("SegmentBody", "imageseg", "shadow", 0.1, 10, (300.0, 500.0)),
            ("RecognizeCharacter", "ocr", "shadow", 0.5, 4, (100.0, 200.0)),
            ("MakeSuperResolutionImage", "imageenhan", "reverse-shadow", 1.0, 2, (2000.0, 900.0))]
    made = [(a, p, m, rate, lat) for a, p, m, rate, n, lat in plan for _ in range(n)]
    for i, (action, product, mode, rate, latency) in enumerate(made):
        record = Record.build(action=action, product=product, mode=mode, outcome=Outcome("matched"),
                              primary=(200, {}), secondary=(200, {}), latency_ms=latency,
                              details={"sample_rate": rate})
        record.time = (start + timedelta(seconds=3600 * i / (len(made) - 1))).isoformat().replace("+00:00", "Z")
        store.add(record)
    return root


def _cost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proxy", "cost", *args], env=clean_env(),
                          capture_output=True, text=True, timeout=120)


def test_cost_command_and_report_show_the_same_figures(tmp_path: Path) -> None:
    store = _store(tmp_path / "shadow")
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES)
    proc = _cost("--store", str(store), "--prices", str(prices))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    printed = [re.split(r"\s{2,}", line.strip()) for line in lines[2:6]]
    assert printed == EXPECTED, proc.stdout
    assert "not set for MakeSuperResolutionImage: aliyun.MakeSuperResolutionImage" in proc.stdout

    page = write_report(store, tmp_path / "report.html", prices=prices).read_text()
    section = page[page.index("<h2>Cost</h2>"):]
    table = section[:section.index("</table>")]
    shown = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]]
    assert shown == EXPECTED
    assert table.count('class="unset"') == 4


def test_without_a_price_table_every_price_is_not_set(tmp_path: Path) -> None:
    proc = _cost("--store", str(_store(tmp_path / "shadow")))
    assert proc.returncode == 0, proc.stderr
    rows = [re.split(r"\s{2,}", line.strip()) for line in proc.stdout.splitlines()[2:6]]
    assert [r[4:] for r in rows] == [["not set"] * 4] * 4
    assert [r[:4] for r in rows] == [e[:4] for e in EXPECTED]  # the counts need no price
    assert "aws.api_gateway_per_million" in proc.stdout and "aws.lambda_per_gb_second" in proc.stdout


@pytest.mark.parametrize(("table", "says"), [("aws: {api_gateway_per_million: cheap}", "aws.api_gateway_per_million"),
                                             ("[1, 2]", "is a mapping")])
def test_a_bad_price_table_is_refused_naming_the_key(tmp_path: Path, table: str, says: str) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(table)
    proc = _cost("--store", str(_store(tmp_path / "shadow")), "--prices", str(prices))
    assert proc.returncode == 2 and says in proc.stderr
