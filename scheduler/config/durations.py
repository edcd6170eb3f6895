"""Durations as people write them in the config and on the command line: `90s`, `15m`, `2h`, `7d`.

Combinations are allowed (`1h30m`, `1d12h`), as are decimals (`1.5h`). Pure functions, no I/O.
"""

from __future__ import annotations

import math
import re

UNITS: dict[str, int] = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}

_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+")
_EXAMPLES = '"90s", "15m", "2h", "7d" or "1h30m"'


def parse_duration(text: str) -> float:
    """Return the duration `text` in seconds; raise ValueError with a readable reason."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as {_EXAMPLES}, got {text!r}")
    compact = text.strip()
    if not compact:
        raise ValueError(f"empty duration; write for example {_EXAMPLES}")
    if not _WHOLE.fullmatch(compact):
        if re.fullmatch(r"\d+(?:\.\d+)?", compact):
            hint = f'add a unit, e.g. "{compact}s" or "{compact}m"'
        else:
            hint = f"write a number and a unit (s, m, h, d), e.g. {_EXAMPLES}"
        raise ValueError(f'invalid duration "{text}": {hint}')
    units = [unit for _, unit in _PART.findall(compact)]
    if len(set(units)) != len(units):
        raise ValueError(f'invalid duration "{text}": each unit may appear only once')
    return float(sum(float(number) * UNITS[unit] for number, unit in _PART.findall(compact)))


def format_duration(seconds: float) -> str:
    """The shortest natural spelling of `seconds`: 90 -> "1m30s", 5400 -> "1h30m", 0 -> "0s"."""
    if isinstance(seconds, bool) or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format {seconds!r} as a duration")
    whole = int(seconds)
    fraction = round(seconds - whole, 3)
    if fraction >= 1:  # rounding up, e.g. 59.9996
        whole, fraction = whole + 1, 0.0
    parts: list[str] = []
    for unit, size in UNITS.items():
        count, whole = divmod(whole, size)
        if unit == "s" and fraction:
            parts.append(f"{count + fraction:g}s")
        elif count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
