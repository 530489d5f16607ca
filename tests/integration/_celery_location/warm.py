"""Imported by each Celery worker at startup (``-i _celery_location.warm``): on ``worker_init`` it
builds the job once, so the code location's first load (tens of seconds on a loaded two-core
machine) is paid before the worker consumes or answers a ping, in parallel on both workers, and
not inside the run's first step. Importing this module elsewhere (pytest's doctest collection)
only connects the signal.
"""

from celery.signals import worker_init


@worker_init.connect
def _build_job(**_: object) -> None:
    from _celery_location.jobs import daily_data_job_on_celery

    daily_data_job_on_celery()
