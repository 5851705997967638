"""The language switch: remember the choice on the Profile as well as in the cookie."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.translation import gettext as _
from django.views import i18n
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from studio.accounts.models import Profile


@require_POST
@csrf_protect
def set_language(request: HttpRequest) -> HttpResponse:
    """Save the chosen language, then let Django set the cookie and redirect safely.

    An unknown code answers 400 instead of redirecting: the switch only offers LANGUAGES, so
    a bad code comes from a hand-made or tampered request, and Django's own view would ignore it
    silently, leaving the user wondering why nothing changed.
    """
    code = request.POST.get(i18n.LANGUAGE_QUERY_PARAMETER, "")
    if code not in dict(settings.LANGUAGES):
        return HttpResponseBadRequest(
            _("Unknown language."), content_type="text/plain; charset=utf-8"
        )
    if request.user.is_authenticated:
        Profile.objects.update_or_create(user=request.user, defaults={"language": code})
    return i18n.set_language(request)
