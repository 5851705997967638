"""Background tasks: thin and idempotent; media_jobs.runner does the work."""

from django.tasks import task

from media_jobs import runner


@task()
def run_job(job_id: str) -> None:
    runner.advance(job_id)
