"""Suno music jobs end to end against the relay simulator over real HTTP, in both of the relay's
formats: the form, submit, progress, the stored songs and covers, the page that plays them,
continuing a clip and joining the parts, the relay's failures and refusals."""

import io
import wave

import pytest

from media_jobs.models import Asset, Job
from studio.accounts.models import FamilySetting
from tests.integration.job_helpers import drive

pytestmark = pytest.mark.django_db(transaction=True)

LYRICS = "[Verse]\nNeon rain on <b>Shibuya</b> & me\n[Chorus]\nStay until the dawn"


def use_format(fmt: str) -> None:
    options = {"suno_format": fmt}
    FamilySetting.objects.update_or_create(family="suno", defaults={"options": options})


def new_suno(client, **fields):
    data = {"mode": "generate", "prompt": "A song about rainy Tokyo nights", "mv": "chirp-v3-0"}
    data.update(fields)
    return client.post("/jobs/new/suno/", data)


def created(response, user) -> Job:
    assert response.status_code == 302, response.content.decode()[:3000]
    job = Job.objects.filter(user=user, kind="suno").order_by("-created_at")[0]
    assert response["Location"] == f"/jobs/{job.id}/"
    return job


def wav_seconds(content: bytes) -> float:
    with wave.open(io.BytesIO(content)) as audio:
        return audio.getnframes() / audio.getframerate()


def stored_clips(client, job: Job) -> list[dict]:
    """Each clip of the result with its audio and cover asset, checked against the files."""
    assets = list(Asset.objects.filter(job=job))
    clips = job.result["clips"]
    for clip in clips:
        audio = assets[clip["audio_index"]]
        cover = assets[clip["cover_index"]]
        assert audio.mime == "audio/wav" and cover.mime == "image/jpeg"
        assert (cover.width, cover.height) == (400, 400)
        content = audio.file.read()
        assert wav_seconds(content) == pytest.approx(clip["duration"], abs=0.01)
        clip["audio_url"] = f"/jobs/assets/{audio.id}/"
        clip["cover_url"] = f"/jobs/assets/{cover.id}/"
    assert len(assets) == 2 * len(clips)
    return clips


def press(client, job: Job, custom_id: str, user) -> Job:
    response = client.post(f"/jobs/{job.id}/action/", {"custom_id": custom_id})
    assert response.status_code == 302, response.content.decode()[:2000]
    child = Job.objects.filter(user=user, parent=job).order_by("-created_at")[0]
    assert response["Location"] == f"/jobs/{child.id}/"
    return child


@pytest.mark.parametrize(
    ("fmt", "fields", "prefix"),
    [
        ("a", {}, "a:v30:chirp-v3-0:"),
        (
            "a",
            {"mode": "custom", "prompt": LYRICS, "title": "Neon", "tags": "city pop"},
            "a:v35:chirp-v3-5:",
        ),
        ("b", {"mode": "custom", "prompt": LYRICS, "tags": "city pop"}, "b:b:chirp-v3-5:"),
        ("b", {"make_instrumental": "on"}, "b:b:chirp-v3-0:"),
    ],
)
def test_a_song_job_runs_to_two_playable_clips(signed_in, relay, user, fmt, fields, prefix):
    use_format(fmt)
    if "v3-5" in prefix:
        fields = {**fields, "mv": "chirp-v3-5"}
    job = created(new_suno(signed_in, **fields), user)
    seen: list[tuple[str, int]] = []
    job = drive(job, seen)

    assert job.status == "succeeded", job.error
    assert job.upstream_id.startswith(prefix)
    assert seen[0] == ("submitted", 0)
    running = [progress for status, progress in seen if status == "running"]
    assert running and running == sorted(running) and all(0 < p < 100 for p in running)
    clips = stored_clips(signed_in, job)
    assert len(clips) == 2 and clips[0]["id"] != clips[1]["id"]
    for clip in clips:
        assert clip["title"] and clip["tags"] and 5 <= clip["duration"] <= 10
        assert clip["length"].startswith("0:0")
    if fields.get("mode") == "custom":
        assert clips[0]["lyrics"] == LYRICS and clips[0]["tags"] == "city pop"
    elif fields.get("make_instrumental"):
        assert clips[0]["lyrics"] == ""
    else:
        assert "[Chorus]" in clips[0]["lyrics"]  # Suno wrote them from the description

    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert page.count('data-testid="music-clip"') == 2
    for clip in clips:
        assert f'<audio controls preload="metadata" src="{clip["audio_url"]}"' in page
        assert f'<img src="{clip["cover_url"]}"' in page
        assert f"<code>{clip['id']}</code>" in page
    assert "/files/" not in page  # players and covers come from our asset URLs
    if fields.get("mode") == "custom":
        assert "Neon rain on &lt;b&gt;Shibuya&lt;/b&gt; &amp; me" in page
        assert "<b>Shibuya</b>" not in page
    response = signed_in.get(clips[0]["audio_url"])
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    gallery = signed_in.get("/jobs/").content.decode()
    cover_id = clips[0]["cover_url"].split("/")[-2]
    assert f'<img src="/jobs/assets/{cover_id}/thumbnail/"' in gallery  # the cover, not the audio


