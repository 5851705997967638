"""Chat pages and JSON endpoints: owner checks, settings validation, branches, exports."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.models import Conversation, Message
from studio.accounts.models import Profile

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(user):
    return Conversation.objects.create(user=user, model="gpt-4o", title="Picnic plans")


def add(chat, role, content, parent=None, **extra):
    return Message.objects.create(
        conversation=chat, role=role, content=content, parent=parent, **extra
    )


def test_new_chat_redirects_to_the_conversation(signed_in, user):
    Profile.objects.create(user=user, default_model="gpt-4o-mini")
    response = signed_in.post("/chat/new/")
    chat = Conversation.objects.get(user=user)
    assert response.status_code == 302
    assert response["Location"] == f"/chat/{chat.id}/"
    assert chat.model == "gpt-4o-mini"  # the user's default model


def test_new_chat_is_post_only(signed_in):
    assert signed_in.get("/chat/new/").status_code == 405


def test_conversation_page_carries_its_messages(signed_in, chat):
    question = add(chat, "user", "Where shall we go?")
    add(chat, "assistant", "To the <b>lake</b>.", parent=question)
    page = signed_in.get(f"/chat/{chat.id}/").content.decode()
    assert 'id="conversation-data"' in page
    assert "Where shall we go?" in page
    assert "<b>lake</b>" not in page  # json_script escapes model output


def test_loading_a_long_conversation_takes_a_constant_number_of_queries(signed_in, chat):
    def queries_for_page():
        with CaptureQueriesContext(connection) as captured:
            assert signed_in.get(f"/chat/{chat.id}/").status_code == 200
        return len(captured)

    parent = None
    for index in range(4):
        parent = add(chat, "user" if index % 2 == 0 else "assistant", f"m{index}", parent=parent)
    few = queries_for_page()
    for index in range(4, 200):
        parent = add(chat, "user" if index % 2 == 0 else "assistant", f"m{index}", parent=parent)
    assert queries_for_page() == few


def test_sidebar_groups_conversations_by_day(signed_in, user, chat):
    old = Conversation.objects.create(user=user, title="Ancient history")
    Conversation.objects.filter(pk=old.pk).update(updated_at="2020-01-01T00:00:00Z")
    page = signed_in.get("/chat/").content.decode()
    assert page.index("Today") < page.index("Picnic plans") < page.index("Older")
    assert page.index("Older") < page.index("Ancient history")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/chat/{id}/"),
        ("post", "/chat/{id}/rename/"),
        ("post", "/chat/{id}/archive/"),
        ("get", "/chat/{id}/delete/"),
        ("post", "/chat/{id}/delete/"),
        ("post", "/chat/{id}/settings/"),
        ("post", "/chat/{id}/branch/"),
        ("get", "/chat/{id}/export.md"),
        ("get", "/chat/{id}/export.json"),
    ],
)
def test_another_user_gets_404_everywhere(client, chat, other_user, method, path):
    client.force_login(other_user)
    response = getattr(client, method)(path.format(id=chat.id))
    assert response.status_code == 404
    assert Conversation.objects.filter(pk=chat.pk).exists()


def test_another_user_cannot_delete_a_message(client, chat, other_user):
    message = add(chat, "user", "mine")
    client.force_login(other_user)
    response = client.post(f"/chat/{chat.id}/messages/{message.id}/delete/")
    assert response.status_code == 404
    assert Message.objects.filter(pk=message.pk).exists()


@pytest.mark.parametrize("path", ["/chat/", "/chat/{id}/", "/chat/{id}/export.json"])
def test_anonymous_is_sent_to_sign_in(client, chat, path):
    response = client.get(path.format(id=chat.id))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_rename_and_archive(signed_in, chat):
    response = signed_in.post(f"/chat/{chat.id}/rename/", {"title": "  Lake   trip "})
    assert response.json() == {"ok": True, "title": "Lake trip"}
    assert signed_in.post(f"/chat/{chat.id}/archive/").json()["archived"] is True
    assert "Lake trip" not in signed_in.get("/chat/").content.decode()  # archived: off the list
    assert "Lake trip" in signed_in.get("/chat/?archived=1").content.decode()


def test_delete_asks_then_deletes_everything(signed_in, chat):
    add(chat, "user", "bye")
    assert "Delete this conversation?" in signed_in.get(f"/chat/{chat.id}/delete/").content.decode()
    assert signed_in.post(f"/chat/{chat.id}/delete/").status_code == 302
    assert not Conversation.objects.filter(pk=chat.pk).exists()
    assert not Message.objects.filter(conversation_id=chat.pk).exists()


def test_settings_are_validated_and_saved(signed_in, chat):
    bad = signed_in.post(
        f"/chat/{chat.id}/settings/",
        {"temperature": "3", "top_p": "-1", "stop": "a\nb\nc\nd\ne", "max_tokens": "0"},
    )
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"temperature", "top_p", "stop", "max_tokens"}
    good = signed_in.post(
        f"/chat/{chat.id}/settings/",
        {"model": "gpt-4o-mini", "system_prompt": "Be brief.", "temperature": "0.4", "stop": "END"},
    )
    assert good.json()["ok"] is True
    chat.refresh_from_db()
    assert chat.model == "gpt-4o-mini"
    assert chat.system_prompt == "Be brief."
    assert chat.params == {"temperature": 0.4, "stop": ["END"]}


def test_branch_selection_is_remembered(signed_in, chat):
    question = add(chat, "user", "Q")
    first = add(chat, "assistant", "A1", parent=question)
    add(chat, "assistant", "A2", parent=question)
    assert signed_in.post(f"/chat/{chat.id}/branch/", {"leaf_id": first.id}).json()["ok"]
    chat.refresh_from_db()
    assert chat.current_leaf_id == first.id


def test_deleting_a_message_removes_its_subtree(signed_in, chat):
    question = add(chat, "user", "Q")
    answer = add(chat, "assistant", "A", parent=question)
    follow_up = add(chat, "user", "Q2", parent=answer)
    response = signed_in.post(f"/chat/{chat.id}/messages/{answer.id}/delete/")
    assert set(response.json()["deleted"]) == {str(answer.id), str(follow_up.id)}
    assert list(chat.messages.values_list("id", flat=True)) == [question.id]


def test_exports(signed_in, chat):
    question = add(chat, "user", "Where?")
    add(chat, "assistant", "The lake.", parent=question, model="gpt-4o")
    markdown = signed_in.get(f"/chat/{chat.id}/export.md")
    assert markdown["Content-Disposition"] == 'attachment; filename="picnic-plans.md"'
    body = markdown.content.decode()
    assert body.startswith("# Picnic plans")
    assert body.index("Where?") < body.index("The lake.")
    exported = json.loads(signed_in.get(f"/chat/{chat.id}/export.json").content)
    assert [m["content"] for m in exported["messages"]] == ["Where?", "The lake."]


def test_models_list_comes_from_the_relay_and_is_cached(signed_in, user, settings, simulator):
    from studio.accounts.models import RelayCredential

    # 127.0.0.1:9 (discard: nothing listens) is approved too, to stand for a relay that is down.
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url, "http://127.0.0.1:9"]
    credential = RelayCredential(user=user, base_url=simulator.url)
    credential.set_api_key(simulator.key)
    credential.save()
    listing = signed_in.get("/chat/models.json").json()
    assert "gpt-4o" in listing["models"] and listing["error"] is None
    RelayCredential.objects.filter(user=user).update(base_url="http://127.0.0.1:9")
    assert signed_in.get("/chat/models.json").json()["models"] == listing["models"]  # cached
    refreshed = signed_in.get("/chat/models.json?refresh=1").json()
    assert refreshed["models"] == [] and "unavailable" in refreshed["error"]


def test_models_list_without_a_key_says_what_to_do(signed_in):
    listing = signed_in.get("/chat/models.json").json()
    assert listing["models"] == [] and "Settings" in listing["error"]


def test_stale_streaming_message_becomes_interrupted_on_page_load(signed_in, chat):
    orphan = add(chat, "assistant", "half", status="streaming")
    Message.objects.filter(pk=orphan.pk).update(updated_at="2020-01-01T00:00:00Z")
    signed_in.get(f"/chat/{chat.id}/")
    orphan.refresh_from_db()
    assert orphan.status == "interrupted" and orphan.content == "half"


@pytest.mark.django_db(transaction=True)
def test_worker_start_marks_replies_of_dead_processes_interrupted(user):
    from django.core.management import call_command

    chat = Conversation.objects.create(user=user, model="gpt-4o")
    orphan = add(chat, "assistant", "half a thought", status="streaming")
    Message.objects.filter(pk=orphan.pk).update(updated_at="2020-01-01T00:00:00Z")
    call_command("worker", batch=True, no_startup_delay=True, verbosity=0)
    orphan.refresh_from_db()
    assert orphan.status == "interrupted" and orphan.content == "half a thought"
