from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from studio.accounts.services import MissingCredential, relay_credentials_for
from studio.http import AuthenticatedHttpRequest


@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    try:
        relay_credentials_for(request.user)
        missing_key = None
    except MissingCredential as missing:
        missing_key = str(missing)
    return render(request, "chat/index.html", {"missing_key": missing_key})
