"""What staff see of users and do to them: the users list (constant query count), counts of
conversations and jobs (never their contents), deactivation, deletion.

Conversations and jobs belong to the chat and media_jobs apps, which build on accounts; they are
counted through `apps.get_model` at call time, never imported here.
"""

from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.contrib.auth.models import User
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from studio.accounts import audit, usage
from studio.accounts.models import Profile, RelayCredential


def _count_of(app_label: str, model_name: str) -> Coalesce:
    """A subquery counting the rows of app_label.model_name owned by each user."""
    model = apps.get_model(app_label, model_name)
    counted = (
        model.objects.filter(user=OuterRef("pk"))
        .order_by()
        .values("user")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def users(*, query: str = "", status: str = "") -> QuerySet[User]:
    """Users with their profile, key (masked data only is read) and content counts, one query."""
    found = (
        User.objects.select_related("profile", "relay_credential")
        .annotate(
            conversation_count=_count_of("chat", "Conversation"),
            job_count=_count_of("media_jobs", "Job"),
        )
        .order_by("username")
    )
    if query:
        found = found.filter(Q(username__icontains=query) | Q(email__icontains=query))
    if status == "active":
        found = found.filter(is_active=True)
    elif status == "inactive":
        found = found.filter(is_active=False)
    elif status == "staff":
        found = found.filter(is_staff=True)
    return found


def user_with_counts(user_id: int | str) -> User | None:
    return users().filter(pk=user_id).first()


@dataclass(frozen=True)
class UserRow:
    user: User
    credential: RelayCredential | None
    site_key_allowed: bool
    month: usage.UsageSummary
    conversation_count: int
    job_count: int


def _related_or_none(user: User, name: str) -> object | None:
    # A reverse one-to-one loaded by select_related raises when there is no row.
    try:
        return getattr(user, name)
    except (Profile.DoesNotExist, RelayCredential.DoesNotExist):
        return None


def rows(page_users: list[User], *, since: datetime) -> list[UserRow]:
    """The users list's rows for one page of `users()`: one more query, whatever the count."""
    summaries = usage.summaries_for([u.pk for u in page_users], since)
    result = []
    for user in page_users:
        profile = _related_or_none(user, "profile")
        credential = _related_or_none(user, "relay_credential")
        result.append(
            UserRow(
                user=user,
                credential=credential if isinstance(credential, RelayCredential) else None,
                site_key_allowed=bool(getattr(profile, "allow_site_key", False)),
                month=summaries[user.pk],
                conversation_count=getattr(user, "conversation_count", 0),
                job_count=getattr(user, "job_count", 0),
            )
        )
    return result


def can_manage(actor: User, target: User) -> bool:
    """Whether `actor` may deactivate or delete `target`: never themselves, and only a
    superuser may do it to another staff member or superuser."""
    if actor.pk == target.pk:
        return False
    return actor.is_superuser or not (target.is_staff or target.is_superuser)


def set_active(target: User, active: bool, *, by: User) -> bool:
    """Deactivate (the user can no longer sign in; open sessions end at their next request)
    or reactivate. Returns False when nothing changed."""
    if target.is_active == active:
        return False
    target.is_active = active
    target.save(update_fields=["is_active"])
    action = audit.Action.USER_REACTIVATED if active else audit.Action.USER_DEACTIVATED
    audit.record(action, actor=by, target=audit.describe_user(target))
    return True


def delete_user(target: User, *, by: User) -> None:
    """Delete the account and everything it owns (conversations, jobs, key). Its usage records
    stay, without the user, so the site's totals remain true."""
    described = audit.describe_user(target)
    data = {
        "conversations": getattr(target, "conversation_count", None),
        "jobs": getattr(target, "job_count", None),
    }
    target.delete()
    audit.record(audit.Action.USER_DELETED, actor=by, target=described, data=data)
