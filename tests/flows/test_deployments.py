"""prefect.yaml: every deployment's entrypoint is a flow whose typed parameters accept the deployment's
parameters; the nightly deltas run one at a time per location on a cron in the practice's zone."""

from __future__ import annotations

import importlib
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _deployments() -> list[dict]:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


def test_every_entrypoint_is_a_flow_that_accepts_its_parameters() -> None:
    from prefect import Flow

    names = set()
    for d in _deployments():
        path, func = d["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, func)
        assert isinstance(flow, Flow), d["name"]
        flow.validate_parameters(d.get("parameters") or {})  # raises on a parameter the model refuses
        assert d["work_pool"]["name"] == "dos2hl-process"
        names.add(d["name"])
    assert {"migrate", "rollback"} <= names and any(n.startswith("delta-") for n in names)


def test_nightly_deltas_are_one_at_a_time_per_location_at_two_in_the_practice_zone() -> None:
    deltas = [d for d in _deployments() if d["name"].startswith("delta-")]
    assert deltas
    for d in deltas:
        assert d["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
        (sched,) = d["schedules"]
        assert sched["cron"] == "0 2 * * *"
        ZoneInfo(sched["timezone"])  # a real IANA zone
        assert d["parameters"]["params"]["since_run"] == "latest"
