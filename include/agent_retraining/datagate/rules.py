"""The shape of the data gate's verdicts, shared by the rules of a day, the shift rules and the window verdict.

A check is a plain dict (rule, tier, success, message, and details such as the
column and example rows) so it can go into XCom, JSON records and reports as is.
"""

from __future__ import annotations

from agent_retraining.spec import AgentSpec

EXAMPLES = 5  # failing rows quoted per rule
DEFAULT_TIERS = {"drift": "warn", "text_length": "warn"}


class DataRejected(Exception):
    """The logs broke a blocking rule; nothing may be trained on them."""


def tier_of(spec: AgentSpec, kind: str, column: str | None = None) -> str:
    """The spec's tier for a rule: `kind:feature` wins over `kind`, then the default."""
    tiers = spec.validation.tiers
    feature = column.removeprefix("ctx_") if column else None
    return tiers.get(f"{kind}:{feature}") or tiers.get(kind) or DEFAULT_TIERS.get(kind, "block")


def check(rule: str, tier: str, success: bool, message: str, **details) -> dict:
    return {"rule": rule, "tier": tier, "success": bool(success), "message": message, **details}


def failed(checks: list[dict], tier: str) -> list[dict]:
    """The checks of this tier that failed: `block` ones refuse a day, `warn` ones are only recorded."""
    return [c for c in checks if not c["success"] and c["tier"] == tier]


def describe(item: dict) -> str:
    where = ", ".join(f"{e['key']} line {e['line']} value {e['value']!r}" for e in item.get("examples", [])[:3]
                      if "value" in e)  # fmt: skip
    return f"[{item['rule']}] {item['message']}" + (f", e.g. {where}" if where else "")
