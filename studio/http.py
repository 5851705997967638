"""Request type for views behind @login_required (lets mypy know request.user is a User)."""

from django.contrib.auth.models import User
from django.http import HttpRequest


class AuthenticatedHttpRequest(HttpRequest):
    user: User
