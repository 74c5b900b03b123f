"""Long work logs plain progress lines when stderr is not a terminal."""

from __future__ import annotations

import logging

import pytest

from dos2hl.progress import progress_reporter


def test_plain_log_lines_without_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dos2hl")
    with progress_reporter("stage", every_s=0.0, force_plain=True) as report:
        report("patient", 1000)
        report("ledger", 5000)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["stage: patient, 1000 rows", "stage: ledger, 5000 rows"]
