"""Audit receivers for what Django itself announces: sign-ins, failed sign-ins, sign-outs and the
Django admin's LogEntry rows. Connected in AccountsConfig.ready()."""

from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model, user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.http import HttpRequest
from django.utils import translation

from studio.accounts import audit

ADMIN_ACTIONS = {
    ADDITION: audit.Action.ADMIN_ADDED,
    CHANGE: audit.Action.ADMIN_CHANGED,
    DELETION: audit.Action.ADMIN_DELETED,
}


def on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit.record(audit.Action.SIGN_IN, actor=user, request=request)


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Only the name that was typed: Django masks the password already, and we never read it.
    typed = str(credentials.get(get_user_model().USERNAME_FIELD) or "")
    audit.record(audit.Action.SIGN_IN_FAILED, target=typed, request=request)


def on_logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record(audit.Action.SIGN_OUT, actor=user, request=request)


def record_admin_entry(entry: LogEntry) -> None:
    """One Django admin action (add, change, delete) as an audit event."""
    content_type = entry.content_type
    what = content_type.name if content_type else "object"
    with translation.override("en"):
        change = entry.get_change_message()
    audit.record(
        ADMIN_ACTIONS.get(entry.action_flag, audit.Action.ADMIN_CHANGED),
        actor=entry.user,
        target=f"{what}: {entry.object_repr}",
        data={
            "model": f"{content_type.app_label}.{content_type.model}" if content_type else "",
            "object_id": entry.object_id or "",
            "change": change,
        },
    )


def on_log_entry_saved(
    sender: Any, instance: LogEntry, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    # Single admin actions save one LogEntry; bulk deletions use bulk_create (no signal) and are
    # recorded by the admin classes (studio.accounts.admin.AuditedAdmin).
    if created and not raw:
        record_admin_entry(instance)


def connect() -> None:
    user_logged_in.connect(on_logged_in, dispatch_uid="accounts-audit-login")
    user_login_failed.connect(on_login_failed, dispatch_uid="accounts-audit-login-failed")
    user_logged_out.connect(on_logged_out, dispatch_uid="accounts-audit-logout")
    post_save.connect(on_log_entry_saved, sender=LogEntry, dispatch_uid="accounts-audit-admin")