def test_continue_a_clip_then_join_it_into_one_song(signed_in, relay, user):
    first = drive(created(new_suno(signed_in), user))
    assert first.status == "succeeded", first.error
    original = stored_clips(signed_in, first)[0]
    status = signed_in.get(f"/jobs/{first.id}/status.json").json()
    offered = [action["custom_id"] for action in status["actions"]]
    assert offered == [f"continue:{clip['id']}" for clip in first.result["clips"]]

    # "Continue clip 1": a child job that continues the clip from its end, in the same style.
    extension = drive(press(signed_in, first, f"continue:{original['id']}", user))
    assert extension.status == "succeeded", extension.error
    assert extension.params["label"] == "Continue clip 1"
    continued = stored_clips(signed_in, extension)
    assert continued[0]["tags"] == original["tags"] and continued[0]["title"] == original["title"]

    join = f"concat:{continued[0]['id']}"
    status = signed_in.get(f"/jobs/{extension.id}/status.json").json()
    assert join in [action["custom_id"] for action in status["actions"]]
    song = drive(press(signed_in, extension, join, user))
    assert song.status == "succeeded", song.error
    (joined,) = stored_clips(signed_in, song)
    # The whole original (continued from its end) followed by the continuation.
    assert joined["duration"] == pytest.approx(original["duration"] + continued[0]["duration"])
    page = signed_in.get(f"/jobs/{song.id}/").content.decode()
    assert page.count('data-testid="music-clip"') == 1
    assert 'data-testid="job-family"' in page and "Continue clip 1" in page  # made from
    page = signed_in.get(f"/jobs/{extension.id}/").content.decode()
    assert "Join clip 1 into one song" in page  # the button, and the child in the family


@pytest.mark.parametrize("fmt", ["a", "b"])
def test_continue_from_a_chosen_second_with_new_lyrics_then_join(signed_in, relay, user, fmt):
    use_format(fmt)
    first = drive(created(new_suno(signed_in, mv="chirp-v3-5"), user))
    assert first.status == "succeeded", first.error
    clip = first.result["clips"][1]

    # The clip's link opens the form filled in for it.
    page = signed_in.get(f"/jobs/{first.id}/").content.decode()
    link = (
        f"/jobs/new/suno/?mode=extend&amp;continue_clip_id={clip['id']}"
        f"&amp;continue_at={clip['continue_from']}&amp;mv=chirp-v3-5"
    )
    assert link in page
    form = signed_in.get(link.replace("&amp;", "&")).content.decode()
    assert f'value="{clip["id"]}"' in form and '<option value="extend" selected>' in form

    response = new_suno(
        signed_in,
        mode="extend",
        continue_clip_id=clip["id"],
        continue_at="3",
        prompt="[Bridge]\nOne more time",
        mv="chirp-v3-5",
    )
    extension = drive(created(response, user))
    assert extension.status == "succeeded", extension.error
    part = stored_clips(signed_in, extension)[0]
    assert part["lyrics"] == "[Bridge]\nOne more time"
    assert part["title"] == clip["title"]  # kept from the clip it continues

    song = drive(press(signed_in, extension, f"concat:{part['id']}", user))
    assert song.status == "succeeded", song.error
    assert song.upstream_id.startswith(f"{fmt}:")
    (joined,) = stored_clips(signed_in, song)
    assert joined["duration"] == pytest.approx(3 + part["duration"])
    assert "[Bridge]\nOne more time" in joined["lyrics"]


def test_joining_a_clip_that_continues_nothing_is_refused_in_the_relays_words(
    signed_in, relay, user
):
    first = drive(created(new_suno(signed_in), user))
    response = new_suno(signed_in, mode="concat", continue_clip_id=first.result["clips"][0]["id"])
    job = drive(created(response, user))
    assert job.status == "failed" and job.error_code == "bad_request"
    assert "is not an extension" in job.error


