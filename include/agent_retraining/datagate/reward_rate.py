"""The reward-rate rule: each acting policy's reward rate on a day against that policy's own past.

A broken reward join logs every reward as 0 (or a bad dedup doubles them):
every row is valid on its own, only the day's rate shows it. But a rate also
moves when the agent acts better, so a day is never compared with "the week
before" as a whole. The events of each `model_version` (null: the logging
policy) are compared with

- that version's own events on the earlier usable days of the window, by
  Fisher's exact test of the two proportions (mid-p, two-sided); or,
- for a version with no earlier day (just deployed, a canary's first day), the
  policy value its evaluation estimated when it was deployed (the manifest
  keeps it), by a normal test whose variance adds the estimate's own (from its
  95% interval) to the day's binomial variance under the estimate.

A change is refused only when it is both significant (p below
`validation.reward_rate.alpha`) and larger than the smallest change that
matters (`max_change`, relative to the reference rate or absolute): a day of
1,400 events at a 0.4% rate that drops to 0 is as plainly refused as 40% -> 0%,
while noise on a small day and a rise the deployed model's evaluation predicted
are not. The estimate is of the model's greedy policy; an agent that explores
earns a little less, which the band absorbs.

A version with no earlier day and no estimate (an aborted canary's day judged
later, a version the manifest never named) cannot be judged: that is recorded
as a warning, never a silent pass and never a refusal on no evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa

from agent_retraining.datagate.rules import check, tier_of
from agent_retraining.spec import AgentSpec

LOGGING_POLICY = "the logging policy"  # how events with no model_version are named in messages
Z_95 = 1.959964


@dataclass(frozen=True)
class Estimate:
    """What a deployed version's evaluation said its policy would earn: the value and its 95% interval."""

    value: float
    ci: tuple[float, float] | None


def by_version(table: pa.Table) -> list[dict]:
    """Rows and reward sum of each acting version on one day (version None: the logging policy)."""
    grouped = table.group_by("model_version").aggregate([("reward", "sum"), ("reward", "count")])
    return sorted(
        ({"version": version, "rows": int(rows), "reward_sum": float(total or 0.0)}
         for version, total, rows in zip(grouped.column("model_version").to_pylist(),
                                         grouped.column("reward_sum").to_pylist(),
                                         grouped.column("reward_count").to_pylist(), strict=True)),
        key=lambda entry: (entry["version"] is not None, entry["version"] or ""),
    )  # fmt: skip


def estimates_from_manifest(manifest: dict | None) -> dict[str, Estimate]:
    """The deploy-time policy value of every version the manifest names: live, its history, the canary."""
    if manifest is None:
        return {}
    entries = [manifest, *manifest.get("history", []), *([manifest["canary"]] if manifest.get("canary") else [])]
    result = {}
    for entry in entries:
        metrics = entry.get("metrics") or {}
        value, ci = metrics.get("policy_value"), metrics.get("policy_value_ci") or [None, None]
        if entry.get("version") and isinstance(value, int | float) and math.isfinite(value):
            bounds = tuple(ci) if all(isinstance(b, int | float) and math.isfinite(b) for b in ci) else None
            result.setdefault(entry["version"], Estimate(float(value), bounds))
    return result


def fisher_mid_p(positives: int, rows: int, reference_positives: int, reference_rows: int) -> float:
    """Two-sided mid-p value of Fisher's exact test that the day's rate equals the reference's.

    Exact at any rate (no normal approximation that breaks on 0 of 1,400); the mid-p counts half the
    probability of the observed table, so the test is not needlessly conservative on small counts.
    """
    from scipy.stats import hypergeom

    total, successes = rows + reference_rows, positives + reference_positives
    if successes in (0, total):
        return 1.0  # every reward 0 (or 1) on both sides: no difference to test
    counts = hypergeom(total, successes, rows)
    at = counts.pmf(positives)
    lower, upper = counts.cdf(positives) - at / 2, counts.sf(positives) + at / 2
    return float(min(1.0, 2 * min(lower, upper)))


