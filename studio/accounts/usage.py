"""Usage: what each user spent, recorded by chat (a reply's tokens) and media jobs (a job made),
and the sums quotas and the staff dashboard read.

Chat and media_jobs call the `record_*` functions; neither knows about the other (ARCHITECTURE.md
§1). "This month" and "today" are calendar periods in the site's TIME_ZONE.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from studio.accounts.models import UsageRecord

Source = UsageRecord.Source


# --- periods -------------------------------------------------------------------------------


def month_start(now: dt.datetime | None = None) -> dt.datetime:
    local = timezone.localtime(now)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: dt.datetime | None = None) -> dt.datetime:
    # zoneinfo datetimes do wall-clock arithmetic: this is local midnight on the 1st.
    return (month_start(now) + dt.timedelta(days=32)).replace(day=1)


def day_start(now: dt.datetime | None = None) -> dt.datetime:
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


# --- recording -----------------------------------------------------------------------------


def record_chat(
    user_id: int,
    *,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    estimated: bool,
    ref: str,
) -> None:
    """One finished chat reply (complete, stopped or failed with text). Recording the same reply
    (`ref`, its message id) twice keeps the first record."""
    _create(
        user_id=user_id,
        source=Source.CHAT,
        model=model[:200],
        prompt_tokens=max(0, prompt_tokens),
        completion_tokens=max(0, completion_tokens),
        estimated=estimated,
        ref=ref[:64],
    )


arecord_chat = sync_to_async(record_chat)


def record_job(user_id: int, *, kind: str, model: str = "", ref: str) -> None:
    """One job made (a new job, a retry, a follow-up action): what jobs-per-day counts."""
    _create(user_id=user_id, source=Source.JOB, kind=kind[:32], model=model[:200], jobs=1, ref=ref)


def _create(**fields: object) -> None:
    try:
        with transaction.atomic():  # a savepoint: a duplicate must not spoil the caller's work
            UsageRecord.objects.create(**fields)
    except IntegrityError:
        pass  # already recorded (unique source + ref)


# --- sums for quotas -----------------------------------------------------------------------

TOKENS = F("prompt_tokens") + F("completion_tokens")


def tokens_since(user_id: int, since: dt.datetime) -> int:
    rows = UsageRecord.objects.filter(user_id=user_id, source=Source.CHAT, at__gte=since)
    return int(rows.aggregate(total=Coalesce(Sum(TOKENS), 0))["total"])


def jobs_since(user_id: int, since: dt.datetime) -> int:
    rows = UsageRecord.objects.filter(user_id=user_id, source=Source.JOB, at__gte=since)
    return int(rows.aggregate(total=Coalesce(Sum("jobs"), 0))["total"])


# --- summaries for the dashboard -----------------------------------------------------------


@dataclass
class UsageSummary:
    """One user's (or the site's) usage over a period."""

    tokens_by_model: dict[str, int] = field(default_factory=dict)
    jobs_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return sum(self.tokens_by_model.values())

    @property
    def jobs(self) -> int:
        return sum(self.jobs_by_kind.values())

    def tokens_sorted(self) -> list[tuple[str, int]]:
        return sorted(self.tokens_by_model.items(), key=lambda item: (-item[1], item[0]))

    def jobs_sorted(self) -> list[tuple[str, int]]:
        return sorted(self.jobs_by_kind.items(), key=lambda item: (-item[1], item[0]))


def _grouped(records: QuerySet[UsageRecord], *extra: str) -> QuerySet[UsageRecord, dict]:
    return (
        records.values("source", "model", "kind", *extra)
        .annotate(token_sum=Coalesce(Sum(TOKENS), 0), job_sum=Coalesce(Sum("jobs"), 0))
        .order_by()
    )


def _add(summary: UsageSummary, row: dict) -> None:
    if row["source"] == Source.CHAT:
        name = row["model"] or "?"
        summary.tokens_by_model[name] = summary.tokens_by_model.get(name, 0) + row["token_sum"]
    else:
        name = row["kind"] or "?"
        summary.jobs_by_kind[name] = summary.jobs_by_kind.get(name, 0) + row["job_sum"]


def summaries_for(user_ids: Iterable[int], since: dt.datetime) -> dict[int, UsageSummary]:
    """Usage since `since` for each of these users, in ONE query (the users list uses it)."""
    ids = list(user_ids)
    result: dict[int, UsageSummary] = {pk: UsageSummary() for pk in ids}
    rows = _grouped(UsageRecord.objects.filter(user_id__in=ids, at__gte=since), "user_id")
    for row in rows:
        _add(result[row["user_id"]], row)
    return result


def site_summary(since: dt.datetime) -> UsageSummary:
    summary = UsageSummary()
    for row in _grouped(UsageRecord.objects.filter(at__gte=since)):
        _add(summary, row)
    return summary


@dataclass(frozen=True)
class UserTotal:
    user_id: int
    username: str
    tokens: int
    jobs: int


def top_users(since: dt.datetime, limit: int = 10) -> list[UserTotal]:
    """The users who used the most tokens since `since` (deleted users are left out)."""
    rows = (
        UsageRecord.objects.filter(at__gte=since, user__isnull=False)
        .values("user_id", "user__username")
        .annotate(token_sum=Coalesce(Sum(TOKENS), 0), job_sum=Coalesce(Sum("jobs"), 0))
        .order_by("-token_sum", "-job_sum", "user__username")
    )
    return [
        UserTotal(row["user_id"], row["user__username"], row["token_sum"], row["job_sum"])
        for row in rows[:limit]
    ]


@dataclass(frozen=True)
class DailySeries:
    """Values per day (oldest first) for each series name (a model or a job kind)."""

    days: list[dt.date]
    series: dict[str, list[int]]


def daily(*, user_id: int | None = None, days: int = 30, source: str = Source.CHAT) -> DailySeries:
    """Tokens per model (chat) or jobs per kind (job) for each of the last `days` local days,
    today included; one query."""
    today = timezone.localdate()
    first = today - dt.timedelta(days=days - 1)
    since = timezone.make_aware(dt.datetime.combine(first, dt.time.min))
    records = UsageRecord.objects.filter(source=source, at__gte=since)
    if user_id is not None:
        records = records.filter(user_id=user_id)
    name_field = "model" if source == Source.CHAT else "kind"
    value = Sum(TOKENS) if source == Source.CHAT else Sum("jobs")
    rows = (
        records.annotate(day=TruncDate("at", tzinfo=timezone.get_current_timezone()))
        .values("day", name_field)
        .annotate(value=Coalesce(value, 0))
        .order_by()
    )
    all_days = [first + dt.timedelta(days=offset) for offset in range(days)]
    index = {day: position for position, day in enumerate(all_days)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * days)
    for row in rows:
        position = index.get(row["day"])
        if position is not None:
            series[row[name_field] or "?"][position] += int(row["value"])
    return DailySeries(days=all_days, series=dict(series))
