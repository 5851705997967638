"""The base layout (navigation per role) and the language choice remembered per user."""

import pytest

from studio.accounts.models import Profile

pytestmark = pytest.mark.django_db


def test_header_shows_the_user_and_sections(signed_in, user):
    page = signed_in.get("/settings/").content.decode()
    assert user.username in page
    for href in ('href="/chat/"', 'href="/jobs/"', 'href="/settings/"'):
        assert href in page
    assert 'href="/admin/"' not in page


def test_staff_see_the_admin_link(signed_in, user):
    user.is_staff = True
    user.save()
    assert 'href="/admin/"' in signed_in.get("/settings/").content.decode()


def test_sign_in_page_is_styled_and_translated(client):
    english = client.get("/accounts/login/").content.decode()
    assert "Sign in" in english
    chinese = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "登录" in chinese


def test_language_choice_is_remembered_for_the_user(signed_in, user, client):
    response = signed_in.post("/i18n/setlang/", {"language": "zh-hans", "next": "/settings/"})
    assert response.status_code == 302
    assert Profile.objects.get(user=user).language == "zh-hans"

    # A new browser (no cookie, English Accept-Language) still gets the user's language.
    client.cookies.clear()
    client.force_login(user)
    page = client.get("/settings/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'lang="zh-hans"' in page
    assert "设置" in page


def test_unknown_language_is_not_saved(signed_in, user):
    signed_in.post("/i18n/setlang/", {"language": "xx", "next": "/settings/"})
    assert not Profile.objects.filter(user=user, language="xx").exists()


def test_sign_out_is_a_post(signed_in):
    assert signed_in.get("/settings/").status_code == 200
    signed_in.post("/accounts/logout/")
    assert signed_in.get("/settings/").status_code == 302


def test_password_can_be_changed(signed_in, user, password, client):
    new_password = "a brand new passphrase 314"
    response = signed_in.post(
        "/accounts/password_change/",
        {"old_password": password, "new_password1": new_password, "new_password2": new_password},
        follow=True,
    )
    assert response.status_code == 200
    signed_in.post("/accounts/logout/")
    assert client.login(username=user.username, password=new_password)


def test_password_change_keeps_the_form_on_error(signed_in):
    response = signed_in.post(
        "/accounts/password_change/",
        {"old_password": "wrong", "new_password1": "x", "new_password2": "y"},
    )
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
