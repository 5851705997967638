"""The playground's rules: who may call the relay now, the calls themselves, and their usage.

Every call goes through `admit` first: the user's relay key, their quota (models allowed,
tokens this month: the chat quota, since these are tokens too) and the chat rate limit, in that
order, so that a refused request reaches neither the relay nor the rate-limit counter. Usage is
recorded afterwards as chat usage (UsageRecord has no playground source), from the relay's
counts or, when it sends none, estimated.
"""

import asyncio
import math
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext as _

from playground import results
from playground.results import EmbeddingRun
from playground.similarity import similarity_matrix
from studio.accounts import families, quotas, usage
from studio.accounts.services import MissingCredential, relay_credentials_for
from studio.ratelimit import limiter
from studio.upstream import RelayClient, RelayCredentials, UpstreamError, openai, user_message

Event = dict[str, Any]


class PlaygroundRefused(Exception):
    """A request the user must be told about; `detail` is the message, in their language."""

    def __init__(
        self, code: str, detail: str, *, status: int = 400, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.retry_after = retry_after


async def admit(user: User, model: str) -> RelayCredentials:
    """The credentials for one playground call, or PlaygroundRefused (no key, over quota,
    too many requests). Each admitted call counts against the user's chat rate limit."""
    credentials = await sync_to_async(_credentials_within_quota)(user, model)
    verdict = await limiter.ahit_user(user, "chat", settings.RATELIMIT_CHAT)
    if isinstance(verdict, limiter.Limited):
        raise PlaygroundRefused(
            "rate_limited",
            _("You are sending requests too quickly. Try again in %(wait)s.")
            % {"wait": limiter.wait_text(verdict.retry_after)},
            status=429,
            retry_after=math.ceil(verdict.retry_after),
        )
    return credentials


def _credentials_within_quota(user: User, model: str) -> RelayCredentials:
    if not families.is_enabled("openai"):
        detail = _("The playground is switched off by the administrator.")
        raise PlaygroundRefused("switched_off", detail, status=403)
    try:
        credentials = relay_credentials_for(user)
    except MissingCredential as missing:
        raise PlaygroundRefused("no_key", str(missing), status=403) from missing
    try:
        quotas.check_chat_allowed(user, model)
    except quotas.QuotaRefused as refused:
        raise PlaygroundRefused(refused.code, str(refused), status=403) from refused
    return credentials


def estimate_tokens(text: str) -> int:
    """Rough token count when the relay sends no usage: CJK ~1 per character, else ~4 chars."""
    cjk = sum(1 for ch in text if "\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    return cjk + max(0, len(text) - cjk) // 4 + (1 if text else 0)


def _ref() -> str:
    return f"playground:{uuid.uuid4().hex}"


# --- completions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CompletionCall:
    user_id: int
    credentials: RelayCredentials
    model: str
    prompt: str
    params: dict[str, Any]


@dataclass(frozen=True)
class CompletionOutcome:
    text: str
    finish_reason: str | None
    usage: dict[str, Any] | None
    error: str | None = None


async def stream_completion(call: CompletionCall) -> AsyncGenerator[Event]:
    """The completion as events: `delta` ({text}) as the relay sends pieces, then `done`
    ({finish_reason, usage}) or `error` ({code, detail, retry_after}) after the text so far.

    Usage is recorded however the stream ends, also when the caller stops reading (the
    browser's Stop button, a closed tab): the tokens were spent.
    """
    client = RelayClient(call.credentials)
    parts: list[str] = []
    relay_usage: openai.Usage | None = None
    finish_reason: str | None = None
    failure: UpstreamError | None = None
    try:
        deltas = openai.stream_complete(client, call.model, call.prompt, **call.params)
        async with aclosing(deltas):
            async for delta in deltas:
                relay_usage = delta.usage or relay_usage
                finish_reason = delta.finish_reason or finish_reason
                if delta.text:
                    parts.append(delta.text)
                    yield {"type": "delta", "text": delta.text}
    except UpstreamError as error:
        failure = error
    finally:
        # Shielded: a cancelled request (the client went away) must still count its tokens.
        recorded = await asyncio.shield(_record_completion(call, "".join(parts), relay_usage))
    if failure is not None:
        yield {
            "type": "error",
            "code": failure.code,
            "detail": user_message(failure),
            "retry_after": failure.retry_after,
        }
    else:
        yield {"type": "done", "finish_reason": finish_reason, "usage": recorded}


async def complete(call: CompletionCall) -> CompletionOutcome:
    """The whole completion in one reply (the page without JavaScript)."""
    try:
        result = await openai.complete(
            RelayClient(call.credentials), call.model, call.prompt, **call.params
        )
    except UpstreamError as error:
        return CompletionOutcome(text="", finish_reason=None, usage=None, error=user_message(error))
    recorded = await _record_completion(call, result.text, result.usage)
    return CompletionOutcome(text=result.text, finish_reason=result.finish_reason, usage=recorded)


async def _record_completion(
    call: CompletionCall, text: str, relay_usage: openai.Usage | None
) -> dict[str, Any] | None:
    """Record the call's tokens; a call that failed before any text costs nothing."""
    if relay_usage is None and not text:
        return None
    estimated = relay_usage is None
    prompt_tokens = relay_usage.prompt_tokens if relay_usage else estimate_tokens(call.prompt)
    completion_tokens = relay_usage.completion_tokens if relay_usage else estimate_tokens(text)
    await usage.arecord_chat(
        call.user_id,
        model=call.model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        estimated=estimated,
        ref=_ref(),
    )
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "estimated": estimated,
    }


# --- embeddings ------------------------------------------------------------------------------


async def embed(
    user: User,
    credentials: RelayCredentials,
    model: str,
    texts: list[str],
    *,
    dimensions: int | None = None,
) -> EmbeddingRun:
    """Embed `texts`, compare every pair, record the tokens and keep the result as the user's
    last one (for the page and the downloads). Relay failures become PlaygroundRefused."""
    try:
        reply = await openai.embed(RelayClient(credentials), model, texts, dimensions=dimensions)
    except UpstreamError as error:
        raise PlaygroundRefused(error.code, user_message(error), status=502) from error
    lengths = {len(vector) for vector in reply.vectors}
    if len(lengths) != 1 or 0 in lengths:
        detail = _("The relay sent vectors of different or zero length.")
        raise PlaygroundRefused("protocol", detail, status=502)
    # A 64 x 3072 matrix takes a fraction of a second: not on the event loop.
    similarity = await sync_to_async(similarity_matrix, thread_sensitive=False)(reply.vectors)
    estimated = reply.usage is None
    prompt_tokens = reply.usage.prompt_tokens if reply.usage else estimate_tokens("".join(texts))
    await usage.arecord_chat(
        user.pk,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=0,
        estimated=estimated,
        ref=_ref(),
    )
    run = EmbeddingRun(
        model=reply.model or model,
        texts=texts,
        vectors=reply.vectors,
        similarity=similarity,
        prompt_tokens=prompt_tokens,
        usage_estimated=estimated,
        created=timezone.now(),
        requested_dimensions=dimensions,
    )
    await sync_to_async(results.save_last, thread_sensitive=False)(user, run)
    return run
