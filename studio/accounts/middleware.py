"""Request-wide behaviour of accounts: the user's saved language, and the audit log's origin."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.utils import translation

from studio.accounts import audit
from studio.accounts.models import Profile


class UserLanguageMiddleware:
    """Activate the language saved on the user's Profile, if any.

    Runs after AuthenticationMiddleware and so overrides what LocaleMiddleware picked from the
    cookie or Accept-Language. Anonymous users, and users who never chose, keep LocaleMiddleware's
    choice. One query per request for signed-in users; no Profile is created here.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        language = None
        if request.user.is_authenticated:
            language = activate(request, saved_language(request.user.pk))
        response = self.get_response(request)
        remember_in_cookie(request, response, language)
        return response

    async def __acall__(self, request):
        # Under ASGI the lazy request.user would query the database from the event loop.
        user = await request.auser()
        language = None
        if user.is_authenticated:
            language = activate(request, await asaved_language(user.pk))
        response = await self.get_response(request)
        remember_in_cookie(request, response, language)
        return response


def _saved_language_query(user_id):
    return Profile.objects.filter(user_id=user_id).values_list("language", flat=True)


def saved_language(user_id) -> str | None:
    return _saved_language_query(user_id).first()


async def asaved_language(user_id) -> str | None:
    return await _saved_language_query(user_id).afirst()


def activate(request, language: str | None) -> str | None:
    """Activate a saved language; return it, or None when there is nothing valid to apply."""
    # A code dropped from LANGUAGES since it was saved is ignored rather than half-activated.
    if not language or language not in dict(settings.LANGUAGES):
        return None
    translation.activate(language)
    request.LANGUAGE_CODE = translation.get_language()
    return language


def remember_in_cookie(request, response, language: str | None) -> None:
    """Copy the saved language into the cookie, so pages after sign-out keep it too."""
    name = settings.LANGUAGE_COOKIE_NAME
    # The switch view sets the cookie to the new choice itself; never overwrite that with the
    # value read before the view saved it.
    if not language or request.COOKIES.get(name) == language or name in response.cookies:
        return
    response.set_cookie(
        name,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


class AuditOriginMiddleware:
    """Remember the request's IP address and browser for every audit event written while it is
    handled (see studio.accounts.audit): the services that record events never see the request."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        with audit.origin_from(request):
            return self.get_response(request)

    async def __acall__(self, request):
        with audit.origin_from(request):
            return await self.get_response(request)
