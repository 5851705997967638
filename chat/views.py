from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from studio.accounts.services import missing_key_message
from studio.http import AuthenticatedHttpRequest


@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "chat/index.html", {"missing_key": missing_key_message(request.user)})
