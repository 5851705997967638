"""The audit log: who did what, when, and from where (read-only once written).

`record()` is the one writer. "From where" (IP address and browser) comes from the request:
`AuditOriginMiddleware` keeps it in a context variable for the length of the request, so a
service several calls below a view (a key saved, a relay approved) and a Django admin action
(logged through LogEntry, which never sees the request) are recorded with it too. Outside a
request (a management command, a worker) the origin is simply empty.

Never recorded: passwords, API keys (only their masked form), message or job contents.
"""

import contextvars
import ipaddress
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.http import HttpRequest

from studio.accounts.models import AuditEvent

logger = logging.getLogger(__name__)

Action = AuditEvent.Action


@dataclass(frozen=True)
class Origin:
    ip: str | None
    user_agent: str

    @classmethod
    def of(cls, request: HttpRequest) -> "Origin":
        # REMOTE_ADDR only: a client sets X-Forwarded-For to whatever it likes. Behind a proxy,
        # have the proxy (or daphne's --proxy-headers) set REMOTE_ADDR.
        raw = str(request.META.get("REMOTE_ADDR") or "")
        try:
            ip: str | None = str(ipaddress.ip_address(raw))
        except ValueError:
            ip = None
        return cls(ip=ip, user_agent=str(request.META.get("HTTP_USER_AGENT") or "")[:300])


_current_origin: contextvars.ContextVar[Origin | None] = contextvars.ContextVar(
    "audit_origin", default=None
)


@contextmanager
def origin_from(request: HttpRequest) -> Iterator[None]:
    """Make `request`'s origin the one recorded by every audit event inside the block."""
    token = _current_origin.set(Origin.of(request))
    try:
        yield
    finally:
        _current_origin.reset(token)


def record(
    action: str,
    *,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    actor_name: str = "",
    target: str = "",
    data: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Write one audit event. `request` (when the caller has it) beats the ambient origin."""
    origin = Origin.of(request) if request is not None else _current_origin.get()
    user = actor if isinstance(actor, User) and actor.pk is not None else None
    return AuditEvent.objects.create(
        action=action,
        actor=user,
        actor_name=(actor_name or (user.get_username() if user else ""))[:150],
        target=target[:300],
        data=data or {},
        ip=origin.ip if origin else None,
        user_agent=origin.user_agent if origin else "",
    )


def describe_user(user: AbstractBaseUser) -> str:
    """How a user is named in an event's target (the id survives a rename or deletion)."""
    return f"{user.get_username()} (#{user.pk})"
