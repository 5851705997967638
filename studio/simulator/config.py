"""Simulator settings, read once from the environment at start-up.

Every simulated duration (token pacing, image "rendering", MJ job length) is divided by
``SIMULATOR_SPEED`` so the same code serves a realistic demo (speed 1) and fast tests (speed 50+).
Durations a request asks for explicitly (``[[sleep=3]]``, ``[[tps=500]]``) are taken literally:
a test that wants a 3 s silence must get 3 s whatever the speed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class Config:
    speed: float = 1.0
    tokens_per_second: float = 40.0
    file_ttl: float = 3600.0
    extra_keys: frozenset[str] = field(default_factory=frozenset)
    # When set, generated URLs use this base instead of the request's Host header
    # (useful behind a proxy or in a container with a different public name).
    public_url: str = ""
    # Accept MJ::Job::PicReader / PromptAnalyzer customIds (describe / shorten picks).
    # Off by default because older new-api builds answer unknown_action for them.
    mj_pick_actions: bool = False
    # When set, every authenticated request is appended to this file as a JSON line (time,
    # method, path, a POST's prompt): tests and benchmarks count what reached "the relay", e.g.
    # that no job was submitted twice, or how often a task was fetched.
    request_log: str = ""

    @classmethod
    def from_env(cls) -> Config:
        keys = {k.strip() for k in os.environ.get("SIMULATOR_KEYS", "").split(",") if k.strip()}
        # Tokens are compared without the "sk-" prefix, exactly as the relay strips it.
        normalized = frozenset(k.removeprefix("sk-") for k in keys)
        return cls(
            speed=_float_env("SIMULATOR_SPEED", 1.0),
            tokens_per_second=_float_env("SIMULATOR_TOKENS_PER_SECOND", 40.0),
            file_ttl=_float_env("SIMULATOR_FILE_TTL", 3600.0),
            extra_keys=normalized,
            public_url=os.environ.get("SIMULATOR_PUBLIC_URL", "").strip().rstrip("/"),
            mj_pick_actions=os.environ.get("SIMULATOR_MJ_PICK_ACTIONS", "") in {"1", "true", "yes"},
            request_log=os.environ.get("SIMULATOR_REQUEST_LOG", "").strip(),
        )

    def scaled(self, seconds: float) -> float:
        """A realistic duration shrunk by the speed multiplier."""
        return seconds / self.speed
