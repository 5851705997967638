"""The /settings/ page: the user's relay and API key (saved encrypted, shown masked, verified);
and the page of a one-time invite link, where an invitee makes their account."""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from studio.accounts import invites, services
from studio.accounts.forms import InviteAcceptForm, RelayCredentialForm
from studio.accounts.models import Profile, RelayCredential
from studio.http import AuthenticatedHttpRequest


def _credential(user: User) -> RelayCredential | None:
    return RelayCredential.objects.filter(user=user).first()


@login_required
def settings_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    credential = _credential(request.user)
    initial = {"base_url": credential.base_url if credential else settings.UPSTREAM_BASE_URL}
    form = RelayCredentialForm(
        request.POST or None, initial=initial, has_key=credential is not None
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.save_credential(
                request.user,
                base_url=form.cleaned_data["base_url"],
                api_key=form.cleaned_data["api_key"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Saved. Use Verify to check the key with the relay."))
            return redirect("accounts:settings")
    status = 400 if form.errors else 200
    return render(
        request,
        "accounts/settings.html",
        {
            "form": form,
            "credential": credential,
            "relays": services.allowed_base_urls(),
            "site_key_allowed": services.site_key_allowed(request.user),
            "default_model": services.default_model(request.user),
        },
        status=status,
    )


@login_required
@require_POST
async def verify_key(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = await request.auser()
    assert isinstance(user, User)  # login_required let only signed-in users through
    credential = await sync_to_async(_credential)(user)
    if credential is None:
        messages.error(request, _("There is no saved key to verify."))
        return redirect("accounts:settings")
    outcome = await services.verify_credential(credential)
    if outcome.ok:
        count = outcome.model_count or 0
        messages.success(
            request,
            ngettext(
                "The key works: %(count)d model is available.",
                "The key works: %(count)d models are available.",
                count,
            )
            % {"count": count},
        )
    else:
        messages.error(request, outcome.message)
    return redirect("accounts:settings")


@login_required
@require_POST
def default_model(request: AuthenticatedHttpRequest) -> HttpResponse:
    model = " ".join(request.POST.get("default_model", "").split())[:200]
    Profile.objects.update_or_create(user=request.user, defaults={"default_model": model})
    if model:
        messages.success(
            request, _("New conversations will start with %(model)s.") % {"model": model}
        )
    else:
        messages.success(request, _("New conversations will start with the relay's first model."))
    return redirect("accounts:settings")


@login_required
def remove_key(request: AuthenticatedHttpRequest) -> HttpResponse:
    """GET asks for confirmation; POST removes the key."""
    credential = _credential(request.user)
    if credential is None:
        return redirect("accounts:settings")
    if request.method == "POST":
        services.remove_credential(request.user)
        messages.success(request, _("Your API key was removed."))
        return redirect("accounts:settings")
    return render(request, "accounts/remove_key.html", {"credential": credential})


def invite(request: HttpRequest, token: str) -> HttpResponse:
    """A one-time invite link: choose a username and password, then land on Settings signed in.

    Unknown, used and expired links all get the same 404 page.
    """
    try:
        invites.pending_invite(token)
    except invites.InviteInvalid:
        return _no_store(render(request, "accounts/invite_invalid.html", status=404))
    if request.user.is_authenticated:
        return _no_store(render(request, "accounts/invite.html", {"signed_in": True}))
    form = InviteAcceptForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = invites.accept(token, form.save)
        except invites.InviteInvalid:
            return _no_store(render(request, "accounts/invite_invalid.html", status=404))
        except IntegrityError:  # the name was taken between the check and the save
            form.add_error("username", _("A user with that username already exists."))
        else:
            login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
            messages.success(
                request,
                _("Welcome, %(name)s. Add your relay API key to start.")
                % {"name": user.get_username()},
            )
            return redirect("accounts:settings")
    status = 400 if form.errors else 200
    return _no_store(render(request, "accounts/invite.html", {"form": form}, status=status))


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # the page's URL is a secret
    return response
