"""Playground pages: a legacy completion streamed into the page, and embeddings compared.

The completion page works without JavaScript (the form posts and the whole text comes back);
playground.js instead posts to `completion_stream` and shows the text as it arrives.
"""

import json
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from playground import exports, results, services
from playground.forms import CompletionForm, EmbeddingForm
from playground.results import EmbeddingRun
from playground.similarity import shade
from studio.accounts.services import missing_key_message
from studio.http import login_required_json

PREVIEW_NUMBERS = 6  # how many numbers of each vector the page shows


async def _user(request: HttpRequest) -> User:
    user = await request.auser()
    assert isinstance(user, User)  # behind login_required
    return user


async def _render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    # In a thread: the base template reads request.user, the session and messages, which
    # may query the database (not allowed on the event loop).
    return await sync_to_async(render)(request, template, context, status=status)


async def _page_context(user: User) -> dict[str, Any]:
    return {
        "missing_key": await sync_to_async(missing_key_message)(user),
        "models_url": reverse("chat:models"),
    }


# --- completions -----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
async def completions(request: HttpRequest) -> HttpResponse:
    user = await _user(request)
    form = CompletionForm(request.POST if request.method == "POST" else None)
    outcome: services.CompletionOutcome | None = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                outcome = await services.complete(await _completion_call(user, form))
            except services.PlaygroundRefused as refused:
                form.add_error(None, refused.detail)
                status = refused.status
        else:
            status = 400
    context = {**await _page_context(user), "form": form, "outcome": outcome}
    return await _render(request, "playground/completions.html", context, status)


@login_required_json
@require_POST
async def completion_stream(request: HttpRequest) -> HttpResponseBase:
    """The completion as newline-delimited JSON events (see services.stream_completion).

    What can be refused before the relay is asked is answered with an error status and a JSON
    body instead: {"errors": {field: [{message, code}]}} or {"code", "error", "retry_after"}.
    """
    user = await _user(request)
    form = CompletionForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"ok": False, "errors": form.errors.get_json_data()}, status=400)
    try:
        call = await _completion_call(user, form)
    except services.PlaygroundRefused as refused:
        response = JsonResponse(
            {
                "ok": False,
                "code": refused.code,
                "error": refused.detail,
                "retry_after": refused.retry_after,
            },
            status=refused.status,
        )
        if refused.retry_after is not None:
            response["Retry-After"] = str(refused.retry_after)
        return response
    streaming = StreamingHttpResponse(
        _ndjson(services.stream_completion(call)), content_type="application/x-ndjson"
    )
    streaming["Cache-Control"] = "no-store"
    streaming["X-Accel-Buffering"] = "no"  # nginx: pass each piece on at once
    return streaming


async def _completion_call(user: User, form: CompletionForm) -> services.CompletionCall:
    model = form.cleaned_data["model"]
    credentials = await services.admit(user, model)
    return services.CompletionCall(
        user_id=user.pk,
        credentials=credentials,
        model=model,
        prompt=form.cleaned_data["prompt"],
        params=form.params(),
    )


async def _ndjson(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for event in events:
        yield json.dumps(event, ensure_ascii=False).encode("utf-8") + b"\n"


# --- embeddings ------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@never_cache
async def embeddings(request: HttpRequest) -> HttpResponse:
    """GET: the form and the user's last result. POST: embed, then back to GET (a reload
    does not send the texts again)."""
    user = await _user(request)
    if request.method == "POST":
        form = EmbeddingForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                credentials = await services.admit(user, data["model"])
                await services.embed(
                    user, credentials, data["model"], data["input"], dimensions=data["dimensions"]
                )
            except services.PlaygroundRefused as refused:
                form.add_error(None, refused.detail)
            else:
                return redirect("playground:embeddings")
        run = await sync_to_async(results.load_last)(user)
        context = {**await _page_context(user), "form": form, "result": _result_view(run)}
        return await _render(request, "playground/embeddings.html", context, 400)
    run = await sync_to_async(results.load_last)(user)
    initial = {}
    if run is not None:
        initial = {
            "model": run.model,
            "input": "\n".join(run.texts),
            "dimensions": run.requested_dimensions,
        }
    context = {
        **await _page_context(user),
        "form": EmbeddingForm(initial=initial),
        "result": _result_view(run),
    }
    return await _render(request, "playground/embeddings.html", context)


def _result_view(run: EmbeddingRun | None) -> dict[str, Any] | None:
    """What the template shows of a result: previews and the similarity table's cells."""
    if run is None:
        return None
    rows = []
    for index, (text, vector, similarities) in enumerate(
        zip(run.texts, run.vectors, run.similarity, strict=True), start=1
    ):
        rows.append(
            {
                "number": index,
                "text": text,
                "preview": ", ".join(
                    formats.number_format(value, 4) for value in vector[:PREVIEW_NUMBERS]
                ),
                "cells": [
                    {"value": _two_decimals(value), "shade": shade(value)} for value in similarities
                ],
            }
        )
    return {"run": run, "rows": rows, "more": run.dimensions > PREVIEW_NUMBERS}


def _two_decimals(value: float) -> str:
    return formats.number_format(0.0 if abs(value) < 0.005 else value, 2)  # never "-0.00"


@login_required
@require_GET
async def download_json(request: HttpRequest) -> HttpResponse:
    run = await _last_run(request)
    return _attachment(exports.as_json(run), "application/json", exports.filename(run, "json"))


@login_required
@require_GET
async def download_csv(request: HttpRequest) -> HttpResponse:
    run = await _last_run(request)
    return _attachment(exports.as_csv(run), "text/csv; charset=utf-8", exports.filename(run, "csv"))


async def _last_run(request: HttpRequest) -> EmbeddingRun:
    run = await sync_to_async(results.load_last)(await _user(request))
    if run is None:
        raise Http404("No embedding result to download")
    return run


def _attachment(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    return response
