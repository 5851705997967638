"""Relay failures as one exception hierarchy, built from whatever error body the relay sent.

The relay answers errors in several shapes (upstream-api.md §2): OpenAI's `{"error": {...}}`,
its own Midjourney wrapper `{"description", "type", "code"}`, the task-relay envelope
`{"code": "<token>", "message"}`, provider bodies passed through unchanged (Kling, Runway, BFL,
GoAPI, Stability), and plain text or HTML from a proxy in front of it. `error_from_response`
reads all of them; the HTTP status decides the class first, the body's words second.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, ClassVar

from django.utils.translation import gettext, ngettext

from studio.upstream.masking import mask_key

MESSAGE_EXCERPT_CHARS = 300

# Anything shaped like a relay key. Relays sometimes echo the key they rejected; the whole key
# must never reach a log line or a page, so it is masked wherever an error message is built.
_KEY_PATTERN = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")


def redact_secrets(text: str, secret: str | None = None) -> str:
    """Mask `secret` (with or without its `sk-` prefix) and anything that looks like a key."""
    if secret:
        for variant in {secret, secret.removeprefix("sk-")}:
            if len(variant) >= 8:
                text = text.replace(variant, mask_key(secret))
    return _KEY_PATTERN.sub(lambda match: mask_key(match.group(0)), text)


class UpstreamError(Exception):
    """A call to the relay failed. `code` is a stable slug for the kind of failure.

    `message` is the relay's own text (often Chinese), kept verbatim so people can quote it to
    the relay's operator; `relay_code` is the relay's code or type token as a string.
    """

    code: ClassVar[str] = "upstream"

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        relay_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = redact_secrets(message)
        self.status = status
        self.relay_code = redact_secrets(relay_code) if relay_code is not None else None
        self.retry_after = retry_after
        super().__init__(self.message)

    def __str__(self) -> str:
        details = [f"HTTP {self.status}"] if self.status is not None else []
        if self.relay_code:
            details.append(self.relay_code)
        suffix = f" ({', '.join(details)})" if details else ""
        return f"{self.message or self.code}{suffix}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, relay_code={self.relay_code!r}, "
            f"message={self.message!r}, retry_after={self.retry_after!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only attributes are not in `args`; without this, pickling loses them.
        state = (type(self), self.message, self.status, self.relay_code, self.retry_after)
        return (_rebuild_error, state)


def _rebuild_error(
    cls: type[UpstreamError],
    message: str,
    status: int | None,
    relay_code: str | None,
    retry_after: float | None,
) -> UpstreamError:
    return cls(message, status=status, relay_code=relay_code, retry_after=retry_after)


class AuthError(UpstreamError):
    """The relay rejected the key: unknown, expired, banned, or not allowed for this model."""

    code = "auth"


class QuotaError(UpstreamError):
    """The key (or its user) has no quota left."""

    code = "quota"


class RateLimitedError(UpstreamError):
    """Too many requests, or the key's group is saturated; `retry_after` when the relay said."""

    code = "rate_limited"


class BadRequestError(UpstreamError):
    """The relay refused the request itself (bad field, unknown model or route, task not found)."""

    code = "bad_request"


class UnavailableError(UpstreamError):
    """The relay or its upstream is down, unreachable, or has no channel for the model.

    Nothing was done on the relay's side, so trying again later is safe.
    """

    code = "unavailable"


class UpstreamTimeout(UpstreamError):
    """No answer in time. The relay may still have done the work (e.g. accepted a task)."""

    code = "timeout"


class ProtocolError(UpstreamError):
    """The reply could not be read: not JSON where JSON was due, or a stream cut short."""

    code = "protocol"


# --- reading error bodies -------------------------------------------------------------------

_QUOTA_WORDS = (
    "quota",
    "额度",
    "余额",
    "insufficient balance",
    "insufficient_balance",
    "balance not enough",
    "not enough balance",
    "insufficient credits",
    "not enough credits",
)
_RATE_WORDS = ("rate limit", "rate_limit", "too many requests", "饱和", "频繁", "saturated")
_AUTH_WORDS = (
    "invalid_api_key",
    "invalid api key",
    "incorrect api key",
    "invalid token",
    "unauthorized",
    "无效的令牌",
    "令牌已过期",
    "令牌已被禁用",
    "未提供令牌",
)
_TIMEOUT_STATUSES = frozenset({408, 504, 524})  # 524: Cloudflare's "origin timed out"


