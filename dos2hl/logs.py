"""Logging rules every entry point applies (the CLI, the Prefect flows and tasks).

``httpx`` and ``httpcore`` log each request's full URL at INFO ("HTTP Request: GET https://...?name=...");
a lookup's query string can hold a value we send, so those loggers stay at WARNING whatever level the
rest of the program logs at (issue 14, finding 4c).
"""

from __future__ import annotations

import logging

__all__ = ["HTTP_LOGGERS", "quiet_http_loggers"]

HTTP_LOGGERS = ("httpx", "httpcore")


def quiet_http_loggers() -> None:
    """Keep the HTTP libraries' loggers at WARNING: no request URL (with its query) is ever logged."""
    for name in HTTP_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
