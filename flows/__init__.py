"""Prefect flows: they order tasks and hold the gates; the work is in dos2hl/."""
