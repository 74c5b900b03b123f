"""Live progress of a migration in flight (issue 17), against a slowed sandbox over HTTP: without a
terminal, plain lines per location every N seconds (N set small here) while it writes; ``dos2hl status
--json`` mid-run answers ``running`` with partial counts from the run's progress.json; no patient value
in either (the export's last names and emails are the canaries)."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dos2hl.cli import app
from tests.migrate.conftest import EXPORT_DATE, http_world
from tests.migrate.test_status_cli import _patient_values


@pytest.mark.slow  # make test's budget: the lines are in test_demo_cli, status in flight in test_status_cli
def test_progress_lines_and_status_during_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    from dos2hl.params import MigrateParams
    from dos2hl.pipeline import ParamGates, open_env, run_migration
    from dos2hl.progress import terminal_sinks

    caplog.set_level(logging.INFO, logger="dos2hl.progress")
    monkeypatch.setenv("DOS2HL_PROGRESS_EVERY_S", "0.2")
    storage = str(tmp_path / "runs")
    with http_world(tmp_path, monkeypatch, faults=lambda w: "latency=20ms") as (w, _base):
        canaries = _patient_values(w.export)
        params = MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                               run_id="r-live", sample=0, workers=2, export_date=EXPORT_DATE)
        out: dict[str, Any] = {}

        def migrate() -> None:
            with open_env(params) as env:
                env.progress = terminal_sinks()  # no terminal under pytest: plain lines
                out["report"] = run_migration(params, env, ParamGates(approve=True)).to_dict()

        runner = threading.Thread(target=migrate, daemon=True)
        runner.start()
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 240  # generous: a loaded 2-core machine
        while runner.is_alive() and time.monotonic() < deadline:
            res = CliRunner().invoke(app, ["status", "r-live", "--storage", storage, "--json"])
            if res.exit_code == 0:
                st = json.loads(res.stdout)
                assert not [v for v in canaries if v in res.stdout]
                if st["counts_from"] == "progress" and st["state"] == "running":
                    written = sum(d["totals"]["written"] for d in st["locations"].values())
                    source = sum(d["totals"]["source"] for d in st["locations"].values())
                    if 0 < written < source:
                        seen.append(st)
                        break
            time.sleep(0.1)
        runner.join(timeout=240)
        assert not runner.is_alive()
        assert out["report"]["status"] == "completed"

    assert seen, "status never showed the run in flight with partial counts"
    st = seen[0]
    assert st["phase"] == "full" and set(st["locations"]) == {"L001", "L002"}
    assert any(d["state"] == "running" for d in st["locations"].values())
    assert st["eta"] is not None
    lines = [r.getMessage() for r in caplog.records if r.name == "dos2hl.progress"]
    assert [x for x in lines if x.startswith("progress r-live full L001 (") and " req/s; today " in x]
    assert [x for x in lines if x.startswith("progress r-live full L002 (")]
    # lines came while it ran (ticks), not only at its end: more than the end's one per location + summary
    assert len(lines) > 3
    assert not [x for x in lines for v in canaries if v in x]
    # once reported, status shows the report's counts again
    res = CliRunner().invoke(app, ["status", "r-live", "--storage", storage, "--json"])
    assert json.loads(res.stdout)["counts_from"] == "report"
