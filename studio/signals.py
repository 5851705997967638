"""Signals shared between apps without importing each other."""

from django.dispatch import Signal

# Sent once when a worker process starts, before it takes tasks: apps re-enqueue the work of
# anything left unfinished (media_jobs picks up every job that is not done). kwargs: worker_id.
worker_started = Signal()

# Sent by every running worker every JOBS_SWEEP_SECONDS (from its heartbeat thread, not between
# tasks, so a long task does not delay it): apps re-enqueue work whose task died with another
# worker (media_jobs re-enqueues stalled jobs). kwargs: worker_id.
worker_sweep = Signal()