@pytest.mark.parametrize("fmt", ["a", "b"])
def test_a_song_failing_upstream_shows_the_reason(signed_in, relay, user, fmt):
    use_format(fmt)
    job = drive(created(new_suno(signed_in, prompt="Storm [[suno:fail]]"), user))
    assert job.status == "failed" and job.error_code == "relay_failed"
    assert "the audio model returned no output" in job.error
    assert not Asset.objects.filter(job=job).exists()
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert "the audio model returned no output" in page and 'data-testid="retry-job"' in page
    assert 'data-testid="music-clip"' not in page


@pytest.mark.parametrize(
    ("fmt", "prompt", "code", "words"),
    [
        ("a", "x [[suno:refuse]]", "bad_request", "Suno does not allow"),
        ("a", "x [[suno:refuse]] [[suno:http200]]", "bad_request", "Suno does not allow"),
        ("b", "x [[suno:refuse]]", "bad_request", "Suno does not allow"),
        ("a", "x [[suno:quota]]", "quota", "quota_not_enough"),
        ("b", "x [[suno:quota]]", "quota", "quota_not_enough"),
    ],
)
def test_refusals_in_the_native_error_shapes_fail_with_a_clear_message(
    signed_in, relay, user, fmt, prompt, code, words
):
    use_format(fmt)
    job = drive(created(new_suno(signed_in, prompt=prompt), user))
    assert job.status == "failed" and job.error_code == code
    assert words in job.error
    assert job.attempts == 0  # a refusal is not retried
    expected = "no quota left" if code == "quota" else "refused the request"
    assert expected in job.error


def test_a_jobs_follow_ups_keep_the_format_it_was_made_in(signed_in, relay, user):
    first = drive(created(new_suno(signed_in), user))  # a format a task
    use_format("b")  # staff switch meanwhile: the job's children still speak format a
    child = drive(press(signed_in, first, f"continue:{first.result['clips'][0]['id']}", user))
    assert child.status == "succeeded", child.error
    assert child.upstream_id.startswith("a:")


BAD_FORMS = [
    ({"prompt": ""}, "prompt", "Describe the song you want"),
    ({"prompt": "x" * 201}, "prompt", "Keep the description to 200 characters"),
    ({"mode": "custom", "prompt": ""}, "prompt", "Write the lyrics"),
    ({"mode": "custom", "prompt": "", "make_instrumental": "on", "tags": ""}, "tags", "a style"),
    ({"mode": "extend", "continue_at": "12"}, "continue_clip_id", "clip to continue"),
    ({"mode": "extend", "continue_clip_id": "abc-1"}, "continue_at", "which second"),
    ({"mode": "extend", "continue_clip_id": "a/b", "continue_at": "3"}, "continue_clip_id", "not"),
    ({"mode": "concat"}, "continue_clip_id", "continuation to join"),
    ({"mv": "chirp-v9"}, "mv", "Select a valid choice"),
    ({"mode": "extend", "continue_clip_id": "c1", "continue_at": "-1"}, "continue_at", "0"),
]


def test_a_bad_form_keeps_what_was_typed(signed_in, relay, user):
    # One test for every case: each would otherwise pay for a database of its own.
    for fields, field, message in BAD_FORMS:
        typed = {"title": "Midnight Train", "tags": "dreamy synthwave", **fields}
        response = new_suno(signed_in, **typed)
        assert response.status_code == 400, fields
        errors = response.context["form"].errors
        assert field in errors and message in " ".join(errors[field]), (fields, errors)
        page = response.content.decode()
        assert "Midnight Train" in page, fields
        assert "dreamy synthwave" in page or typed["tags"] == "", fields
    assert not Job.objects.filter(user=user).exists()


def test_other_users_cannot_see_or_act_on_a_song(signed_in, relay, user, other_user, client):
    job = drive(created(new_suno(signed_in), user))
    asset = Asset.objects.filter(job=job).first()
    client.force_login(other_user)
    assert client.get(f"/jobs/{job.id}/").status_code == 404
    assert client.get(f"/jobs/assets/{asset.id}/").status_code == 404
    custom_id = f"continue:{job.result['clips'][0]['id']}"
    assert client.post(f"/jobs/{job.id}/action/", {"custom_id": custom_id}).status_code == 404
    client.force_login(user)
    response = client.post(f"/jobs/{job.id}/action/", {"custom_id": "concat:forged"})
    assert response.status_code == 400  # not offered: this job continued nothing
