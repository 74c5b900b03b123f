"""Prefect flows: each runs a pipeline of dos2hl.pipeline with a runner that makes its steps tasks, gates
that pause for typed inputs, and artifacts; the order of the steps and the work are in dos2hl/."""

from dos2hl.logs import quiet_http_loggers

quiet_http_loggers()  # no request URL at INFO in a flow run's logs
