"""Server-owned generations: a reply keeps streaming whatever happens to the sockets watching it.

Each web process has one `GenerationRegistry` (per event loop). A `Generation` reads the relay's
stream and publishes `delta` frames to the conversation's group, coalescing tokens so a frame
carries everything that arrived since the last one, at most one frame per `frame_seconds()`
(the first token goes out at once). Most of a process's cost is per frame, so the more replies
stream at once, the more tokens each frame carries: the text arrives a little less smoothly,
never later than it would on a saturated process.
Checkpoints are batched across all generations of the process: at most one database write per
CHECKPOINT_SECONDS per message, plus the first and the last.

Resume protocol (ARCHITECTURE.md §3): a socket joins the conversation group, then asks over the
control group `chatctl.<conversation>` who owns the message; the owner answers the asking channel
with its text and seq. Any process may own it (scaled mode), so the question always goes over
the channel layer.
"""

import asyncio
import contextlib
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.db import transaction
from django.utils import timezone

from chat.models import Conversation, Message
from chat.services import HEARTBEAT_SECONDS, GenerationPlan, estimate_tokens
from studio.accounts import usage as accounts_usage
from studio.upstream import RelayClient, UpstreamError, openai, user_message

logger = logging.getLogger(__name__)

FRAME_SECONDS = 0.05  # 20 frames a second while few replies stream
MAX_FRAME_SECONDS = 0.25
BUSY_GENERATIONS = 25  # beyond this many at once, frames grow with the square root of the count


def frame_seconds(running: int) -> float:
    """The least time between two frames of one reply, given how many replies are running."""
    return min(MAX_FRAME_SECONDS, FRAME_SECONDS * max(1.0, (running / BUSY_GENERATIONS) ** 0.5))


CHECKPOINT_SECONDS = 0.25
TITLE_PROMPT = (
    "Write a short title (at most 6 words) for the conversation below, in its language. "
    "Reply with the title only, no quotes."
)


def group_name(conversation_id: object) -> str:
    return f"chat.{conversation_id}"


def control_group_name(conversation_id: object) -> str:
    return f"chatctl.{conversation_id}"


