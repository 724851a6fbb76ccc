"""Model parameter checks: values arrive from Python, the CLI or the dashboard (possibly as text).

Each helper returns the value in its proper type or raises ``InputError`` with a one-line message.
"""

from __future__ import annotations

import math

from ..errors import InputError


def as_float(model: str, name: str, value, *, low=None, high=None, low_open=False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"model {model!r}: {name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise InputError(f"model {model!r}: {name} must be a finite number, got {value!r}")
    if low is not None and (number < low or (low_open and number == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise InputError(f"model {model!r}: {name} must be {bound}, got {value!r}")
    if high is not None and number > high:
        raise InputError(f"model {model!r}: {name} must be <= {high}, got {value!r}")
    return number


def as_int(model: str, name: str, value, *, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise InputError(f"model {model!r}: {name} must be an integer, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"model {model!r}: {name} must be an integer, got {value!r}") from None
    if not number.is_integer():
        raise InputError(f"model {model!r}: {name} must be an integer, got {value!r}")
    if not low <= number <= high:
        raise InputError(f"model {model!r}: {name} must be between {low} and {high}, got {value!r}")
    return int(number)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def as_bool(model: str, name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(f"model {model!r}: {name} must be true or false, got {value!r}")