def estimate_p(positives: int, rows: int, estimate: Estimate) -> float:
    """Two-sided p value that the day's rate equals an estimated value, counting the estimate's uncertainty."""
    value = min(max(estimate.value, 1e-6), 1 - 1e-6)
    estimate_sd = (estimate.ci[1] - estimate.ci[0]) / (2 * Z_95) if estimate.ci else 0.0
    sd = math.sqrt(estimate_sd**2 + value * (1 - value) / rows)
    z = abs(positives / rows - value) / sd
    return math.erfc(z / math.sqrt(2))


def _pooled(days: list[dict], version: str | None) -> tuple[int, int, int]:
    """(rows, positive rewards, days) of `version` over the earlier usable days."""
    rows = positives = count = 0
    for day in days:
        entry = next((e for e in day["by_version"] if e["version"] == version), None)
        if entry and entry["rows"]:
            rows, positives, count = rows + entry["rows"], positives + round(entry["reward_sum"]), count + 1
    return rows, positives, count


def _version_check(spec: AgentSpec, day: str, entry: dict, earlier: list[dict], estimates: dict) -> dict:
    settings, version = spec.validation.reward_rate, entry["version"]
    name = f"version {version}" if version else LOGGING_POLICY
    rows, positives = entry["rows"], round(entry["reward_sum"])
    rate = positives / rows
    reference_rows, reference_positives, reference_days = _pooled(earlier, version)
    estimate = estimates.get(version) if version else None
    details = {"column": "reward", "observed": rate, "version": version, "rows": rows, "positives": positives}
    if reference_rows:
        reference = reference_positives / reference_rows
        p_value = fisher_mid_p(positives, rows, reference_positives, reference_rows)
        against = (f"{reference:.4f} ({reference_positives} of {reference_rows:,}) on its {reference_days} earlier "
                   f"usable day(s); Fisher's exact test, mid-p {p_value:.2g}")  # fmt: skip
    elif estimate is not None:
        reference = estimate.value
        p_value = estimate_p(positives, rows, estimate)
        interval = f", 95% interval [{estimate.ci[0]:.4f}, {estimate.ci[1]:.4f}]" if estimate.ci else ""
        against = (f"{reference:.4f}, the policy value its evaluation estimated{interval} (no earlier day of it in "
                   f"the window); normal test, p {p_value:.2g}")  # fmt: skip
    else:
        message = (f"{day}: reward rate of {name} {rate:.4f} ({positives} of {rows:,}) cannot be judged: no earlier "
                   "usable day of it in the window and no estimate of it in the manifest")  # fmt: skip
        return check("reward_rate", "warn", False, message, **details)
    change = rate - reference
    smallest = settings.max_change * reference if settings.scale == "relative" else settings.max_change
    material = abs(change) > smallest
    refused = material and p_value < settings.alpha
    shown = f"{change / reference:+.0%}" if settings.scale == "relative" and reference else f"{change:+.4f}"
    band = f"{settings.max_change:.0%} of the reference" if settings.scale == "relative" else f"{settings.max_change}"
    message = (f"{day}: reward rate of {name} {rate:.4f} ({positives} of {rows:,}) against {against}; change "
               f"{shown}, refused when larger than {band} and p < {settings.alpha}")  # fmt: skip
    return check("reward_rate", tier_of(spec, "reward_rate"), not refused, message, p_value=p_value,
                 reference=reference, **details)  # fmt: skip


def reward_rate_checks(spec: AgentSpec, day: dict, earlier: list[dict], estimates: dict[str, Estimate]) -> list[dict]:
    """One check per version that acted on the day (see the module's docstring); none on the window's first day."""
    if not earlier:
        return []
    return [_version_check(spec, day["day"], entry, earlier, estimates) for entry in day["by_version"] if entry["rows"]]
