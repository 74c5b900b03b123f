"""``dos2hl demo``: the whole chain on a generated practice against the sandbox, from the command line
(its own file: it is one of the longest tests, and the test workers share files, not tests)."""

from __future__ import annotations

import logging
from pathlib import Path

from typer.testing import CliRunner

from dos2hl.cli import app


def test_dos2hl_demo_runs_the_whole_chain(tmp_path: Path, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="dos2hl.progress")
    monkeypatch.setenv("DOS2HL_PROGRESS_EVERY_S", "1")  # (the demo's own default: 30 s)
    for k in ("DOS2HL_STORAGE", "DOS2HL_PHI_KEY_FILE", "DOS2HL_GOVERNOR_BURST", "DOS2HL_GOVERNOR_WINDOW_S",
              "DOS2HL_GOVERNOR_MARGIN_S"):
        monkeypatch.setenv(k, "")  # the demo sets them (restored after the test)
        monkeypatch.delenv(k)
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--patients", "20"])
    assert res.exit_code == 0, res.output
    assert "WARNING: demo mode confirms the field map" in res.output
    assert "2 matched by email" in res.output and " completed: " in res.output
    assert "0 mismatched values" in res.output
    report = Path(res.output.strip().splitlines()[-1].split("report: ", 1)[1])
    assert report.exists() and "Status: completed" in report.read_text()
    # issue 17: without a terminal, a line per location while each write phase runs and at its end
    lines = [r.getMessage() for r in caplog.records if r.name == "dos2hl.progress"]
    for phase in ("sample", "full"):
        assert [x for x in lines
                if x.startswith("progress ") and f" {phase} L001 (" in x and " written, " in x]
