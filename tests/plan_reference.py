"""A plain-Python transcription of rules.md section 3, written independently of the SQL, for the
property tests to compare against. Integers only."""

from __future__ import annotations

TERMS = [
    (12_000, 3),
    (30_000, 6),
    (45_000, 9),
    (125_000, 12),
    (200_000, 18),
    (300_000, 24),
    (400_000, 30),
]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def standard_term(total: int) -> int:
    return next((term for bound, term in TERMS if total <= bound), 36)


def proposal(
    claims: list[tuple[str, str, int]], capacity: int | None, debt_assistance: bool = False
) -> dict:
    """claims: (partner, claim_ref, outstanding_cents)."""
    total = sum(c[2] for c in claims)
    standard_monthly = ceil_div(total, standard_term(total))
    if debt_assistance:
        return {"outcome": "excluded", "monthly": None, "term": None, "lines": {}, "schedule": []}
    if capacity is None or capacity >= standard_monthly:
        outcome, monthly = "standard", standard_monthly
    elif capacity > 0 and ceil_div(total, capacity) <= 36:
        outcome, monthly = "personal", capacity
    else:
        return {"outcome": "refer", "monthly": None, "term": None, "lines": {}, "schedule": []}
    term = ceil_div(total, monthly)
    base = {(p, r): monthly * o // total for p, r, o in claims}
    left = monthly - sum(base.values())
    order = sorted(claims, key=lambda c: (-(monthly * c[2] % total), -c[2], c[0], c[1]))
    for partner, ref, _ in order[:left]:
        base[(partner, ref)] += 1
    schedule = [monthly] * (term - 1) + [total - monthly * (term - 1)]
    return {
        "outcome": outcome,
        "monthly": monthly,
        "term": term,
        "lines": base,
        "schedule": schedule,
    }
