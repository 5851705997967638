"""The sign-in page with a lockout after repeated failures (counting in studio.ratelimit.lockout).

A locked-out attempt gets the same message, status and code path whether or not the username
exists: the password is not checked at all, for anyone, until the window ends.
"""

import math
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _

from studio.ratelimit import limiter, lockout

LOCKED_MESSAGE = _("Too many failed sign-in attempts. Try again in %(wait)s.")


class LockoutAuthenticationForm(AuthenticationForm):
    """Counts the attempt before AuthenticationForm.clean() checks the password."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.locked_for: float | None = None  # seconds, when this attempt was refused

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()  # a field is missing: no attempt to count
        limited = lockout.begin(self.request, username)
        if limited is not None:
            self.locked_for = limited.retry_after
            # What authenticate() would announce for a failure, so sign-in auditing sees it too.
            user_login_failed.send(
                sender=__name__, credentials={"username": username}, request=self.request
            )
            raise ValidationError(
                LOCKED_MESSAGE,
                code="locked",
                params={"wait": limiter.wait_text(limited.retry_after)},
            )
        cleaned = super().clean()  # raises for a wrong password: the hit stays counted
        lockout.succeeded(self.request, username)
        return cleaned


class AdminLockoutAuthenticationForm(LockoutAuthenticationForm, AdminAuthenticationForm):
    """/admin/login/ counts against the same username and address counters."""


class LoginView(auth_views.LoginView):
    """Django's LoginView with the lockout form; a locked-out answer is 429 with Retry-After
    (the page is the same form, the username kept and the message above it)."""

    authentication_form = LockoutAuthenticationForm

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        locked_for = getattr(form, "locked_for", None)
        if locked_for is not None:
            response.status_code = 429
            response["Retry-After"] = str(max(1, math.ceil(locked_for)))
        return response