@dataclass(eq=False)
class Generation:
    plan: GenerationPlan
    registry: "GenerationRegistry"
    text: str = ""  # published text, through `seq`
    seq: int = 0
    pending: list[str] = field(default_factory=list)  # received, not yet published
    status: str = Message.Status.STREAMING
    finish_reason: str = ""
    usage: Any = None
    error: UpstreamError | None = None
    checkpointed_at: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _last_frame: float = 0.0
    _in_flight: "asyncio.Future[None] | None" = None  # the delta frame being sent

    @property
    def message_id(self) -> str:
        return str(self.plan.message.id)

    @property
    def group(self) -> str:
        return group_name(self.plan.conversation_id)

    async def run(self) -> None:
        # The message was created `streaming` and announced by whoever started us: the relay
        # call goes out first, before any other work.
        publisher = asyncio.create_task(self._publish_loop())
        try:
            client = RelayClient(self.plan.credentials)
            stream = openai.stream_chat(
                client, self.plan.model, self.plan.prompt, **self.plan.params
            )
            async for delta in stream:
                if delta.text:
                    self.pending.append(delta.text)
                    self._wake.set()
                if delta.finish_reason:
                    self.finish_reason = delta.finish_reason
                if delta.usage is not None:
                    self.usage = delta.usage
            self.status = Message.Status.COMPLETE
        except asyncio.CancelledError:
            self.status = Message.Status.STOPPED  # stop: keep the text so far
        except UpstreamError as error:
            self.status, self.error = Message.Status.ERROR, error
        except Exception:
            logger.exception("generation %s failed", self.message_id)
            self.status = Message.Status.ERROR
            self.error = UpstreamError("Studio failed while receiving the reply.")
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
            await self._finish()

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            interval = frame_seconds(len(self.registry.generations))
            wait = self._last_frame + interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._publish()

    async def _publish(self) -> None:
        if not self.pending:
            return
        text = "".join(self.pending)
        self.pending.clear()
        self.text += text
        self.seq += 1
        self._last_frame = asyncio.get_running_loop().time()
        self.registry.mark_dirty(self)
        frame = {"type": "chat.delta", "message_id": self.message_id, "seq": self.seq, "text": text}
        # Shielded: the publisher is cancelled when the reply ends, and over Redis a send takes a
        # round trip; cut half way, the frame would be lost. _finish waits for it instead.
        self._in_flight = asyncio.ensure_future(self.registry.layer.group_send(self.group, frame))
        await asyncio.shield(self._in_flight)

    async def _finish(self) -> None:
        # Shielded: a stop or shutdown must not cut the final write and frames half way.
        await asyncio.shield(self._finish_unshielded())

    async def _finish_unshielded(self) -> None:
        layer = self.registry.layer
        if self._in_flight is not None:
            await self._in_flight  # the frame the cancelled publisher was sending goes out first
        await self._publish()
        self.registry.forget(self)
        usage = self.usage
        estimated = usage is None
        prompt_tokens = (
            usage.prompt_tokens
            if usage
            else estimate_tokens("".join(part["content"] for part in self.plan.prompt))
        )
        completion_tokens = usage.completion_tokens if usage else estimate_tokens(self.text)
        error = self.error
        await Message.objects.filter(pk=self.plan.message.pk).aupdate(
            status=self.status,
            content=self.text,
            seq=self.seq,
            finish_reason=self.finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage_estimated=estimated,
            error_code=error.code if error else "",
            error_detail=user_message(error) if error else "",
            retry_after=error.retry_after if error else None,
            updated_at=timezone.now(),
        )
        if usage is not None or self.text:  # a reply that failed before any text costs nothing
            await accounts_usage.arecord_chat(
                self.plan.user_id,
                model=self.plan.model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                estimated=estimated,
                ref=self.message_id,
            )
        usage_data = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "estimated": estimated,
        }
        if error is not None:
            await layer.group_send(
                self.group,
                {
                    "type": "chat.error",
                    "message_id": self.message_id,
                    "code": error.code,
                    "detail": user_message(error),
                    "retry_after": error.retry_after,
                },
            )
        await layer.group_send(
            self.group,
            {
                "type": "chat.done",
                "message_id": self.message_id,
                "status": self.status,
                "finish_reason": self.finish_reason,
                "usage": usage_data,
                "seq": self.seq,
            },
        )
        if self.plan.wants_title and self.status == Message.Status.COMPLETE:
            self.registry.spawn(self._title())

    async def _title(self) -> None:
        """A short non-streamed call; on any failure the conversation stays "New chat"."""
        question = next(
            (p["content"] for p in reversed(self.plan.prompt) if p["role"] == "user"), ""
        )
        try:
            result = await openai.chat(
                RelayClient(self.plan.credentials),
                self.plan.model,
                [
                    {"role": "system", "content": TITLE_PROMPT},
                    {"role": "user", "content": f"{question[:2000]}\n\n---\n\n{self.text[:2000]}"},
                ],
                max_tokens=24,
                temperature=0.3,
            )
        except UpstreamError as error:
            logger.info("no title for %s: %s", self.plan.conversation_id, error.code)
            return
        title = clean_title(result.content)
        if not title:
            return
        updated = await Conversation.objects.filter(pk=self.plan.conversation_id, title="").aupdate(
            title=title
        )
        if updated:
            await self.registry.layer.group_send(
                self.group,
                {
                    "type": "chat.title",
                    "conversation_id": str(self.plan.conversation_id),
                    "title": title,
                },
            )


def clean_title(raw: str) -> str:
    line = next((line for line in raw.strip().splitlines() if line.strip()), "")
    line = line.strip().strip("#*_`\"'\u201c\u201d\u2018\u2019「」《》").strip()
    return line[:80]


