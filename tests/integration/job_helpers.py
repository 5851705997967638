"""Media-job tests: point the site and the test user at a running relay simulator."""

from media_jobs import runner
from media_jobs.models import Job
from studio.accounts.models import RelayCredential


def use_relay(settings, simulator, tmp_path, user):
    """The simulator becomes the approved relay, the user's key is saved for it, and results
    are kept under the test's own MEDIA_ROOT."""
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    settings.MEDIA_ROOT = tmp_path / "media"
    credential = RelayCredential(user=user, base_url=simulator.url)
    credential.set_api_key(simulator.key)
    credential.save()
    return simulator


def drive(job: Job, seen: list[tuple[str, int]] | None = None, max_steps: int = 30) -> Job:
    """Advance the job until it finishes, without waiting for the real polling delays; `seen`
    collects the (status, progress) after each step."""
    for _ in range(max_steps):
        runner.advance(str(job.id))
        job.refresh_from_db()
        if seen is not None:
            seen.append((job.status, job.progress))
        if job.finished:
            return job
        Job.objects.filter(pk=job.pk).update(next_step_at=None)
    raise AssertionError(f"job did not finish: {job.status} {job.progress}% {job.error}")
