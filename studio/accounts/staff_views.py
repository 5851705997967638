"""The staff dashboard under /staff/: users, quotas, usage charts, invites, relays, audit log.

Staff only: anyone else signed in gets a 404 (the pages do not exist for them), anonymous
visitors the sign-in page. Views parse, authorise and call one service (accounts.staff, quotas,
invites, relays); every change they make is written to the audit log by that service.
"""

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from studio.accounts import charts, invites, quotas, relays, staff, usage
from studio.accounts.forms import AuditFilterForm, InviteForm, QuotaForm, RelayForm
from studio.accounts.models import ApprovedRelay, AuditEvent, Invite, Profile
from studio.http import AuthenticatedHttpRequest

USERS_PER_PAGE = 50
EVENTS_PER_PAGE = 50
CHART_DAYS = 30

type View = Callable[..., HttpResponse]


def staff_required(view: View) -> View:
    @wraps(view)
    def check(request: AuthenticatedHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise Http404("No such page")
        return view(request, *args, **kwargs)

    return login_required(check)


def _charts(user_id: int | None) -> dict[str, charts.Chart]:
    tokens = usage.daily(user_id=user_id, days=CHART_DAYS, source=usage.Source.CHAT)
    jobs = usage.daily(user_id=user_id, days=CHART_DAYS, source=usage.Source.JOB)
    return {
        "tokens_chart": charts.stacked_bars(tokens, unit=_("tokens")),
        "jobs_chart": charts.stacked_bars(jobs, unit=_("jobs")),
    }


# --- users ---------------------------------------------------------------------------------


@staff_required
@require_GET
def users_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:150]
    status = request.GET.get("status", "")
    page = Paginator(staff.users(query=query, status=status), USERS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "accounts/staff/users.html",
        {
            "section": "users",
            "page": page,
            "rows": staff.rows(list(page.object_list), since=usage.month_start()),
            "query": query,
            "status": status,
            "page_query": urlencode({"q": query, "status": status}),
            "month": usage.month_start(),
        },
    )


def _target(user_id: int) -> User:
    user = staff.user_with_counts(user_id)
    if user is None:
        raise Http404("No such user")
    return user


def _quota_initial(user: User) -> dict[str, Any]:
    quota = quotas.quota_of(user)
    profile = Profile.objects.filter(user=user).first()
    return {
        "tokens_per_month": quota.tokens_per_month,
        "jobs_per_day": quota.jobs_per_day,
        "jobs_at_once": quota.jobs_at_once,
        "allowed_models": "\n".join(quota.allowed_models),
        "allowed_job_kinds": quota.allowed_job_kinds,
        "allow_site_key": bool(profile and profile.allow_site_key),
    }


@staff_required
def user_detail(request: AuthenticatedHttpRequest, user_id: int) -> HttpResponse:
    """One user: key and counts, this month's usage, charts, quota form (POST saves it)."""
    target = _target(user_id)
    form = QuotaForm(request.POST or None, initial=_quota_initial(target))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        quotas.save_quota(
            target,
            by=request.user,
            allow_site_key=data["allow_site_key"],
            **{name: data[name] for name in quotas.QUOTA_FIELDS},
        )
        messages.success(
            request, _("The quota of %(name)s was saved.") % {"name": target.get_username()}
        )
        return redirect("staff:user", user_id=target.pk)
    row = staff.rows([target], since=usage.month_start())[0]
    return render(
        request,
        "accounts/staff/user_detail.html",
        {
            "section": "users",
            "target": target,
            "row": row,
            "form": form,
            "can_manage": staff.can_manage(request.user, target),
            "exempt": quotas.is_exempt(target),
            "events": AuditEvent.objects.filter(actor=target)[:10],
            "month": usage.month_start(),
            **_charts(target.pk),
        },
        status=400 if form.errors else 200,
    )


@staff_required
@require_POST
def user_active(request: AuthenticatedHttpRequest, user_id: int) -> HttpResponse:
    target = _target(user_id)
    if not staff.can_manage(request.user, target):
        messages.error(request, _("You cannot change this account."))
        return redirect("staff:user", user_id=target.pk)
    active = request.POST.get("active") == "1"
    if staff.set_active(target, active, by=request.user):
        if active:
            message = _("%(name)s can sign in again.")
        else:
            message = _("%(name)s is deactivated and can no longer sign in.")
        messages.success(request, message % {"name": target.get_username()})
    return redirect("staff:user", user_id=target.pk)


