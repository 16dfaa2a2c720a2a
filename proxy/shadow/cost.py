"""What the same traffic costs on each side: calls per action from the record store (each record stands for
1/sample_rate calls) times a price table the user edits (YAML), per 1 000 calls and per month at the
observed rate. A price not in the table is "not set": a figure that needs it is not shown, never guessed.

Price table (every price a number, or {price: N, source: URL, date: YYYY-MM-DD}; currency CNY by default):
    currency: CNY
    aliyun:                     # per call, by action; tiers by calls a month (the last tier has no up_to)
      SegmentBody: {tiers: [{up_to: 10000, price: 0}, {price: 0.005}]}
      RecognizeCharacter: 0.002
    aws:
      api_gateway_per_million: 28.5        # REST API requests
      lambda_per_million_requests: 1.36
      lambda_per_gb_second: 0.000113
      sagemaker_instance_hour: {ml.g4dn.xlarge: 9.5}
      sagemaker_instances: {super_resolution: 1}   # instances kept running for a SageMaker route

The kit's facts come from its CDK (tag 1.4.0, src/api-deployment/ai-solution-kit-stack.ts and
features/sagemaker/*.ts): Lambda memory per route, the SageMaker instance type. Durations are the AWS side's
measured latency (the proxy's view: an upper bound of the Lambda's billed time). A tiled super-resolution call
makes several kit calls; it is counted as one here (say so when reading its AWS figure)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .records import Record

HOURS_PER_MONTH = 730.0  # AWS's own month for instance-hour pricing
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
# The kit's deployment (ai-solution-kit-stack.ts, tag 1.4.0): lambdaMemorySize of General OCR (lite-ocr)
# and Human Image Segmentation; super-resolution is SageMaker-only, ml.g4dn.xlarge by default
# (features/sagemaker/super-resolution-sagemaker.ts).
KIT_LAMBDA_MEMORY_MB = {"ocr": 8192, "segmentation": 10240}
KIT_SAGEMAKER_INSTANCE = {"super_resolution": "ml.g4dn.xlarge"}


class PriceError(ValueError):
    """The price table cannot be read; the message names the key."""


@dataclass(frozen=True)
class Price:
    value: float
    source: str = ""
    date: str = ""


def _price(raw: Any, where: str) -> Price | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | dict):
        raise PriceError(f"{where}: a price is a number or {{price, source, date}}")
    if isinstance(raw, dict):
        if raw.get("price") is None:
            return None
        return Price(float(raw["price"]), str(raw.get("source") or ""), str(raw.get("date") or ""))
    return Price(float(raw))


@dataclass
class Prices:
    currency: str = "CNY"
    aliyun: dict[str, list[tuple[float | None, Price]]] = field(default_factory=dict)  # (up_to, price) tiers
    aws: dict[str, Price] = field(default_factory=dict)
    instance_hour: dict[str, Price] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> Prices:
        """The user's table; None: an empty one (every price not set)."""
        if path is None:
            return cls()
        try:
            data = yaml.safe_load(path.read_text("utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PriceError(f"{path}: {exc}") from None
        if not isinstance(data, dict):
            raise PriceError(f"{path}: the price table is a mapping (currency, aliyun, aws)")
        prices = cls(currency=str(data.get("currency") or "CNY"))
        for action, raw in (data.get("aliyun") or {}).items():
            tiered = isinstance(raw, dict) and "tiers" in raw
            tiers: list[Any] = list(raw["tiers"] or []) if tiered else [{"price": raw}]
            parsed = [(t.get("up_to"), _price(t.get("price", t) if isinstance(t, dict) else t, f"aliyun.{action}"))
                      for t in tiers]
            prices.aliyun[action] = [(None if u is None else float(u), p) for u, p in parsed if p is not None]
        aws = data.get("aws") or {}
        for key in ("api_gateway_per_million", "lambda_per_million_requests", "lambda_per_gb_second"):
            found = _price(aws.get(key), f"aws.{key}")
            if found is not None:
                prices.aws[key] = found
        for kind, raw in (aws.get("sagemaker_instance_hour") or {}).items():
            found = _price(raw, f"aws.sagemaker_instance_hour.{kind}")
            if found is not None:
                prices.instance_hour[kind] = found
        prices.instances = {str(k): int(v) for k, v in (aws.get("sagemaker_instances") or {}).items()}
        return prices

    def aliyun_month(self, action: str, calls: float) -> float | None:
        """Aliyun's bill for `calls` a month of `action`, through its tiers; None when not set."""
        tiers = self.aliyun.get(action)
        if not tiers:
            return None
        total, below = 0.0, 0.0
        for up_to, price in tiers:
            top = calls if up_to is None else min(calls, up_to)
            if top > below:
                total += (top - below) * price.value
                below = top
        return total if below >= calls else None  # the table's tiers end before this volume: not set


@dataclass
class ActionCost:
    action: str
    records: int
    calls: float  # records scaled by 1/sample_rate
    per_month: float | None  # calls a month at the observed rate (None: one instant, no rate)
    route: str | None
    seconds: float | None  # mean AWS-side duration
    aliyun_1000: float | None = None
    aliyun_month: float | None = None
    aws_1000: float | None = None
    aws_month: float | None = None
    missing: list[str] = field(default_factory=list)


@dataclass
class CostTable:
    currency: str
    rows: list[ActionCost]
    period_seconds: float
    total: ActionCost


def _aws_seconds(r: Record) -> float | None:
    side = "primary" if r.mode == "reverse-shadow" else "secondary"
    value = r.latency_ms.get(side)
    return None if value is None else value / 1000.0


def _time(r: Record) -> datetime:
    return datetime.fromisoformat(r.time.replace("Z", "+00:00"))


def compute(records: list[Record], prices: Prices, routes: dict[str, str | None]) -> CostTable:
    """Per action and in total; `routes` maps an action to its kit route (KitRoutes field name)."""
    times = [_time(r) for r in records if r.time]
    period = (max(times) - min(times)).total_seconds() if len(times) > 1 else 0.0
    by_action: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_action[r.action].append(r)
    rows = [_row(a, rs, prices, routes.get(a), period) for a, rs in sorted(by_action.items())]
    total = ActionCost("total", sum(r.records for r in rows), sum(r.calls for r in rows),
                       sum(r.per_month or 0.0 for r in rows) if period and rows else None, None, None)
    total.missing = sorted({m for r in rows for m in r.missing})
    for side in ("aliyun", "aws"):
        months = [getattr(r, f"{side}_month") for r in rows]
        if rows and None not in months and total.per_month:
            setattr(total, f"{side}_month", sum(m for m in months if m is not None))
            setattr(total, f"{side}_1000", sum(m for m in months if m is not None) / total.per_month * 1000)
    return CostTable(prices.currency, rows, period, total)


def _row(action: str, records: list[Record], prices: Prices, route: str | None, period: float) -> ActionCost:
    calls = sum(1.0 / (float(r.details.get("sample_rate") or 1.0) or 1.0) for r in records)
    durations = [s for r in records if (s := _aws_seconds(r)) is not None]
    per_month = calls / period * SECONDS_PER_MONTH if period else None
    row = ActionCost(action, len(records), calls, per_month, route,
                     sum(durations) / len(durations) if durations else None)
    volume = per_month or 1000.0  # no rate: price the first 1 000 calls
    aliyun = prices.aliyun_month(action, volume)
    if aliyun is None:
        row.missing.append(f"aliyun.{action}")
    else:
        row.aliyun_1000 = aliyun / volume * 1000
        row.aliyun_month = aliyun if per_month else None
    per_call, fixed = _aws_parts(prices, route, row.seconds, row.missing)
    if per_call is not None and fixed is not None and (per_month or not fixed):
        row.aws_month = (per_call * per_month + fixed) if per_month else None
        row.aws_1000 = per_call * 1000 + (fixed / per_month * 1000 if per_month else 0.0)
    return row


def _aws_parts(prices: Prices, route: str | None, seconds: float | None,
               missing: list[str]) -> tuple[float | None, float | None]:
    """(cost per call, fixed cost a month) on AWS for `route`; None where a needed price or fact is missing."""
    gateway = prices.aws.get("api_gateway_per_million")
    if gateway is None:
        missing.append("aws.api_gateway_per_million")
    per_call = None if gateway is None else gateway.value / 1e6
    if route in KIT_SAGEMAKER_INSTANCE:
        kind = KIT_SAGEMAKER_INSTANCE[route]
        hourly, count = prices.instance_hour.get(kind), prices.instances.get(route)
        if hourly is None:
            missing.append(f"aws.sagemaker_instance_hour.{kind}")
        if count is None:
            missing.append(f"aws.sagemaker_instances.{route}")
        fixed = None if hourly is None or count is None else hourly.value * count * HOURS_PER_MONTH
        return per_call, fixed
    if route not in KIT_LAMBDA_MEMORY_MB:
        missing.append(f"kit route of this action ({route or 'none'})")
        return None, None
    requests, gb_s = prices.aws.get("lambda_per_million_requests"), prices.aws.get("lambda_per_gb_second")
    for key, found in (("lambda_per_million_requests", requests), ("lambda_per_gb_second", gb_s)):
        if found is None:
            missing.append(f"aws.{key}")
    if seconds is None:
        missing.append("measured AWS duration")
    if per_call is None or requests is None or gb_s is None or seconds is None:
        return None, 0.0
    return per_call + requests.value / 1e6 + gb_s.value * KIT_LAMBDA_MEMORY_MB[route] / 1024 * seconds, 0.0


def kit_routes() -> dict[str, str | None]:
    """Action -> the kit route its mapping names (the shipped mappings, as the proxy loads them)."""
    from ..mappings import default_dir, load

    return {spec.action: spec.kit_route for spec in load(default_dir(), None).specs.values()}


def cost_table(records: list[Record], prices_file: Path | None) -> CostTable:
    return compute(records, Prices.load(prices_file), kit_routes())


COLUMNS = ("action", "records", "calls (scaled)", "calls/month", "Aliyun per 1000", "Aliyun per month",
           "AWS per 1000", "AWS per month")
NOT_SET = "not set"


def _money(value: float | None) -> str:
    if value is None:
        return NOT_SET
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4f}"


def cells(row: ActionCost) -> list[str]:
    return [row.action, str(row.records), f"{row.calls:,.0f}",
            "–" if row.per_month is None else f"{row.per_month:,.0f}",
            _money(row.aliyun_1000), _money(row.aliyun_month), _money(row.aws_1000), _money(row.aws_month)]


def text(table: CostTable) -> str:
    """The table as `vision-proxy cost` prints it, then what is not set, per action."""
    rows = [list(COLUMNS)] + [cells(r) for r in table.rows] + [cells(table.total)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = [f"cost in {table.currency} over {table.period_seconds / 3600:.2f} h of records "
             f"(per month: {SECONDS_PER_MONTH / 86400:.1f} days at the observed rate)"]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
              for r in rows]
    for r in table.rows:
        if r.missing:
            lines.append(f"{NOT_SET} for {r.action}: {', '.join(r.missing)}")
    return "\n".join(lines)


def html(table: CostTable) -> str:
    """The same figures as `text`, for the report."""
    from html import escape

    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f'<td class="{"unset" if c == NOT_SET else ""}">{escape(c)}</td>'
                                    for c in cells(r)) + "</tr>" for r in [*table.rows, table.total])
    notes = "".join(f"<li>{escape(r.action)}: {escape(', '.join(r.missing))}</li>" for r in table.rows if r.missing)
    return (f'<h2>Cost</h2><p class="note">In {escape(table.currency)}, from the price table given '
            f"(vision-proxy report --prices FILE); calls scaled by each record's sample rate; per month at the "
            f"rate observed over {table.period_seconds / 3600:.2f} h. A price not in the table is "
            f'"{NOT_SET}", never guessed.</p><table class="cost"><thead><tr>{head}</tr></thead><tbody>{body}'
            f"</tbody></table>" + (f"<p>{NOT_SET}:</p><ul>{notes}</ul>" if notes else ""))
