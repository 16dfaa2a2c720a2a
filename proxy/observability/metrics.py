"""Prometheus metrics (prometheus-client's default registry, with its process and Python collectors).

Label values come from closed sets only: mapped actions and versions, Aliyun error codes the proxy
itself emits, kit routes. Caller input never becomes a label (`unknown` stands in for anything else).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "vision_proxy"
# Dense where decisions are made: every second from 2 to 10 s, around the chart's p99 alert (8 s), the kit's
# caller deadline (9 s, kit_timeout_seconds) and the SDKs' read timeout (10 s); a 5 -> 10 s jump made a p99
# of 6 s and one of 9.9 s look alike (tests/test_verdicts.py holds the buckets to the alert threshold).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 30, 60)
SIZE_BUCKETS = (1e3, 1e4, 1e5, 5e5, 1e6, 3e6, 1e7, 3e7)

REQUESTS = Counter(f"{PREFIX}_requests", "Aliyun API requests answered",
                   ["product", "action", "version", "signature", "code"])
REQUEST_SECONDS = Histogram(f"{PREFIX}_request_duration_seconds", "Time to answer an Aliyun request",
                            ["product", "action"], buckets=LATENCY_BUCKETS)
IN_FLIGHT = Gauge(f"{PREFIX}_requests_in_flight", "Aliyun requests being answered")
REQUEST_BYTES = Histogram(f"{PREFIX}_request_bytes", "Inbound request body size", ["product", "action"],
                          buckets=SIZE_BUCKETS)
RESPONSE_BYTES = Histogram(f"{PREFIX}_response_bytes", "Response body size", ["product", "action"],
                           buckets=SIZE_BUCKETS)
SIGNATURE_REJECTIONS = Counter(f"{PREFIX}_signature_rejections", "Callers refused by authentication",
                               ["reason"])
CLIENT_TIMEOUTS = Counter(f"{PREFIX}_client_timeouts", "Connections closed because the client was too slow or idle",
                          ["phase"])  # header, body, keepalive
CALLER_THROTTLED = Counter(f"{PREFIX}_caller_throttled", "Requests refused by a per-caller limit (Throttling.User)",
                           ["limit"])  # qps, concurrency
IMAGE_FETCH_FAILURES = Counter(f"{PREFIX}_image_fetch_failures", "Caller images refused or not fetched",
                               ["reason"])

KIT_CALLS = Counter(f"{PREFIX}_kit_calls", "Calls to the AI Solution Kit", ["route", "status"])
KIT_SECONDS = Histogram(f"{PREFIX}_kit_call_duration_seconds", "AI Solution Kit call time", ["route"],
                        buckets=LATENCY_BUCKETS)
KIT_RETRIES = Counter(f"{PREFIX}_kit_retries", "Kit calls retried after a failed connection", ["route"])
KIT_KEEP_WARM = Counter(f"{PREFIX}_kit_keep_warm_calls", "Keep-warm calls to the kit, by outcome (ok or an "
                        "Aliyun error code)", ["route", "outcome"])
KIT_TIMEOUTS = Counter(f"{PREFIX}_kit_timeouts", "Kit calls that timed out", ["route"])
KIT_OVERSIZED = Counter(f"{PREFIX}_kit_oversized_answers", "Kit answers over the answer limit, not read", ["route"])
CREDENTIAL_FAILURES = Counter(f"{PREFIX}_credential_refresh_failures", "AWS credential resolution failures")
NONCE_STORE_ERRORS = Counter(f"{PREFIX}_nonce_store_errors",
                             "Nonce store (Redis) failures, by stage: pool (no free connection in time: this "
                             "process), connect or command (Redis or the network)", ["outcome", "stage"])
NONCE_POOL_WAIT = Histogram(f"{PREFIX}_nonce_store_pool_wait_seconds",
                            "Time a request waited for a free Redis connection",
                            buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
NONCE_STORE_FILL = Gauge(f"{PREFIX}_nonce_store_fill_ratio",
                         "In-memory replay store: nonces held / nonce_cache_size (at 1 every request is refused)")

RESULTS_STORED = Counter(f"{PREFIX}_results_stored", "Result images stored", ["store"])
RESULTS_CLEANED = Counter(f"{PREFIX}_results_cleaned", "Expired results and records deleted")
DECODE_BYTES = Gauge(f"{PREFIX}_decode_budget_bytes_in_use", "Bytes of decoded pixels reserved (proxy/pixels.py)")
DECODE_REFUSALS = Counter(f"{PREFIX}_decode_budget_refusals", "Decodes refused by the pixel budget", ["reason"])
JOBS_QUEUED = Gauge(f"{PREFIX}_jobs_queued", "Async jobs waiting for a worker")
JOBS_RUNNING = Gauge(f"{PREFIX}_jobs_running", "Async jobs running")
JOBS_FINISHED = Counter(f"{PREFIX}_jobs_finished", "Async jobs finished", ["action", "status"])

SHADOW_COMPARISONS = Counter(f"{PREFIX}_shadow_comparisons", "Shadow comparisons of Aliyun and AWS answers",
                             ["action", "outcome"])
SHADOW_SCORES = Histogram(f"{PREFIX}_shadow_score", "Agreement metrics of shadow comparisons", ["action", "metric"],
                          buckets=(0.01, 0.05, 0.1, 0.2, 0.5, 0.8, 0.85, 0.9, 0.95, 0.99, 1, 10, 20, 25, 30, 40, 100))
COVERAGE_REQUESTS = Counter(f"{PREFIX}_coverage_requests", "Aliyun calls seen, by what became of them "
                            "(served, aliyun, refused, unknown); unmapped names as other",
                            ["action", "version", "result"])
COVERAGE_PARAMETERS = Counter(f"{PREFIX}_coverage_parameters", "Parameters callers sent, by effect (honoured, "
                              "ignored: accepted without effect, unknown)", ["action", "parameter", "effect"])
SHADOW_NOISE = Counter(f"{PREFIX}_shadow_noise", "Noise re-asks of the primary: measured, or error (not noise)",
                       ["outcome"])
SHADOW_DROPS = Counter(f"{PREFIX}_shadow_drops", "Calls not compared, by reason", ["reason"])
SHADOW_SECONDS = Histogram(f"{PREFIX}_shadow_side_duration_seconds", "Answer time of each side under shadow",
                           ["action", "side"], buckets=LATENCY_BUCKETS)


_children: dict[tuple[Any, ...], Any] = {}


def child(metric: Counter | Histogram, *labels: str) -> Any:
    """`metric.labels(*labels)`, looked up once per label set: `.labels()` costs microseconds a call, and
    the observers call it on every request's path. Label values come from closed sets, so this stays small."""
    key = (id(metric), *labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found
