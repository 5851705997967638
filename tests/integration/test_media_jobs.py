"""Media jobs end to end: the form, the worker, the relay simulator, stored files, the pages."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from media_jobs import runner
from media_jobs.models import Asset, Job
from studio.accounts.models import RelayCredential

pytestmark = pytest.mark.django_db(transaction=True)


def run_worker():
    call_command("worker", batch=True, no_startup_delay=True, verbosity=0)


def create(client, **fields):
    data = {
        "prompt": "A lighthouse at dawn",
        "model": "dall-e-3",
        "size": "1024x1024",
        "quality": "standard",
        "style": "vivid",
        "n": "1",
    }
    data.update(fields)
    return client.post("/jobs/new/dalle/", data)


def test_a_dalle_job_runs_to_a_stored_image(signed_in, relay, user, other_user, client):
    response = create(signed_in, size="1792x1024")
    job = Job.objects.get(user=user)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.id}/"
    assert job.status == "queued"
    assert DBTaskResult.objects.count() == 1  # the task committed with the job

    run_worker()

    job.refresh_from_db()
    assert job.status == "succeeded" and job.progress == 100
    assert job.result["revised_prompt"]
    asset = Asset.objects.get(job=job)
    assert asset.mime == "image/png" and (asset.width, asset.height) == (1792, 1024)
    assert len(asset.sha256) == 64 and asset.bytes > 0 and asset.thumbnail

    status = signed_in.get(f"/jobs/{job.id}/status.json").json()
    assert status["status"] == "succeeded" and status["progress"] == 100
    assert status["assets"][0] == {
        "url": f"/jobs/assets/{asset.id}/",
        "thumbnail": f"/jobs/assets/{asset.id}/thumbnail/",
        "mime": "image/png",
        "bytes": asset.bytes,
        "width": 1792,
        "height": 1024,
    }
    download = signed_in.get(f"/jobs/assets/{asset.id}/?download=1")
    assert download.status_code == 200 and download["Content-Type"] == "image/png"
    assert b"".join(download.streaming_content).startswith(b"\x89PNG")
    assert "attachment" in download["Content-Disposition"]
    gallery = signed_in.get("/jobs/").content.decode()
    assert "A lighthouse at dawn" in gallery and f"/jobs/assets/{asset.id}/thumbnail/" in gallery

    client.force_login(other_user)
    for path in (
        f"/jobs/{job.id}/",
        f"/jobs/{job.id}/status.json",
        f"/jobs/assets/{asset.id}/",
        f"/jobs/assets/{asset.id}/thumbnail/",
        f"/jobs/{job.id}/delete/",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/jobs/{job.id}/retry/").status_code == 404
    assert "A lighthouse at dawn" not in client.get("/jobs/").content.decode()


def test_a_bad_form_keeps_what_was_typed(signed_in, relay, user):
    response = create(signed_in, n="3")
    page = response.content.decode()
    assert response.status_code == 400
    assert "A lighthouse at dawn" in page
    assert "DALL·E 3 makes one image per request." in page
    assert not Job.objects.exists()


def test_the_relays_refusal_is_shown_and_the_job_can_be_retried(signed_in, relay, user):
    create(signed_in, prompt="Refuse me [[error:400]]")
    run_worker()
    job = Job.objects.get(user=user)
    assert job.status == "failed" and job.error
    page = signed_in.get(f"/jobs/{job.id}/").content.decode()
    assert job.error in page or "refused" in page
    response = signed_in.post(f"/jobs/{job.id}/retry/")
    again = Job.objects.exclude(pk=job.pk).get()
    assert response["Location"] == f"/jobs/{again.id}/"
    assert again.params == job.params and again.status == "queued"


def test_an_expired_result_url_fails_with_a_clear_reason(signed_in, relay, user):
    create(signed_in, prompt="Gone too soon [[expire]]")
    run_worker()
    job = Job.objects.get(user=user)
    assert job.status == "failed" and job.error_code == "download"
    assert "could not be kept" in job.error
    assert not Asset.objects.exists()


def test_rate_limited_submit_is_retried_later_not_failed(signed_in, relay, user):
    create(signed_in, prompt="Busy relay [[error:429]]")
    job = Job.objects.get(user=user)
    runner.advance(str(job.id))
    job.refresh_from_db()
    assert job.status == "queued" and job.attempts == 1
    assert job.submit_started_at is None  # refused for load: safe to send again
    assert job.next_step_at >= timezone.now() + timedelta(seconds=6)  # Retry-After: 7
    assert "busy" in job.error


def test_a_submit_cut_short_by_a_dead_worker_is_never_sent_again(relay, user):
    job = Job.objects.create(user=user, kind="dalle", params={"prompt": "x"})
    Job.objects.filter(pk=job.pk).update(submit_started_at=timezone.now() - timedelta(minutes=30))
    runner.advance(str(job.id))
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "interrupted"


def test_a_submit_in_flight_elsewhere_is_left_alone(relay, user):
    job = Job.objects.create(user=user, kind="dalle", params={"prompt": "x"})
    Job.objects.filter(pk=job.pk).update(submit_started_at=timezone.now())
    runner.advance(str(job.id))
    job.refresh_from_db()
    assert job.status == "queued"
    assert job.next_step_at > timezone.now() + timedelta(minutes=5)


def test_a_starting_worker_picks_up_unfinished_jobs(relay, user):
    job = Job.objects.create(user=user, kind="dalle", params={"prompt": "Left behind"})
    assert not DBTaskResult.objects.exists()  # its task was lost
    run_worker()  # the worker's start re-enqueues it, then runs it
    job.refresh_from_db()
    assert job.status == "succeeded"


def test_duplicate_tasks_do_the_work_once(relay, user, signed_in):
    create(signed_in, prompt="Only once")
    job = Job.objects.get(user=user)
    runner.enqueue(job)  # a second task for the same step
    run_worker()
    assert Asset.objects.filter(job=job).count() == 1


def test_running_jobs_are_limited_per_user(signed_in, relay, user):
    for _ in range(4):
        Job.objects.create(user=user, kind="dalle", params={"prompt": "x"}, status="running")
    response = create(signed_in)
    assert response.status_code == 400
    assert "jobs running" in response.content.decode()


def test_without_a_key_the_form_says_what_to_do(signed_in, relay, user):
    RelayCredential.objects.filter(user=user).delete()
    response = create(signed_in)
    assert response.status_code == 400
    assert "Settings" in response.content.decode()


def test_cancel_and_delete(signed_in, relay, user, settings):
    create(signed_in)
    job = Job.objects.get(user=user)
    signed_in.post(f"/jobs/{job.id}/cancel/")
    job.refresh_from_db()
    assert job.status == "cancelled"
    run_worker()  # its task finds it cancelled and does nothing
    assert not Asset.objects.exists()
    assert "Delete this job?" in signed_in.get(f"/jobs/{job.id}/delete/").content.decode()
    signed_in.post(f"/jobs/{job.id}/delete/")
    assert not Job.objects.filter(pk=job.pk).exists()


def test_reuse_fills_the_form_with_the_jobs_settings(signed_in, relay, user):
    create(signed_in, prompt="Again please", style="natural")
    job = Job.objects.get(user=user)
    page = signed_in.get(f"/jobs/new/dalle/?from={job.id}").content.decode()
    assert "Again please" in page
    assert 'value="natural" selected' in page


def test_unknown_kind_is_404(signed_in):
    assert signed_in.get("/jobs/new/nope/").status_code == 404


def test_deleting_a_user_deletes_their_files(signed_in, relay, user, settings):
    """A cascade from the staff pages or the Django admin never calls delete_job: the files
    must go with the rows all the same."""
    create(signed_in, prompt="Soon gone")
    run_worker()
    job = Job.objects.get(user=user)
    asset = job.assets.get()
    upload = settings.MEDIA_ROOT / "uploads" / str(user.pk) / "voice.mp3"
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_bytes(b"ID3")
    Job.objects.filter(pk=job.pk).update(
        params={**job.params, "file": {"path": f"uploads/{user.pk}/voice.mp3", "name": "v.mp3"}}
    )
    files = [settings.MEDIA_ROOT / asset.file.name, settings.MEDIA_ROOT / asset.thumbnail.name]
    assert all(path.exists() for path in files)
    user.delete()
    assert not any(path.exists() for path in [*files, upload])
