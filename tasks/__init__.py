"""Prefect tasks: the pipelines' steps (dos2hl.pipeline) made tasks (retries only where there is I/O to
retry)."""

from dos2hl.logs import quiet_http_loggers

quiet_http_loggers()  # no request URL at INFO in a task run's logs
