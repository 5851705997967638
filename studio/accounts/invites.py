"""One-time invite links: staff make one, the invitee picks a username and password with it.

The token is 256 random bits; only its SHA-256 is stored, so the database (or a backup) cannot
be used to sign up. A link works once and until it expires (settings.INVITE_EXPIRY_DAYS).
"""

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from studio.accounts import audit
from studio.accounts.models import Invite, Profile


class InviteInvalid(Exception):
    """Unknown, used or expired: the invitee is told the same for all three."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(*, by: User, note: str = "", allow_site_key: bool = False) -> tuple[Invite, str]:
    """A new invite and its token (the token is not kept: show the link now or never)."""
    token = secrets.token_urlsafe(32)
    invite = Invite.objects.create(
        token_hash=_hash(token),
        note=note.strip()[:200],
        allow_site_key=allow_site_key,
        created_by=by,
        expires_at=timezone.now() + timedelta(days=settings.INVITE_EXPIRY_DAYS),
    )
    audit.record(
        audit.Action.INVITE_CREATED,
        actor=by,
        target=invite.note or f"#{invite.pk}",
        data={"invite": invite.pk, "expires": invite.expires_at.isoformat()},
    )
    return invite, token


def pending_invite(token: str) -> Invite:
    """The invite this token opens, or InviteInvalid."""
    invite = Invite.objects.filter(token_hash=_hash(token)).first()
    if invite is None or not invite.is_pending:
        raise InviteInvalid()
    return invite


def accept(token: str, create_user: Callable[[], User]) -> User:
    """Create the invitee's account with `create_user` (a user-creation form's save), once.

    The invite row is locked, so two people racing with one link make one account.
    """
    with transaction.atomic():
        invite = Invite.objects.select_for_update().filter(token_hash=_hash(token)).first()
        if invite is None or not invite.is_pending:
            raise InviteInvalid()
        user = create_user()
        Profile.objects.update_or_create(
            user=user, defaults={"allow_site_key": invite.allow_site_key}
        )
        invite.used_at = timezone.now()
        invite.used_by = user
        invite.save(update_fields=["used_at", "used_by"])
        audit.record(
            audit.Action.INVITE_USED,
            actor=user,
            target=invite.note or f"#{invite.pk}",
            data={"invite": invite.pk},
        )
    return user


def revoke(invite: Invite, *, by: User) -> None:
    """Delete an unused invite: its link stops working."""
    target = invite.note or f"#{invite.pk}"
    invite.delete()
    audit.record(audit.Action.INVITE_REVOKED, actor=by, target=target)
