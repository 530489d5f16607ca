"""A test-only code location: the code location's own ``daily_data_job`` with dagster-celery as the
executor of its definitions, loaded the same way by the test (which orchestrates the run) and by the
Celery workers (which execute its steps), from ``ALPHADAG_DATA_ROOT`` and ``ALPHADAG_TICKERS``.
"""
