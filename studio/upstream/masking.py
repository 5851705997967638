"""Masking of relay API keys: keys never appear whole in logs, errors, pages or admin lists."""


def mask_key(key: str, *, hint_only: bool = False) -> str:
    """`sk-abcdef…wxyz` → `sk-…wxyz`. With hint_only, `key` is already just the last characters."""
    if not key:
        return ""
    tail = key[-4:]
    if not hint_only and len(key) < 12:
        # Too short to reveal four characters without giving away much of it.
        return "sk-…"
    return f"sk-…{tail}"
