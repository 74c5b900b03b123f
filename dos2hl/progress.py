"""Progress for long work: a rich progress bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress_reporter"]

log = logging.getLogger("dos2hl")

ProgressFn = Callable[[str, int], None]


@contextmanager
def progress_reporter(label: str, *, every_s: float = 5.0, force_plain: bool = False) -> Iterator[ProgressFn]:
    """Yield ``report(stage, rows_done)``; draws a bar on a TTY, logs a line every ``every_s`` otherwise."""
    if sys.stderr.isatty() and not force_plain:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"),
                      TextColumn("{task.fields[stage]}"),
                      TextColumn("{task.completed:,} rows"), TimeElapsedColumn(), transient=True) as bar:
            task = bar.add_task(label, total=None, stage="")

            def report(stage: str, rows: int) -> None:
                bar.update(task, completed=rows, stage=stage)

            yield report
        return
    last = [0.0]

    def report_plain(stage: str, rows: int) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            log.info("%s: %s, %d rows", label, stage, rows)

    yield report_plain
