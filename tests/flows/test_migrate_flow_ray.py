"""The migration flow under Prefect, its shards on local Ray actors that share the governor actor,
against the sandbox over HTTP: the gate stops it after the sample, approve=true finishes it."""

from __future__ import annotations

import os

import pytest
import yaml

from tests.flows.test_migrate_flow import _counting
from tests.migrate.conftest import EXPORT_DATE, make_world


def test_migrate_flow_on_ray_with_the_sample_gate(prefect_harness, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import ray

    from dos2hl.errors import ConfigError
    from dos2hl.phi import create_key_file
    from dos2hl.sandbox import running
    from flows.migrate import MigrateParams, migrate_flow

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "k" / "phi.key")))
    monkeypatch.setenv("DOS2HL_GOVERNOR_BURST", "100000")  # the sandbox below allows as much
    monkeypatch.setenv("DOS2HL_GOVERNOR_WINDOW_S", "1")
    monkeypatch.setenv("DOS2HL_GOVERNOR_NAME", "gov-flow-test")
    from dos2hl.governor import local

    beside = []  # governors of this process: with Ray workers there must be none (one bucket: the actor)
    monkeypatch.setattr(local.LocalGovernor, "__init__", _counting(local.LocalGovernor.__init__, beside))
    w = make_world(tmp_path, monkeypatch, patients=20)
    beside.clear()  # the world's own set-up
    w.stop()  # the same state, now served over HTTP for the Ray workers
    if ray.is_initialized():
        ray.shutdown()
    try:
        with running(w.state, burst=(100000, 1.0), request_checks=25) as base:
            lf = yaml.safe_load(w.locations.read_text())
            lf["target"] = base
            w.locations.write_text(yaml.safe_dump(lf))
            params = MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                   sample=5, executor="ray", workers=2, export_date=EXPORT_DATE)
            unconfirmed = tmp_path / "unconfirmed.yaml"  # the map gate: outside a deployment, an error
            unconfirmed.write_text(w.mapping.read_text().split("confirmed:")[0])
            with pytest.raises(ConfigError, match="not confirmed"):
                migrate_flow(params.model_copy(update={"mapping": str(unconfirmed)}))
            first = migrate_flow(params)  # not approved, not a deployment: stops after the sample
            assert first["status"] == "incomplete" and "approve" in first["next"]
            assert first["field_diff"]["mismatches"] == 0
            done = migrate_flow(params.model_copy(update={"approve": True, "run_id": first["run_id"]}))
            assert done["status"] == "completed", done["reconciliation"]
            assert done["field_diff"]["mismatches"] == 0
            written = sum(d["objects"]["patient"]["written"] for d in done["locations"].values())
            assert written == sum(len(w.dump(loc)["contacts"]) for loc in w.loc_ids) > 0
            assert os.path.exists(done["paths"]["html"])
            assert beside == []  # prepare, sample, verify and full all took permits from the actor
            named = ray.util.list_named_actors(all_namespaces=True)
            assert {"name": "gov-flow-test", "namespace": "dos2hl"} in named  # one governor for all workers
    finally:
        if ray.is_initialized():
            from dos2hl.governor.actor import connect, kill

            kill(connect(name="gov-flow-test"))
            ray.shutdown()
