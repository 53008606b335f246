"""BSN normalisation and the elfproef, the single definition every other check is tested against.

The partner-side tool rejects a row whose BSN does not pass; the hub's leak guard uses the same
test to spot a raw BSN in a text field. The SQL twin used on the fast path
(`sql/partner/pseudonymised_extract.sql`) is proven equal to these functions by property tests.
Reasons never carry the value: they name what is wrong, so a reject file cannot leak a BSN.
"""

from __future__ import annotations

import re

# Weights of the elfproef for digits d1..d9 (the last digit counts negatively).
ELFPROEF_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)

# Rejection reasons, as they appear in reject files. Words a partner's engineer understands.
REASON_MISSING = "bsn_missing"
REASON_FORMAT = "bsn_not_8_or_9_digits"
REASON_ALL_ZEROS = "bsn_all_zeros"
REASON_ELFPROEF = "bsn_fails_elfproef"
REASONS = (REASON_MISSING, REASON_FORMAT, REASON_ALL_ZEROS, REASON_ELFPROEF)

_SEPARATORS = re.compile(r"[ .]")
_DIGITS = re.compile(r"[0-9]{8,9}")


def strip_separators(raw: str) -> str:
    """Remove the spaces and dots people and old systems put inside a BSN."""
    return _SEPARATORS.sub("", raw)


def normalise_bsn(raw: str | None) -> str | None:
    """Return the BSN as 9 ASCII digits, or None when it is not 8 or 9 digits after stripping.

    An 8-digit number is a BSN whose leading zero was lost (stored as an integer somewhere);
    it gets that zero back. The elfproef is *not* applied here: see `bsn_rejection_reason`.
    """
    if raw is None:
        return None
    digits = strip_separators(raw)
    if not _DIGITS.fullmatch(digits):
        return None
    return digits.rjust(9, "0")


def passes_elfproef(bsn9: str) -> bool:
    """The elfproef on 9 digits: the weighted sum is divisible by 11, and not all zeros."""
    if len(bsn9) != 9 or not bsn9.isascii() or not bsn9.isdigit() or bsn9 == "000000000":
        return False
    total = sum(w * int(d) for w, d in zip(ELFPROEF_WEIGHTS, bsn9, strict=True))
    return total % 11 == 0


def bsn_rejection_reason(raw: str | None) -> str | None:
    """Why a raw BSN cannot be hashed, or None when it is valid. Never includes the value."""
    if raw is None or strip_separators(raw) == "":
        return REASON_MISSING
    bsn9 = normalise_bsn(raw)
    if bsn9 is None:
        return REASON_FORMAT
    if bsn9 == "000000000":
        return REASON_ALL_ZEROS
    if not passes_elfproef(bsn9):
        return REASON_ELFPROEF
    return None


def looks_like_raw_bsn(text: str | None) -> bool:
    """True when a text field holds what looks like a raw BSN: exactly 9 digits after removing
    spaces and dots, passing the elfproef. Used by the hub's leak guard on every text column."""
    if text is None:
        return False
    digits = strip_separators(text)
    return len(digits) == 9 and passes_elfproef(digits)
