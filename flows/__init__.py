"""Prefect flows: they order tasks and hold the gates; the work is in dos2hl/."""

from dos2hl.logs import quiet_http_loggers

quiet_http_loggers()  # no request URL at INFO in a flow run's logs
