"""Imported by each Celery worker at startup (``-i _celery_location.warm``): builds the job once, so
the code location's first load (tens of seconds on a loaded two-core machine) is paid before the
worker answers a ping, in parallel on both workers, and not inside the run's first step.
"""

from _celery_location.jobs import daily_data_job_on_celery

JOB = daily_data_job_on_celery()
