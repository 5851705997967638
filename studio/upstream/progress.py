"""Reading a task's progress, whatever form the relay sends it in (ARCHITECTURE.md §4).

Families disagree: Runway sends a 0-1 fraction (`0.45`), task relays a percentage string
(`"45%"`), others a bare percentage (`45`). Shared by the video families so they agree on
the one ambiguous case.
"""

from __future__ import annotations

import math
import re

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_progress(value: object) -> int | None:
    """A percentage from 0 to 100, or None when `value` carries no number.

    `"45%"` and `"45"` and `45` give 45; a bare number from 0 to 1 is a fraction (`0.45` gives
    45, and `1` gives 100, as Runway sends on success); `"1%"` stays 1 because it says so.
    """
    if value is None or isinstance(value, bool):
        return None
    percent_sign = False
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        match = _NUMBER.search(text)
        if not match:
            return None
        number = float(match.group(0))
        percent_sign = "%" in text
    if math.isnan(number) or math.isinf(number):
        return None
    if not percent_sign and 0 <= number <= 1:
        number *= 100
    return max(0, min(100, round(number)))
