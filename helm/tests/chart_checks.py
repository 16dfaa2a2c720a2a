"""Checks on the rendered chart that helm, kubernetes-validate and checkov do not make.

Run by scripts/checks/chart with the kubernetes-validate venv's python (PyYAML and jsonschema come with it).

  split RENDERED OUTDIR            core objects -> OUTDIR/core.yaml, CRD objects -> OUTDIR/crds.yaml
  crds CRDS OUTDIR                 ServiceMonitor against a strict schema; PrometheusRule groups -> OUTDIR/rules.yaml
  dashboard JSON OUTDIR            dashboard structure; every query -> OUTDIR/dashboard-rules.yaml (for promtool)
  metric-names FILE...             every vision_proxy_* name used is one the proxy exports
  mappings-values MAPPINGS_DIR OUT  a values file with every mapping file of the repo
  mappings-rendered RENDERED MAPPINGS_DIR   the ConfigMap and the volume give back exactly those files
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import jsonschema
import yaml

CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}

# The proxy's metrics contract (without the _total/_bucket/_sum/_count suffixes Prometheus adds).
METRICS = {
    "vision_proxy_requests", "vision_proxy_request_duration_seconds", "vision_proxy_requests_in_flight",
    "vision_proxy_request_bytes", "vision_proxy_response_bytes", "vision_proxy_kit_calls",
    "vision_proxy_kit_call_duration_seconds", "vision_proxy_kit_timeouts", "vision_proxy_kit_retries",
    "vision_proxy_credential_refresh_failures", "vision_proxy_signature_rejections",
    "vision_proxy_image_fetch_failures", "vision_proxy_jobs_queued", "vision_proxy_jobs_running",
    "vision_proxy_jobs_finished", "vision_proxy_results_stored", "vision_proxy_results_cleaned",
    "vision_proxy_shadow_comparisons", "vision_proxy_shadow_drops", "vision_proxy_shadow_score",
    "vision_proxy_shadow_side_duration_seconds", "vision_proxy_nonce_store_errors",
    "vision_proxy_nonce_store_fill_ratio", "vision_proxy_client_timeouts", "vision_proxy_caller_throttled",
    "vision_proxy_shadow_noise", "vision_proxy_coverage_requests", "vision_proxy_coverage_parameters",
}
SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")

# A strict subset of the ServiceMonitor CRD (monitoring.coreos.com/v1): the fields a chart may set.
# Written from the prometheus-operator API reference; additionalProperties false catches typos.
_RELABEL = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string"}}, "separator": {"type": "string"},
        "targetLabel": {"type": "string"}, "regex": {"type": "string"}, "modulus": {"type": "integer"},
        "replacement": {"type": "string"},
        "action": {"type": "string", "pattern": "(?i)^(replace|keep|drop|hashmod|labelmap|labeldrop|labelkeep|"
                                                "lowercase|uppercase|keepequal|dropequal)$"},
    },
}
_DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                                          r"(([0-9]+)s)?(([0-9]+)ms)?)$"}
_SELECTOR = {
    "type": "object", "additionalProperties": False,
    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                   "matchExpressions": {"type": "array", "items": {"type": "object"}}},
}
SERVICE_MONITOR = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object", "required": ["selector", "endpoints"], "additionalProperties": False,
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": {"type": "object", "additionalProperties": False, "properties": {
                    "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}},
                "jobLabel": {"type": "string"},
                "targetLabels": {"type": "array", "items": {"type": "string"}},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "sampleLimit": {"type": "integer"}, "targetLimit": {"type": "integer"},
                "labelLimit": {"type": "integer"}, "labelNameLengthLimit": {"type": "integer"},
                "labelValueLengthLimit": {"type": "integer"}, "keepDroppedTargets": {"type": "integer"},
                "attachMetadata": {"type": "object"}, "scrapeClass": {"type": "string"},
                "scrapeProtocols": {"type": "array", "items": {"type": "string"}},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "port": {"type": "string"}, "targetPort": {"type": ["string", "integer"]},
                        "path": {"type": "string", "pattern": "^/"},
                        "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                        "params": {"type": "object"}, "interval": _DURATION, "scrapeTimeout": _DURATION,
                        "honorLabels": {"type": "boolean"}, "honorTimestamps": {"type": "boolean"},
                        "trackTimestampsStaleness": {"type": "boolean"},
                        "relabelings": {"type": "array", "items": _RELABEL},
                        "metricRelabelings": {"type": "array", "items": _RELABEL},
                        "tlsConfig": {"type": "object"}, "authorization": {"type": "object"},
                        "basicAuth": {"type": "object"}, "oauth2": {"type": "object"},
                        "bearerTokenSecret": {"type": "object"}, "proxyUrl": {"type": "string"},
                        "followRedirects": {"type": "boolean"}, "enableHttp2": {"type": "boolean"},
                        "filterRunning": {"type": "boolean"},
                    },
                }},
            },
        },
    },
}
PROMETHEUS_RULE = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"},
        "metadata": {"type": "object", "required": ["name"]},
        # The groups themselves are checked by `promtool check rules`, which refuses unknown fields.
        "spec": {"type": "object", "required": ["groups"], "additionalProperties": False,
                 "properties": {"groups": {"type": "array", "minItems": 1}}},
    },
}


def fail(msg: str) -> NoReturn:
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def load_all(path: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def split(rendered: str, outdir: str) -> None:
    docs = load_all(rendered)
    core = [d for d in docs if (d.get("apiVersion"), d.get("kind")) not in CRD_KINDS]
    crds = [d for d in docs if (d.get("apiVersion"), d.get("kind")) in CRD_KINDS]
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "core.yaml").write_text(yaml.safe_dump_all(core, sort_keys=False))
    (out / "crds.yaml").write_text(yaml.safe_dump_all(crds, sort_keys=False))
    kinds = ", ".join(sorted(d["kind"] for d in docs))
    print(f"  {Path(rendered).name}: {len(docs)} objects ({kinds})")


def crds(path: str, outdir: str) -> None:
    docs = load_all(path)
    groups: list[Any] = []
    for doc in docs:
        schema = SERVICE_MONITOR if doc["kind"] == "ServiceMonitor" else PROMETHEUS_RULE
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
        for err in errors:
            where = "/".join(str(p) for p in err.path) or "(root)"
            print(f"FAIL: {doc['kind']}/{doc['metadata']['name']}: {where}: {err.message}", file=sys.stderr)
        if errors:
            sys.exit(1)
        print(f"  {doc['kind']}/{doc['metadata']['name']}: passed the chart's strict schema")
        if doc["kind"] == "PrometheusRule":
            groups += doc["spec"]["groups"]
    if not groups:
        fail("no PrometheusRule in the full render")
    Path(outdir, "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))


GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def dashboard(path: str, outdir: str) -> None:
    dash = json.loads(Path(path).read_text())
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in dash:
            fail(f"dashboard: no {key}")
    names = {v["name"] for v in dash["templating"]["list"]}
    if "datasource" not in names:
        fail("dashboard: no datasource variable (the queries must not hard-code a data source)")
    ids: set[int] = set()
    rules = []
    for panel in dash["panels"]:
        if panel["id"] in ids:
            fail(f"dashboard: panel id {panel['id']} used twice")
        ids.add(panel["id"])
        if "gridPos" not in panel:
            fail(f"dashboard: panel {panel['title']!r} has no gridPos")
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("uid") != "${datasource}":
                fail(f"dashboard: panel {panel['title']!r} does not use the ${{datasource}} variable")
            expr = target["expr"]
            for var in re.findall(r"\$\{?(\w+)", expr):
                if var not in names and f"${var}" not in GRAFANA_VARS:
                    fail(f"dashboard: panel {panel['title']!r} uses an undefined variable ${var}")
            for grafana_var, value in GRAFANA_VARS.items():
                expr = expr.replace(grafana_var, value)
            expr = re.sub(r"\$\{?\w+\}?", ".*", expr)  # template variables sit in =~ matchers
            rules.append({"record": f"dashboard:panel_{panel['id']}:{target['refId']}", "expr": expr})
    boxes = [(p["title"], p["gridPos"]) for p in dash["panels"]]
    for i, (title_a, a) in enumerate(boxes):
        if a["x"] + a["w"] > 24:
            fail(f"dashboard: panel {title_a!r} is wider than the 24-column grid")
        for title_b, b in boxes[i + 1:]:
            if (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                    and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]):
                fail(f"dashboard: panels {title_a!r} and {title_b!r} overlap")
    Path(outdir, "dashboard-rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, sort_keys=False))
    print(f"  dashboard {dash['uid']!r}: {len(dash['panels'])} panels, {len(rules)} queries")


def metric_names(*paths: str) -> None:
    used: set[str] = set()
    for path in paths:
        used |= set(re.findall(r"\bvision_proxy_[a-z_]+", Path(path).read_text()))
    unknown = sorted(n for n in used if re.sub("(" + "|".join(SUFFIXES) + ")$", "", n) not in METRICS)
    if unknown:
        fail(f"queries use metrics the proxy does not export: {', '.join(unknown)}")
    print(f"  {len(used)} vision_proxy_* series names used, all in the proxy's metrics contract")


def mappings_values(mappings_dir: str, out: str) -> None:
    files = {str(p.relative_to(mappings_dir)): p.read_text(encoding="utf-8")
             for p in sorted(Path(mappings_dir).glob("*/*.yaml"))}
    Path(out).write_text(yaml.safe_dump({"mappings": {"files": files}}, sort_keys=False, allow_unicode=True))
    print(f"  {len(files)} mapping files from {mappings_dir}/ as values")


def mappings_rendered(rendered: str, mappings_dir: str) -> None:
    docs = load_all(rendered)
    cm = next((d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-mappings")), None)
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    if cm is None:
        fail("no mappings ConfigMap rendered")
    volume = next(v for v in deploy["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    items = {i["key"]: i["path"] for s in volume["projected"]["sources"] if s.get("configMap", {}).get("name") ==
             cm["metadata"]["name"] for i in s["configMap"]["items"]}
    got = {items[key]: text.rstrip() for key, text in cm["data"].items()}
    want = {f"mappings/{p.relative_to(mappings_dir)}": p.read_text(encoding="utf-8").rstrip()
            for p in Path(mappings_dir).glob("*/*.yaml")}
    if got != want:
        diff = sorted(set(got.items()) ^ set(want.items()))
        fail(f"mapping files do not round-trip through the chart: {[k for k, _ in diff]}")
    env = {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    if env.get("VISION_PROXY_MAPPINGS_DIR") != "/etc/vision-proxy/mappings":
        fail("VISION_PROXY_MAPPINGS_DIR does not point at the mounted mappings")
    print(f"  {len(got)} mapping files round-trip: ConfigMap -> /etc/vision-proxy/mappings/<product>/<Action>.yaml")


if __name__ == "__main__":
    commands: dict[str, Callable[..., None]] = {
        "split": split, "crds": crds, "dashboard": dashboard, "metric-names": metric_names,
        "mappings-values": mappings_values, "mappings-rendered": mappings_rendered,
    }
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        fail(f"usage: {sys.argv[0]} {{{'|'.join(commands)}}} ARGS...")
    commands[sys.argv[1]](*sys.argv[2:])
