"""The embedded-mode channel layer: Channels' in-memory layer, made cheap at hundreds of sockets.

The stock InMemoryChannelLayer sweeps every channel and group for expired entries on every
send and receive, and starts a task per member on every group send: its cost per frame grows
with the number of sockets, so hundreds of streams cost quadratically. Here the sweep runs at
most once a second (expiry is measured in minutes anyway) and group sends are done in place.
"""

import time
from typing import Any, cast

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

SWEEP_SECONDS = 1.0


class InProcessChannelLayer(InMemoryChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < SWEEP_SECONDS:
            return
        self._last_sweep = now
        cast(Any, super())._clean_expired()  # private in Channels, absent from its stubs

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            try:
                await self.send(channel, message)
            except ChannelFull:
                # A socket too slow to keep up: its client sees the seq gap and resumes.
                pass