@dataclass(frozen=True)
class _ErrorBody:
    message: str
    relay_code: str | None = None
    tokens: tuple[str, ...] = ()  # every code/type/name token, for classification only


def error_from_response(
    status: int,
    headers: Mapping[str, str] | None,
    body: bytes,
    *,
    secret: str | None = None,
) -> UpstreamError:
    """Turn a failed HTTP reply into the matching UpstreamError subclass.

    `secret` is the key the request was sent with; it is masked if the relay echoes it back.
    """
    parsed = _read_body(body, status, headers or {})
    error_class = _classify(status, parsed)
    return error_class(
        redact_secrets(parsed.message, secret),
        status=status,
        relay_code=redact_secrets(parsed.relay_code, secret) if parsed.relay_code else None,
        retry_after=parse_retry_after(headers or {}),
    )


def error_from_payload(
    payload: Mapping[str, Any], *, status: int | None = None, secret: str | None = None
) -> UpstreamError:
    """Build an UpstreamError from an already-parsed error object, e.g. one sent mid-stream."""
    parsed = _read_object(payload) or _ErrorBody(message="")
    error_class = _classify(status, parsed)
    message = redact_secrets(parsed.message or _reason_phrase(status), secret)
    return error_class(message, status=status, relay_code=parsed.relay_code)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), else None."""
    value = _header(headers, "retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # httpx.Headers is case-insensitive already; a plain dict from a test or caller is not.
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def _read_body(body: bytes, status: int, headers: Mapping[str, str]) -> _ErrorBody:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None  # HTML from a proxy, plain text: excerpted below
    if 300 <= status < 400 and (location := _header(headers, "location")):
        return _ErrorBody(f"{_reason_phrase(status)} → {location}")
    if isinstance(data, dict):
        parsed = _read_object(data) or _ErrorBody(message="")
        return parsed if parsed.message else replace(parsed, message=_reason_phrase(status))
    if isinstance(data, str):
        text = data
    return _ErrorBody(body_excerpt(text) or _reason_phrase(status))


def _read_object(data: Mapping[str, Any]) -> _ErrorBody | None:
    """Recognise the known error shapes; None when the object carries no error at all."""
    error = data.get("error")
    if isinstance(error, Mapping):  # §2.1 OpenAI
        code, kind = _token(error.get("code")), _token(error.get("type"))
        return _ErrorBody(_text(error.get("message")), code or kind, _tokens(code, kind))
    if isinstance(error, str) and error.strip():  # Runway
        return _ErrorBody(error.strip())
    if "description" in data:  # §2.3 relay wrapper for Midjourney
        description = _text(data.get("description"))
        code, kind = _token(data.get("code")), _token(data.get("type"))
        return _ErrorBody(description, code, _tokens(description, kind, code))
    if "detail" in data and "message" not in data:  # BFL / FastAPI validation errors
        return _ErrorBody(_detail_text(data["detail"]))
    errors = data.get("errors")
    if isinstance(errors, list) and errors:  # Stability
        name = _token(data.get("name"))
        return _ErrorBody(_excerpt("; ".join(_text(item) for item in errors)), name, _tokens(name))
    if "code" in data or "message" in data or "msg" in data:  # §2.4 task relay, Kling, GoAPI
        code = _token(data.get("code"))
        parts = [_text(data.get(key)) for key in ("message", "msg", "error_message")]
        message = " — ".join(dict.fromkeys(part for part in parts if part))
        return _ErrorBody(message, code, _tokens(code))
    return None


def _classify(status: int | None, parsed: _ErrorBody) -> type[UpstreamError]:
    words = " ".join([*parsed.tokens, parsed.message]).casefold()
    if status == 429:
        # Even when the message is 当前分组上游负载已饱和 ("the group is saturated") or similar.
        return RateLimitedError
    if status == 402:
        return QuotaError
    if status in _TIMEOUT_STATUSES:
        return UpstreamTimeout
    if status is not None and 400 <= status < 500:
        # one-api answers 401 "该令牌额度已用尽" for a spent token, new-api 403 for a spent user,
        # and the Midjourney wrapper 400 "quota_not_enough": the words tell them apart.
        if _mentions(words, _QUOTA_WORDS):
            return QuotaError
        if status in (401, 403):
            return AuthError
        return BadRequestError
    if status is not None and status >= 500:
        return UnavailableError
    return _classify_by_words(status, parsed, words)


def _classify_by_words(status: int | None, parsed: _ErrorBody, words: str) -> type[UpstreamError]:
    """No failing HTTP status to go by: an error inside a 200 reply or in the middle of a stream."""
    if _mentions(words, _QUOTA_WORDS):
        return QuotaError
    if _mentions(words, _RATE_WORDS):
        return RateLimitedError
    if _mentions(words, _AUTH_WORDS):
        return AuthError
    if status is None:
        # Mid-stream the request had been accepted; what breaks then is the upstream side,
        # unless the relay says the request itself was wrong.
        if "invalid_request_error" in parsed.tokens:
            return BadRequestError
        return UnavailableError
    if 200 <= status < 300:
        return BadRequestError
    return ProtocolError  # 1xx / 3xx: not an answer Studio can use


def _mentions(words: str, needles: Iterable[str]) -> bool:
    return any(needle in words for needle in needles)


def _token(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() or None


def _tokens(*values: str | None) -> tuple[str, ...]:
    return tuple(value.casefold() for value in values if value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False)


def _detail_text(detail: Any) -> str:
    """BFL/FastAPI `detail`: a string, or a list of `{loc, msg, type}` entries."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, Mapping) and "msg" in item:
                location = ".".join(str(part) for part in item.get("loc") or [] if part != "body")
                parts.append(f"{location}: {item['msg']}" if location else str(item["msg"]))
            else:
                parts.append(_text(item))
        return _excerpt("; ".join(parts))
    return _excerpt(_text(detail))


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SCRIPTS = re.compile(r"<(script|style)[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def body_excerpt(text: str) -> str:
    """A short readable excerpt of a non-JSON body: an HTML error page's title, or its text
    with tags and runs of whitespace removed, at most MESSAGE_EXCERPT_CHARS long.
    """
    if "<" in text and ">" in text:
        title = _TITLE.search(text)
        if title and title.group(1).strip():
            return _excerpt(html.unescape(title.group(1)))
        text = html.unescape(_TAGS.sub(" ", _SCRIPTS.sub(" ", text)))
    return _excerpt(text)


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= MESSAGE_EXCERPT_CHARS:
        return text
    return text[: MESSAGE_EXCERPT_CHARS - 1].rstrip() + "…"


def _reason_phrase(status: int | None) -> str:
    if status is None:
        return "unknown error"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


# --- words for people -----------------------------------------------------------------------


def user_message(error: UpstreamError) -> str:
    """What to tell a person about `error`, in their language, with the relay's own words."""
    message = error.message or _reason_phrase(error.status)
    if isinstance(error, AuthError):
        return gettext("The relay rejected the API key: %(message)s") % {"message": message}
    if isinstance(error, QuotaError):
        return gettext("The key has no quota left: %(message)s") % {"message": message}
    if isinstance(error, RateLimitedError):
        if error.retry_after is not None and error.retry_after > 0:
            seconds = math.ceil(error.retry_after)
            return ngettext(
                "The relay is busy; try again in %(seconds)d second: %(message)s",
                "The relay is busy; try again in %(seconds)d seconds: %(message)s",
                seconds,
            ) % {"seconds": seconds, "message": message}
        return gettext("The relay is busy; try again later: %(message)s") % {"message": message}
    if isinstance(error, UnavailableError):
        return gettext("The relay is unavailable: %(message)s") % {"message": message}
    if isinstance(error, UpstreamTimeout):
        if message:
            return gettext("The relay did not answer in time: %(message)s") % {"message": message}
        return gettext("The relay did not answer in time.")
    if isinstance(error, BadRequestError):
        return gettext("The relay refused the request: %(message)s") % {"message": message}
    if isinstance(error, ProtocolError):
        return gettext("The relay sent a reply Studio could not read: %(message)s") % {
            "message": message
        }
    return gettext("The relay reported an error: %(message)s") % {"message": message}