class GenerationRegistry:
    """The generations running in this process, and its answers to the control group."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.generations: dict[str, Generation] = {}
        self.control_channel: str | None = None
        self._dirty: set[Generation] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._started = False

    async def _ensure_started(self) -> None:
        if self._started:
            return
        self._started = True
        self.control_channel = await self.layer.new_channel()
        self.spawn(self._listen())
        self.spawn(self._checkpoint_loop())

    def spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._background.add(task)  # keep a reference: the loop only holds weak ones
        task.add_done_callback(self._background.discard)
        return task

    async def start(self, plan: GenerationPlan) -> Generation:
        await self._ensure_started()
        generation = Generation(plan=plan, registry=self)
        self.generations[generation.message_id] = generation
        assert self.control_channel is not None
        await self.layer.group_add(control_group_name(plan.conversation_id), self.control_channel)
        generation.task = self.spawn(generation.run())
        return generation

    def forget(self, generation: Generation) -> None:
        self.generations.pop(generation.message_id, None)
        self._dirty.discard(generation)
        conversation_id = generation.plan.conversation_id
        still_owned = any(
            g.plan.conversation_id == conversation_id for g in self.generations.values()
        )
        if not still_owned and self.control_channel:
            self.spawn(
                self.layer.group_discard(control_group_name(conversation_id), self.control_channel)
            )

    def mark_dirty(self, generation: Generation) -> None:
        self._dirty.add(generation)

    async def request_stop(self, conversation_id: object, message_id: str) -> None:
        await self.layer.group_send(
            control_group_name(conversation_id),
            {"type": "generation.stop", "message_id": message_id},
        )

    async def request_snapshot(
        self, conversation_id: object, message_id: str, reply_channel: str
    ) -> None:
        await self.layer.group_send(
            control_group_name(conversation_id),
            {
                "type": "generation.snapshot",
                "message_id": message_id,
                "reply_channel": reply_channel,
            },
        )

    async def _listen(self) -> None:
        assert self.control_channel is not None
        while True:
            request = await self.layer.receive(self.control_channel)
            generation = self.generations.get(request.get("message_id", ""))
            if generation is None:
                continue  # another process owns it, or it just finished
            if request["type"] == "generation.stop" and generation.task:
                generation.task.cancel()
            elif request["type"] == "generation.snapshot":
                await self.layer.send(
                    request["reply_channel"],
                    {
                        "type": "chat.snapshot_reply",
                        "message_id": generation.message_id,
                        "seq": generation.seq,
                        "content": generation.text,
                        "status": generation.status,
                    },
                )

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            try:
                await self.checkpoint()
            except Exception:
                logger.exception("checkpoint failed; will retry")

    async def checkpoint(self) -> None:
        """Write the text of every generation that changed, in one transaction."""
        now = time.monotonic()
        rows = []
        for generation in self._dirty:
            rows.append((generation.plan.message.pk, generation.text, generation.seq))
            generation.checkpointed_at = now
        self._dirty.clear()
        idle = []
        for generation in self.generations.values():
            if now - generation.checkpointed_at >= HEARTBEAT_SECONDS:
                idle.append(generation.plan.message.pk)
                generation.checkpointed_at = now
        if rows or idle:
            await write_checkpoints(rows, idle)


async def write_checkpoints(rows: list[tuple[Any, str, int]], idle: list[Any]) -> None:
    def write() -> None:
        stamp = timezone.now()
        with transaction.atomic():
            for pk, text, seq in rows:
                # The condition keeps a late checkpoint from overwriting the final text.
                Message.objects.filter(pk=pk, seq__lt=seq).update(
                    content=text, seq=seq, updated_at=stamp
                )
            if idle:
                Message.objects.filter(pk__in=idle, status=Message.Status.STREAMING).update(
                    updated_at=stamp
                )

    await sync_to_async(write)()


_registries: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GenerationRegistry]" = (
    weakref.WeakKeyDictionary()
)


def get_registry() -> GenerationRegistry:
    """This process's registry (one per event loop: tests run each in a fresh loop)."""
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("CHANNEL_LAYERS is not configured")
        registry = _registries[loop] = GenerationRegistry(layer)
    return registry
