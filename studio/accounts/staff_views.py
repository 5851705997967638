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

from django.conf import settings
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
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_POST

from media_jobs.kinds import registry
from studio.accounts import charts, families, invites, quotas, relays, staff, usage
from studio.accounts.forms import AuditFilterForm, FamilyForm, InviteForm, QuotaForm, RelayForm
from studio.accounts.models import ApprovedRelay, AuditEvent, Invite, Profile
from studio.accounts.services import MissingCredential
from studio.http import AuthenticatedHttpRequest
from studio.upstream.families import FAMILIES, Family

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


# --- relay families ------------------------------------------------------------------------


def _family_or_404(slug: str) -> Family:
    family = FAMILIES.get(slug)
    if family is None:
        raise Http404("No such family")
    return family


def _family_forms(bound: FamilyForm | None = None) -> list[tuple[families.FamilyView, FamilyForm]]:
    rows = []
    for view in families.overview():
        if bound is not None and bound.family.slug == view.family.slug:
            form = bound
        else:
            initial: dict[str, Any] = {"enabled": view.enabled}
            initial.update({f"path__{name}": path for name, path in view.overrides.items()})
            initial.update({f"option__{name}": value for name, value in view.options.items()})
            form = FamilyForm(family=view.family, initial=initial)
        rows.append((view, form))
    return rows


def _render_families(
    request: AuthenticatedHttpRequest, bound: FamilyForm | None = None, status: int = 200
) -> HttpResponse:
    kinds_by_family: dict[str, list[str]] = {}
    for kind in registry().values():
        kinds_by_family.setdefault(kind.family, []).append(str(kind.label))
    return render(
        request,
        "accounts/staff/families.html",
        {
            "section": "families",
            "rows": [
                (view, form, kinds_by_family.get(view.family.slug, []))
                for view, form in _family_forms(bound)
            ],
            "default_enabled": settings.UPSTREAM_FAMILIES_ENABLED,
        },
        status=status,
    )


@staff_required
@require_GET
def family_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _render_families(request)


@staff_required
@require_POST
def family_save(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    family = _family_or_404(slug)
    form = FamilyForm(request.POST, family=family)
    if not form.is_valid():
        messages.error(
            request, _("%(family)s was not saved: see below.") % {"family": family.label}
        )
        return _render_families(request, bound=form, status=400)
    families.save(
        family,
        enabled=form.cleaned_data["enabled"],
        path_overrides=form.overrides,
        options=form.options,
        by=request.user,
    )
    messages.success(request, _("%(family)s is saved.") % {"family": family.label})
    return redirect(f"{reverse('staff:families')}#family-{family.slug}")


@login_required
@require_POST
async def family_probe(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    """Ask the relay whether the family's routes answer (one request that costs nothing)."""
    user = await request.auser()
    assert isinstance(user, User)  # login_required let only signed-in users through
    if not user.is_staff:
        raise Http404("No such page")
    family = _family_or_404(slug)
    try:
        result = await families.run_probe(family, by=user)
    except MissingCredential as missing:
        messages.error(request, str(missing))
    else:
        text = PROBE_MESSAGES[result.verdict] % {
            "family": family.label,
            "path": result.path,
            "status": result.status or "—",
            "ms": result.elapsed_ms,
        }
        (messages.success if result.ok else messages.error)(request, text)
    return redirect(f"{reverse('staff:families')}#family-{family.slug}")


PROBE_MESSAGES = {
    "answers": _lazy("%(family)s answers: %(path)s gave HTTP %(status)s in %(ms)d ms."),
    "not_mounted": _lazy(
        "%(family)s is not on this relay: %(path)s gave HTTP %(status)s (no such route). "
        "Leave the family off, or correct its paths."
    ),
    "key_refused": _lazy(
        "The relay refused your key for %(family)s (HTTP %(status)s at %(path)s)."
    ),
    "unreachable": _lazy(
        "%(family)s did not answer usefully: %(path)s gave %(status)s after %(ms)d ms."
    ),
}
