"""Per-user quotas, checked in the service layer before chat or a job reaches the relay.

chat.services calls `check_chat_allowed` and media_jobs.services `check_job_allowed`; both raise
`QuotaRefused`, whose message is shown to the user as it is (the chat bubble's error, the job
form's error). Staff are exempt when settings.QUOTAS_EXEMPT_STAFF is on (the default).
"""

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, User
from django.db import transaction
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from studio.accounts import audit, usage
from studio.accounts.models import DEFAULT_JOBS_AT_ONCE, Profile, Quota

MAX_LIST_ENTRIES = 100


class QuotaRefused(Exception):
    """The user's quota does not allow this; str() is the message for them."""

    code = "quota"


def is_exempt(user: AbstractBaseUser) -> bool:
    return bool(settings.QUOTAS_EXEMPT_STAFF and getattr(user, "is_staff", False))


def quota_of(user: AbstractBaseUser) -> Quota:
    """The user's quota, or an unsaved one holding the defaults (no limits, 4 jobs at once)."""
    return Quota.objects.filter(user_id=user.pk).first() or Quota(
        user_id=user.pk, jobs_at_once=DEFAULT_JOBS_AT_ONCE
    )


def model_allowed(quota: Quota, model: str) -> bool:
    patterns = [str(p).lower() for p in quota.allowed_models or []]
    return not patterns or any(fnmatchcase(model.lower(), pattern) for pattern in patterns)


def usable_models(user: AbstractBaseUser, models: list[str]) -> list[str]:
    """The relay's models this user may chat with (all of them for exempt staff)."""
    if is_exempt(user):
        return models
    quota = quota_of(user)
    return [model for model in models if model_allowed(quota, model)]


def check_chat_allowed(user: AbstractBaseUser, model: str) -> None:
    """Raise QuotaRefused when the user may not chat with `model` now."""
    if is_exempt(user):
        return
    quota = quota_of(user)
    if not model_allowed(quota, model):
        raise QuotaRefused(
            _("Your account may not use the model %(model)s. Allowed: %(allowed)s.")
            % {"model": model, "allowed": ", ".join(quota.allowed_models)}
        )
    limit = quota.tokens_per_month
    if limit is not None:
        used = usage.tokens_since(user.pk, usage.month_start())
        if used >= limit:
            renews = usage.next_month_start().date()
            raise QuotaRefused(
                _(
                    "You have used your %(limit)s tokens for this month. "
                    "The quota starts again on %(date)s."
                )
                % {
                    "limit": formats.number_format(limit, force_grouping=True),
                    "date": formats.date_format(renews),
                }
            )


def check_job_allowed(user: AbstractBaseUser, kind: str, *, running: int, label: str = "") -> None:
    """Raise QuotaRefused when the user may not start a `kind` job now; `running` is how many
    of their jobs are unfinished (media_jobs counts them)."""
    if is_exempt(user):
        return
    quota = quota_of(user)
    if quota.allowed_job_kinds and kind not in quota.allowed_job_kinds:
        raise QuotaRefused(
            _("Your account may not run %(kind)s jobs. Ask an administrator if you need them.")
            % {"kind": label or kind}
        )
    if running >= quota.jobs_at_once:
        raise QuotaRefused(
            _("You already have %(count)d jobs running; wait for one to finish.")
            % {"count": quota.jobs_at_once}
        )
    limit = quota.jobs_per_day
    if limit is not None and usage.jobs_since(user.pk, usage.day_start()) >= limit:
        raise QuotaRefused(
            ngettext(
                "You have reached your limit of %(limit)d job a day. Try again tomorrow.",
                "You have reached your limit of %(limit)d jobs a day. Try again tomorrow.",
                limit,
            )
            % {"limit": limit}
        )


def clean_list(values: Iterable[str]) -> list[str]:
    """Entries trimmed, without blanks or repeats, in the order given."""
    return list(dict.fromkeys(v.strip() for v in values if v and v.strip()))[:MAX_LIST_ENTRIES]


QUOTA_FIELDS = (
    "tokens_per_month",
    "jobs_per_day",
    "jobs_at_once",
    "allowed_models",
    "allowed_job_kinds",
)


@transaction.atomic
def save_quota(user: User, *, by: User, allow_site_key: bool, **limits: Any) -> Quota:
    """Set the user's quota (the QUOTA_FIELDS) and whether they may use the site key; the
    changes, old and new values, go to the audit log."""
    quota = Quota.objects.select_for_update().filter(user=user).first() or quota_of(user)
    profile, _created = Profile.objects.get_or_create(user=user)
    before = {name: getattr(quota, name) for name in QUOTA_FIELDS}
    before["allow_site_key"] = profile.allow_site_key
    for name in QUOTA_FIELDS:
        setattr(quota, name, limits[name])
    quota.allowed_models = clean_list(quota.allowed_models)
    quota.allowed_job_kinds = clean_list(quota.allowed_job_kinds)
    quota.save()
    if profile.allow_site_key != allow_site_key:
        profile.allow_site_key = allow_site_key
        profile.save(update_fields=["allow_site_key"])
    after = {name: getattr(quota, name) for name in QUOTA_FIELDS}
    after["allow_site_key"] = allow_site_key
    changes = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
    if changes:
        audit.record(
            audit.Action.QUOTA_CHANGED, actor=by, target=audit.describe_user(user), data=changes
        )
    return quota
