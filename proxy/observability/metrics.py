"""Prometheus metrics (prometheus-client's default registry, with its process and Python collectors).

Label values come from closed sets only: mapped actions and versions, Aliyun error codes the proxy
itself emits, kit routes. Caller input never becomes a label (`unknown` stands in for anything else).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    pass

PREFIX = "vision_proxy"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
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
IMAGE_FETCH_FAILURES = Counter(f"{PREFIX}_image_fetch_failures", "Caller images refused or not fetched",
                               ["reason"])

KIT_CALLS = Counter(f"{PREFIX}_kit_calls", "Calls to the AI Solution Kit", ["route", "status"])
KIT_SECONDS = Histogram(f"{PREFIX}_kit_call_duration_seconds", "AI Solution Kit call time", ["route"],
                        buckets=LATENCY_BUCKETS)
KIT_RETRIES = Counter(f"{PREFIX}_kit_retries", "Kit calls retried after a failed connection", ["route"])
KIT_TIMEOUTS = Counter(f"{PREFIX}_kit_timeouts", "Kit calls that timed out", ["route"])
CREDENTIAL_FAILURES = Counter(f"{PREFIX}_credential_refresh_failures", "AWS credential resolution failures")
NONCE_STORE_ERRORS = Counter(f"{PREFIX}_nonce_store_errors", "Nonce store (Redis) failures", ["outcome"])

RESULTS_STORED = Counter(f"{PREFIX}_results_stored", "Result images stored", ["store"])
RESULTS_CLEANED = Counter(f"{PREFIX}_results_cleaned", "Expired results and records deleted")
DECODE_BYTES = Gauge(f"{PREFIX}_decode_budget_bytes_in_use", "Bytes of decoded pixels reserved (proxy/budget.py)")
DECODE_REFUSALS = Counter(f"{PREFIX}_decode_budget_refusals", "Decodes refused by the pixel budget", ["reason"])
JOBS_QUEUED = Gauge(f"{PREFIX}_jobs_queued", "Async jobs waiting for a worker")
JOBS_RUNNING = Gauge(f"{PREFIX}_jobs_running", "Async jobs running")
JOBS_FINISHED = Counter(f"{PREFIX}_jobs_finished", "Async jobs finished", ["action", "status"])

SHADOW_COMPARISONS = Counter(f"{PREFIX}_shadow_comparisons", "Shadow comparisons of Aliyun and AWS answers",
                             ["action", "outcome"])
SHADOW_SCORES = Histogram(f"{PREFIX}_shadow_score", "Agreement metrics of shadow comparisons", ["action", "metric"],
                          buckets=(0.01, 0.05, 0.1, 0.2, 0.5, 0.8, 0.85, 0.9, 0.95, 0.99, 1, 10, 20, 25, 30, 40, 100))
SHADOW_DROPS = Counter(f"{PREFIX}_shadow_drops", "Calls not compared, by reason", ["reason"])
SHADOW_SECONDS = Histogram(f"{PREFIX}_shadow_side_duration_seconds", "Answer time of each side under shadow",
                           ["action", "side"], buckets=LATENCY_BUCKETS)

SIGNATURE_CODES = frozenset({
    "MissingAccessKeyId", "MissingSignature", "MissingSignatureNonce", "MissingTimestamp", "IncompleteSignature",
    "SignatureDoesNotMatch", "SignatureNonceUsed", "InvalidTimeStamp.Expired", "InvalidTimeStamp.Format",
    "InvalidAccessKeyId.NotFound", "InvalidSecurityToken.Mismatch",
})
