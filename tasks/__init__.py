"""Prefect tasks: each wraps one dos2hl library call (retries only where there is I/O to retry)."""
