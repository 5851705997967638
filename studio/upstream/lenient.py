"""Reading relay values leniently (ARCHITECTURE.md §4): ids and numbers arrive as strings or
numbers, fields go missing or turn up as objects. Shared by the families that parse the same way.
"""

from __future__ import annotations

from collections.abc import Mapping


def as_str(value: object) -> str:
    """`value` as text; "" for None, objects and lists (never their repr)."""
    if value is None or isinstance(value, Mapping | list):
        return ""
    return str(value)


def as_int(value: object) -> int | None:
    """`value` as a whole number (`"12"`, `12.0` and `" 12 "` give 12); None when it is none."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(float(str(value).strip()))
    except ValueError:
        return None
