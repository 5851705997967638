"""Relay families at run time: staff switch a family off (its kinds vanish for users and are
refused), replace its paths (validated; used by the next request), set its options, and probe
it against the relay (the simulator, over real HTTP)."""

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from media_jobs import services
from media_jobs.kinds import offered_kinds
from studio.accounts import families
from studio.accounts.models import AuditEvent, FamilySetting, RelayCredential
from studio.accounts.services import relay_credentials_for
from studio.upstream import paths
from studio.upstream.families import FAMILIES
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_user(db, password):
    return UserFactory(username="root", password=password, is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def staff_relay(relay, staff_user):
    """The simulator as the staff member's relay too (the probe uses their key)."""
    credential = RelayCredential(user=staff_user, base_url=relay.url)
    credential.set_api_key(relay.key)
    credential.save()
    return relay


def family_form(slug, *, enabled=True, **paths_and_options):
    data = {f"{slug}-enabled": "on"} if enabled else {}
    for name, value in paths_and_options.items():
        prefix = "option" if name in FAMILIES[slug].options else "path"
        data[f"{slug}-{prefix}__{name}"] = value
    return data


def test_the_staff_page_lists_every_family_with_its_paths_and_grade(staff_client):
    page = staff_client.get("/staff/families/").content.decode()
    for family in FAMILIES.values():
        assert f'data-testid="family-{family.slug}"' in page
        for name in family.path_names:
            assert paths.DEFAULT_PATHS[name] in page  # the default, as the field's placeholder
    assert "Kling video" in page  # the kinds each family serves


def test_a_family_switched_off_disappears_for_users_and_is_refused(staff_client, user, relay):
    client = Client()
    response = staff_client.post("/staff/families/kling/", family_form("kling", enabled=False))
    assert response.status_code == 302
    assert "kling" not in offered_kinds()
    assert AuditEvent.objects.filter(action="family_changed", target="kling").exists()

    client.force_login(user)
    index = client.get("/jobs/").content.decode()
    assert 'data-testid="kind-kling"' not in index
    assert 'data-testid="kind-dalle"' in index
    assert '<option value="kling"' in index  # old Kling jobs can still be found in the gallery
    page = client.get("/jobs/new/kling/")
    assert page.status_code == 404
    assert "switched it off" in page.content.decode()
    with pytest.raises(services.JobRefused, match="switched off"):
        services.create_job(user, "kling", {"prompt": "a boat", "source": "text2video"})

    staff_client.post("/staff/families/kling/", family_form("kling", enabled=True))
    assert "kling" in offered_kinds()
    assert client.get("/jobs/new/kling/").status_code == 200


def test_the_environment_decides_for_families_staff_never_touched(settings):
    settings.UPSTREAM_FAMILIES_ENABLED = ["openai", "midjourney"]
    assert families.enabled_families() == {"openai", "midjourney"}
    FamilySetting.objects.create(family="kling", enabled=True)
    assert families.enabled_families() == {"openai", "midjourney", "kling"}
    settings.UPSTREAM_FAMILIES_ENABLED = ["all"]
    assert families.enabled_families() == set(FAMILIES)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://evil.example/kling/v1/videos/text2video", "names no host"),
        ("//evil.example/x", "names no host"),
        ("/kling/../admin/{task_id}", "must not contain"),
        ("/kling/v1/videos/text2video/{id}", "Unknown placeholder {id}"),
        ("/kling/v1/videos/text2video", "must carry {task_id}"),
        ("/kling/v1/videos/ text2video/{task_id}", "no spaces"),
        ("/kling/{task_id", "Unbalanced"),
    ],
)
def test_bad_path_overrides_are_refused_and_the_form_keeps_them(staff_client, value, message):
    response = staff_client.post(
        "/staff/families/kling/", family_form("kling", kling_text2video_task=value)
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page.replace("&#x27;", "'").replace("&quot;", '"')
    assert 'value="' in page and value.replace("&", "&amp;").split("{")[0] in page
    assert not FamilySetting.objects.filter(family="kling").exists()


def test_a_path_override_reaches_the_next_request(staff_client, user, relay):
    # The simulator serves Midjourney at /mj/…; a relay that mounts it under /mj-relax would
    # be configured like this, and every request follows at once.
    staff_client.post(
        "/staff/families/midjourney/",
        family_form("midjourney", mj_fetch="/mj-relax/mj/task/{id}/fetch"),
    )
    credentials = relay_credentials_for(user)
    assert credentials.path_overrides == {"mj_fetch": "/mj-relax/mj/task/{id}/fetch"}
    assert paths.path("mj_fetch", overrides=credentials.path_overrides, id="12") == (
        "/mj-relax/mj/task/12/fetch"
    )
    # The override equal to the default is not kept: the default may change with the code.
    staff_client.post(
        "/staff/families/midjourney/",
        family_form("midjourney", mj_fetch=paths.DEFAULT_PATHS["mj_fetch"]),
    )
    assert relay_credentials_for(user).path_overrides == {}


def test_options_are_validated_and_reach_the_client(staff_client, user, relay):
    bad = staff_client.post("/staff/families/suno/", family_form("suno", suno_format="c"))
    assert bad.status_code == 400
    staff_client.post("/staff/families/suno/", family_form("suno", suno_format="b"))
    assert relay_credentials_for(user).options == {"suno_format": "b"}


@pytest.mark.parametrize("slug", list(FAMILIES))
def test_probe_says_a_family_the_relay_serves_answers(staff_client, staff_relay, slug):
    response = staff_client.post(f"/staff/families/{slug}/probe/", follow=True)
    page = response.content.decode()
    assert "answers" in page, page
    row = FamilySetting.objects.get(family=slug)
    assert row.probe_verdict == "answers"
    assert AuditEvent.objects.filter(action="family_probed", target=slug).exists()


@pytest.mark.parametrize(
    ("slug", "option", "value", "asked"),
    [
        ("suno", "suno_format", "b", "/suno/fetch/"),
        ("ideogram", "ideogram_format", "web", "/ideogram/task-request"),
    ],
)
def test_probe_asks_in_the_request_format_staff_chose(
    staff_client, staff_relay, slug, option, value, asked
):
    staff_client.post(f"/staff/families/{slug}/", family_form(slug, **{option: value}))
    staff_client.post(f"/staff/families/{slug}/probe/", follow=True)
    row = FamilySetting.objects.get(family=slug)
    assert row.probe_verdict == "answers", row.probe_detail
    assert asked in row.probe_detail


def test_probe_says_a_wrong_path_is_not_mounted(staff_client, staff_relay):
    staff_client.post(
        "/staff/families/runway/", family_form("runway", runway_task="/runway/v9/tasks/{id}")
    )
    response = staff_client.post("/staff/families/runway/probe/", follow=True)
    assert "is not on this relay" in response.content.decode()
    assert FamilySetting.objects.get(family="runway").probe_verdict == "not_mounted"


def test_probe_tells_a_refused_key_and_an_unreachable_relay_apart(staff_user, staff_relay):
    credential = RelayCredential.objects.get(user=staff_user)
    credential.set_api_key("sk-not-a-key-the-relay-knows")
    credential.save()
    result = async_to_sync(families.run_probe)(FAMILIES["openai"], by=staff_user)
    assert result.verdict == "key_refused"
    assert result.status == 401
    assert "sk-not-a-key" not in result.detail

    credential.base_url = "http://127.0.0.1:9"  # discard port: nothing listens
    credential.set_api_key(staff_relay.key)
    credential.save()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("studio.accounts.services.allowed_base_urls", lambda: ["http://127.0.0.1:9"])
        result = async_to_sync(families.run_probe)(FAMILIES["openai"], by=staff_user)
    assert result.verdict == "unreachable"


def test_probe_without_a_key_says_so(staff_client, settings):
    settings.UPSTREAM_API_KEY = ""
    response = staff_client.post("/staff/families/openai/probe/", follow=True)
    assert response.status_code == 200
    assert not FamilySetting.objects.filter(family="openai").exists()


def test_the_django_admin_validates_family_settings_the_same_way(staff_client):
    url = "/admin/accounts/familysetting/add/"
    bad = staff_client.post(
        url,
        {
            "family": "flux",
            "enabled": "on",
            "path_overrides": '{"flux_get_result": "https://evil.example/x", "mj_fetch": "/x"}',
            "options": "{}",
        },
    )
    assert bad.status_code == 200  # the form again, with its errors
    page = bad.content.decode()
    assert "names no host" in page
    assert "mj_fetch is not an endpoint of this family" in page
    assert not FamilySetting.objects.exists()

    good = staff_client.post(
        url,
        {
            "family": "flux",
            "path_overrides": '{"flux_get_result": "/bfl/v1/get_result?id={id}"}',
            "options": "{}",
        },
    )
    assert good.status_code == 302
    row = FamilySetting.objects.get(family="flux")
    assert row.path_overrides == {"flux_get_result": "/bfl/v1/get_result?id={id}"}
    assert not row.enabled
    assert "flux" not in families.enabled_families()
