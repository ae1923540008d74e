"""Checks of typed config dataclasses: each wrong field is a UserError that
names it (with a prefix such as "data.") and says what was expected."""

from __future__ import annotations

import math
import typing

from tfalign.errors import UserError


def check_fields(config, prefix: str = "") -> None:
    """Every field of a config dataclass has its declared type (and Literal
    value); a wrong one is a UserError naming the field."""
    for name, hint in typing.get_type_hints(type(config)).items():
        value, label = getattr(config, name), prefix + name
        options = typing.get_args(hint)
        if typing.get_origin(hint) is typing.Literal:
            if value not in options:
                raise UserError(f"{label}: expected one of {list(options)}, got {value!r}")
            continue
        allowed = set(options) if options else {hint}
        if value is None and type(None) in allowed:
            continue
        # A Literal among other types (``int | Literal["all"]``): its values are allowed too.
        named = [v for option in options if typing.get_origin(option) is typing.Literal
                 for v in typing.get_args(option)]
        if isinstance(value, str) and value in named:
            continue
        if int in allowed and float not in allowed:
            ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif float in allowed:
            ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        elif bool in allowed:
            ok, expected = isinstance(value, bool), "true or false"
        elif str in allowed:
            ok, expected = isinstance(value, str), "a string"
        else:
            continue  # nested configs check themselves
        if not ok:
            raise UserError(f"{label}: expected {expected}, got {value!r}")


def check_ranges(config, rules, prefix: str = "") -> None:
    """``rules``: (field, low, high, low_open, high_open); None = unbounded. NaN fails every range."""
    for name, low, high, low_open, high_open in rules:
        value = getattr(config, name)
        if value is None:
            continue
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or too_low or too_high:
            left = "unbounded" if low is None else f"{'(' if low_open else '['}{low:g}"
            right = "unbounded" if high is None else f"{high:g}{')' if high_open else ']'}"
            expected = f"a value in {left}, {right}" if low is not None and high is not None else (
                f"a value {'>' if low_open else '>='} {low:g}" if low is not None else f"a value <= {high:g}")
            raise UserError(f"{prefix}{name}: expected {expected} (finite), got {value}")
