"""``dos2hl governor``: status from the run's state store, and start/status/stop of the shared actor."""

from __future__ import annotations

import json
import time

from typer.testing import CliRunner

from dos2hl.cli import app
from dos2hl.governor import Limits, LocalGovernor


def test_status_reads_the_usage_the_last_run_left_in_the_state_store(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_GOVERNOR_DAILY", "50")
    monkeypatch.delenv("DOS2HL_GOVERNOR_ADDRESS", raising=False)
    gov = LocalGovernor(Limits(burst=1000, window_s=1.0, daily=50),
                        state=tmp_path / "runs/state/governor.json",
                        clock=lambda: time.time() - 5)  # its fail-safe interval is long over
    gov.acquire("LOC1", 45)  # past the 90 % floor: waiting for the daily reset
    gov.close()
    res = CliRunner().invoke(app, ["governor", "status", "LOC1", "LOC2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["LOC1"]["state"] == "waiting_for_daily_reset" and out["LOC1"]["day_used"] == 45
    assert out["LOC1"]["eta"].endswith("T00:00:00+00:00")  # the next UTC midnight
    assert out["LOC2"] == {**out["LOC2"], "state": "running", "day_used": 0, "day_limit": 45}
    text = CliRunner().invoke(app, ["governor", "status", "LOC1"]).stdout
    assert "LOC1: waiting_for_daily_reset until" in text and "today 45/45" in text


def test_start_refuses_an_in_process_governor(monkeypatch) -> None:
    monkeypatch.delenv("DOS2HL_GOVERNOR_ADDRESS", raising=False)
    res = CliRunner().invoke(app, ["governor", "start"])
    assert res.exit_code == 2 and "must name a Ray cluster" in res.output


def test_start_status_stop_of_the_shared_actor(tmp_path, monkeypatch) -> None:
    import ray
    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_GOVERNOR_NAME", "gov-cli-test")
    monkeypatch.setenv("DOS2HL_GOVERNOR_BURST", "7")
    runner = CliRunner()
    try:
        res = runner.invoke(app, ["governor", "start", "--address", "local"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["limits"]["burst"] == 7
        res = runner.invoke(app, ["governor", "status", "LOC1", "--address", "local", "--json"])
        assert json.loads(res.stdout)["LOC1"]["cap"] == 7
        res = runner.invoke(app, ["governor", "stop", "--address", "local"])
        assert res.exit_code == 0 and "stopped gov-cli-test" in res.stdout
        assert (tmp_path / "runs/state/governor.json").exists()  # usage saved before it ended
    finally:
        ray.shutdown()
