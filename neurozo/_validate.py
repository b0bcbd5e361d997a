"""Input checks that raise one clear ``ValueError`` before any compute.

Every message names the parameter, the value given and what is allowed, e.g.
``popsize=0 is invalid: must be an integer >= 2``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

__all__ = [
    "fail", "check_int", "check_float", "check_choice", "check_bool", "check_seed",
]


def fail(name: str, value: Any, allowed: str) -> None:
    """Raise the canonical ValueError for parameter ``name``."""
    raise ValueError(f"{name}={value!r} is invalid: {allowed}")


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """An integer in [lo, hi] (either bound may be None)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            fail(name, value, _range_text("an integer", lo, hi))
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        fail(name, value, _range_text("an integer", lo, hi))
    return value


def check_float(name: str, value: Any, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number in the given (open or closed) range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(name, value, _range_text("a real number", lo, hi, lo_open, hi_open))
    value = float(value)
    bad = not math.isfinite(value)
    if lo is not None:
        bad |= value <= lo if lo_open else value < lo
    if hi is not None:
        bad |= value >= hi if hi_open else value > hi
    if bad:
        fail(name, value, _range_text("a finite real number", lo, hi, lo_open, hi_open))
    return value


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    allowed = list(allowed)
    if value not in allowed:
        fail(name, value, f"must be one of {allowed}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        fail(name, value, "must be true or false")
    return value


def check_seed(name: str, value: Any) -> int:
    return check_int(name, value, 0, 2**63 - 1)


def _range_text(kind: str, lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi}")
    return f"must be {kind}" + (" " + " and ".join(parts) if parts else "")