@staff_required
def user_delete(request: AuthenticatedHttpRequest, user_id: int) -> HttpResponse:
    """GET asks for confirmation (saying what goes with the account); POST deletes."""
    target = _target(user_id)
    if not staff.can_manage(request.user, target):
        messages.error(request, _("You cannot delete this account."))
        return redirect("staff:user", user_id=target.pk)
    if request.method == "POST":
        name = target.get_username()
        staff.delete_user(target, by=request.user)
        messages.success(request, _("The account %(name)s was deleted.") % {"name": name})
        return redirect("staff:users")
    return render(
        request, "accounts/staff/user_delete.html", {"section": "users", "target": target}
    )


# --- site usage ----------------------------------------------------------------------------


@staff_required
@require_GET
def site_usage(request: AuthenticatedHttpRequest) -> HttpResponse:
    since = usage.month_start()
    return render(
        request,
        "accounts/staff/usage.html",
        {
            "section": "usage",
            "month": since,
            "summary": usage.site_summary(since),
            "top_users": usage.top_users(since),
            **_charts(None),
        },
    )


# --- invites -------------------------------------------------------------------------------


@staff_required
def invite_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Invites made so far; POST makes one and shows its link, this once."""
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        invite, token = invites.create_invite(
            by=request.user,
            note=form.cleaned_data["note"],
            allow_site_key=form.cleaned_data["allow_site_key"],
        )
        link = request.build_absolute_uri(reverse("accounts:invite", kwargs={"token": token}))
        response = render(
            request,
            "accounts/staff/invite_created.html",
            {"section": "invites", "invite": invite, "link": link},
        )
        response["Cache-Control"] = "no-store"  # the link must not linger in a cache
        return response
    page = Paginator(
        Invite.objects.select_related("created_by", "used_by"), USERS_PER_PAGE
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "accounts/staff/invites.html",
        {"section": "invites", "form": form, "page": page},
        status=400 if form.errors else 200,
    )


@staff_required
@require_POST
def invite_revoke(request: AuthenticatedHttpRequest, invite_id: int) -> HttpResponse:
    invite = get_object_or_404(Invite, pk=invite_id, used_at__isnull=True)
    invites.revoke(invite, by=request.user)
    messages.success(request, _("The invite was revoked; its link no longer works."))
    return redirect("staff:invites")


# --- relays --------------------------------------------------------------------------------


@staff_required
def relay_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = RelayForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            relays.add_relay(
                form.cleaned_data["url"], note=form.cleaned_data["note"], by=request.user
            )
        except ValidationError as error:
            form.add_error("url", error)
        else:
            messages.success(request, _("%(url)s is approved.") % {"url": form.cleaned_data["url"]})
            return redirect("staff:relays")
    keys = relays.keys_per_relay()
    environment = relays.environment_base_urls()
    approved = list(ApprovedRelay.objects.select_related("added_by"))
    allowed = {*environment, *(relay.url for relay in approved)}
    return render(
        request,
        "accounts/staff/relays.html",
        {
            "section": "relays",
            "form": form,
            "environment": [(url, keys.get(url, 0)) for url in environment],
            "approved": [(relay, keys.get(relay.url, 0)) for relay in approved],
            "orphaned_keys": sum(count for url, count in keys.items() if url not in allowed),
        },
        status=400 if form.errors else 200,
    )


@staff_required
@require_POST
def relay_remove(request: AuthenticatedHttpRequest, relay_id: int) -> HttpResponse:
    relay = get_object_or_404(ApprovedRelay, pk=relay_id)
    relays.remove_relay(relay, by=request.user)
    messages.success(request, _("%(url)s was removed from the list.") % {"url": relay.url})
    return redirect("staff:relays")


# --- audit log -----------------------------------------------------------------------------


@staff_required
@require_GET
def audit_log(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    events = AuditEvent.objects.all()
    if form.is_valid():
        events = _filtered(events, form.cleaned_data)
    page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "accounts/staff/audit.html",
        {"section": "audit", "form": form, "page": page, "page_query": query.urlencode()},
        status=400 if form.errors else 200,
    )


def _filtered(events: QuerySet[AuditEvent], filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    if filters.get("action"):
        events = events.filter(action=filters["action"])
    if who := filters.get("who", "").strip():
        # A failed sign-in has no actor: the name that was typed is its target.
        failed = Q(action=AuditEvent.Action.SIGN_IN_FAILED, target__iexact=who)
        events = events.filter(Q(actor_name__iexact=who) | failed)
    if filters.get("q"):
        events = events.filter(target__icontains=filters["q"].strip())
    tz = timezone.get_current_timezone()
    if filters.get("since"):
        events = events.filter(at__gte=dt.datetime.combine(filters["since"], dt.time.min, tz))
    if filters.get("until"):
        events = events.filter(at__lte=dt.datetime.combine(filters["until"], dt.time.max, tz))
    return events
