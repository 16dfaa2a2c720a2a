"""The coverage scan over mixed traffic: real SDK calls (one with a parameter the kit ignores), an action
no mapping knows, and a refused signature; the counts land in Prometheus with closed label sets, in the
coverage files at shutdown, and in `vision-proxy coverage`'s table (a real process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

from alibabacloud_ocr20191230 import models as ocr_models
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from proxy.coverage import scan
from tests import raw, sdk
from tests.conftest import CALLER_KEYS
from tests.harness import ProxyServer, clean_env


def metric(name: str, **labels: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(generate_latest(REGISTRY).decode())
               for s in f.samples if s.name == name and labels.items() <= s.labels.items())


def test_coverage_of_mixed_traffic(images, tmp_path: Path) -> None:
    ignored_before = metric("vision_proxy_coverage_parameters_total", action="RecognizeCharacter",
                            parameter="ImageType", effect="ignored")
    unknown_before = metric("vision_proxy_coverage_requests_total", action="other", result="unknown")
    proxy = ProxyServer(caller_keys=CALLER_KEYS, fetch_allow="127.0.0.1/32", data_dir=tmp_path)
    try:
        client = sdk.ocr(proxy.endpoint)
        for _ in range(2):
            client.recognize_character(ocr_models.RecognizeCharacterRequest(
                image_url=f"{images.url}/text.png", min_height=10, output_probability=True))
        query = {"ImageURL": f"{images.url}/text.png", "MinHeight": "10", "OutputProbability": "true",
                 "ImageType": "0"}
        headers = raw.v3_headers("RecognizeCharacter", "2019-12-30", host=proxy.endpoint, query=query)
        assert raw.request(proxy.port, target="/?" + urlencode(query), headers=headers)[0] == 200
        headers = raw.v3_headers("RecognizeSomethingNew", "2019-12-30", host=proxy.endpoint)
        assert raw.request(proxy.port, headers=headers)[0] == 404
        bad = raw.v3_headers("RecognizeCharacter", "2019-12-30", host=proxy.endpoint, query=query, secret="wrong")
        assert raw.request(proxy.port, target="/?" + urlencode(query), headers=bad)[0] == 400
    finally:
        proxy.close()  # flushes the counts
    assert metric("vision_proxy_coverage_parameters_total", action="RecognizeCharacter", parameter="ImageType",
                  effect="ignored") - ignored_before == 2  # the served call and the refused one
    assert metric("vision_proxy_coverage_requests_total", action="other", result="unknown") - unknown_before == 1
    families = text_string_to_metric_families(generate_latest(REGISTRY).decode())
    actions = {s.labels["action"] for f in families for s in f.samples if s.name.startswith("vision_proxy_coverage")}
    assert "RecognizeSomethingNew" not in actions  # closed label sets: an unknown name is "other"

    found = {(r.action, r.version): r for r in scan(tmp_path / "coverage").rows}
    character = found[("RecognizeCharacter", "2019-12-30")]
    assert character.results == {"served": 3, "refused": 1} and character.product == "ocr"
    assert character.params["ImageType"] == ("ignored", 2) and character.params["ImageURL"] == ("honoured", 4)
    assert found[("RecognizeSomethingNew", "2019-12-30")].results == {"unknown": 1}

    proc = subprocess.run([sys.executable, "-m", "proxy", "coverage", "--store", str(tmp_path / "coverage")],
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    row = next(ln for ln in lines if ln.startswith("RecognizeCharacter "))
    assert "ImageType ×2 (ignored: no effect)" in row and " 3 " in row
    assert any(ln.startswith("RecognizeSomethingNew") and "(not mapped)" in ln for ln in lines), lines

    from proxy.shadow.report import write_report

    (tmp_path / "shadow").mkdir(exist_ok=True)  # the report finds the coverage beside the record store
    html = write_report(tmp_path / "shadow", tmp_path / "report.html").read_text()
    assert 'id="coverage"' in html and 'data-coverage="RecognizeSomethingNew"' in html
    assert "ImageType ×2 (ignored: no effect)" in html
