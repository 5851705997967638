"""Chat pages and the small JSON endpoints the conversation page calls. Every view checks that
the conversation belongs to the signed-in user (someone else's is a 404)."""

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from chat import export, services
from chat.forms import ConversationSettingsForm
from chat.search import search_conversations
from chat.selectors import conversation_data, conversation_for, sidebar_groups
from studio.accounts.services import available_models, default_model, missing_key_message
from studio.http import AuthenticatedHttpRequest, login_required_json


def _page_context(request: AuthenticatedHttpRequest) -> dict[str, object]:
    showing_archived = request.GET.get("archived") == "1"
    return {
        "sidebar": sidebar_groups(request.user, archived=showing_archived),
        "showing_archived": showing_archived,
        "missing_key": missing_key_message(request.user),
        "models_url": reverse("chat:models"),
    }


@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "chat/index.html", _page_context(request))


@login_required
@require_POST
def new(request: AuthenticatedHttpRequest) -> HttpResponse:
    conversation = services.create_conversation(request.user, model=request.POST.get("model", ""))
    return redirect("chat:conversation", conversation_id=conversation.id)


def _urls(conversation_id: object) -> dict[str, str]:
    def url(name: str) -> str:
        return reverse(f"chat:{name}", kwargs={"conversation_id": conversation_id})

    return {
        "socket": f"/ws/chat/{conversation_id}/",
        "models": reverse("chat:models"),
        "settings": url("settings"),
        "rename": url("rename"),
        "branch": url("branch"),
        "archive": url("archive"),
        "delete": url("delete"),
        "export_md": url("export_md"),
        "export_json": url("export_json"),
        "delete_message": f"/chat/{conversation_id}/messages/{{id}}/delete/",
    }


@login_required
def conversation(request: AuthenticatedHttpRequest, conversation_id: str) -> HttpResponse:
    chat = conversation_for(request.user, conversation_id)
    services.mark_interrupted(conversation=chat)  # replies whose process died
    context = _page_context(request)
    context.update(
        conversation=chat,
        conversation_data=conversation_data(chat, _urls(chat.id)),
        settings_form=ConversationSettingsForm(
            initial={
                "model": chat.model,
                "system_prompt": chat.system_prompt,
                **chat.params,
                "stop": "\n".join(chat.params.get("stop", [])),
            }
        ),
    )
    return render(request, "chat/conversation.html", context)


@login_required_json
@require_POST
def rename(request: AuthenticatedHttpRequest, conversation_id: str) -> JsonResponse:
    chat = conversation_for(request.user, conversation_id)
    return JsonResponse({"ok": True, "title": services.rename(chat, request.POST.get("title", ""))})


@login_required_json
@require_POST
def archive(request: AuthenticatedHttpRequest, conversation_id: str) -> JsonResponse:
    chat = conversation_for(request.user, conversation_id)
    services.set_archived(chat, not chat.archived)
    return JsonResponse({"ok": True, "archived": chat.archived})


@login_required
def delete(request: AuthenticatedHttpRequest, conversation_id: str) -> HttpResponse:
    """GET asks for confirmation; POST deletes the conversation and all its messages."""
    chat = conversation_for(request.user, conversation_id)
    if request.method == "POST":
        chat.delete()
        return redirect("chat:index")
    return render(request, "chat/delete.html", {**_page_context(request), "conversation": chat})


@login_required_json
@require_POST
def update_settings(request: AuthenticatedHttpRequest, conversation_id: str) -> JsonResponse:
    chat = conversation_for(request.user, conversation_id)
    form = ConversationSettingsForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"ok": False, "errors": form.errors}, status=400)
    services.update_settings(chat, form.cleaned_data, form.params())
    return JsonResponse(
        {
            "ok": True,
            "conversation": {
                "model": chat.model,
                "system_prompt": chat.system_prompt,
                "params": chat.params,
            },
        }
    )


@login_required_json
@require_POST
def select_branch(request: AuthenticatedHttpRequest, conversation_id: str) -> JsonResponse:
    chat = conversation_for(request.user, conversation_id)
    try:
        services.select_branch(chat, request.POST.get("leaf_id"))
    except services.ChatRefused as refused:
        return JsonResponse({"ok": False, "error": refused.detail}, status=404)
    return JsonResponse({"ok": True})


@login_required_json
@require_POST
def delete_message(
    request: AuthenticatedHttpRequest, conversation_id: str, message_id: str
) -> JsonResponse:
    chat = conversation_for(request.user, conversation_id)
    try:
        deleted = services.delete_message(chat, message_id)
    except services.ChatRefused as refused:
        status = 404 if refused.code == "not_found" else 409
        return JsonResponse({"ok": False, "error": refused.detail}, status=status)
    return JsonResponse({"ok": True, "deleted": deleted})


def _download(body: str, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _filename(chat: object, extension: str) -> str:
    return f"{slugify(str(chat))[:60] or 'conversation'}.{extension}"


@login_required
@require_GET
def export_markdown(request: AuthenticatedHttpRequest, conversation_id: str) -> HttpResponse:
    chat = conversation_for(request.user, conversation_id)
    return _download(
        export.as_markdown(chat), "text/markdown; charset=utf-8", _filename(chat, "md")
    )


@login_required
@require_GET
def export_json(request: AuthenticatedHttpRequest, conversation_id: str) -> HttpResponse:
    chat = conversation_for(request.user, conversation_id)
    return _download(export.as_json(chat), "application/json", _filename(chat, "json"))


@login_required_json
@require_GET
async def models(request: AuthenticatedHttpRequest) -> JsonResponse:
    user = await request.auser()
    assert isinstance(user, User)
    listing = await available_models(user, refresh=request.GET.get("refresh") == "1")
    default = await _default_model(user, listing.models)
    return JsonResponse({"models": listing.models, "default": default, "error": listing.error})


async def _default_model(user: User, models: list[str]) -> str:
    chosen = await sync_to_async(default_model)(user)
    return chosen or (models[0] if models else "")


@login_required
@require_GET
def search(request: AuthenticatedHttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    results = search_conversations(request.user, query) if query else []
    context = {**_page_context(request), "query": query, "results": results}
    return render(request, "chat/search.html", context)
