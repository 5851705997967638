"""Request type for views behind @login_required (lets mypy know request.user is a User), and
the sign-in check for JSON endpoints."""

from collections.abc import Awaitable, Callable
from functools import wraps
from inspect import iscoroutinefunction
from typing import Any, cast

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils.translation import gettext as _


class AuthenticatedHttpRequest(HttpRequest):
    user: User


def _signed_out() -> JsonResponse:
    return JsonResponse(
        {"ok": False, "error": _("You are signed out. Sign in again and retry.")}, status=401
    )


def login_required_json[View: Callable[..., HttpResponseBase | Awaitable[HttpResponseBase]]](
    view: View,
) -> View:
    """@login_required for endpoints that pages call with fetch(): an anonymous caller gets a
    401 JSON answer instead of a redirect to the sign-in page, which fetch() would follow and
    then fail to read as JSON (and which would look like success: 200)."""
    if iscoroutinefunction(view):

        @wraps(view)
        async def check_async(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not (await request.auser()).is_authenticated:
                return _signed_out()
            return await view(request, *args, **kwargs)

        return cast(View, check_async)

    @wraps(view)
    def check(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            return _signed_out()
        return view(request, *args, **kwargs)

    return cast(View, check)
