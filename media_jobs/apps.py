from django.apps import AppConfig


class MediaJobsConfig(AppConfig):
    name = "media_jobs"
    verbose_name = "Media jobs"

    def ready(self) -> None:
        from studio.signals import worker_started

        worker_started.connect(_resume_jobs, dispatch_uid="media-jobs-resume")


def _resume_jobs(**kwargs: object) -> None:
    """A worker that starts picks up every job that is not finished (none is ever lost)."""
    from media_jobs.runner import resume_unfinished

    resume_unfinished()
