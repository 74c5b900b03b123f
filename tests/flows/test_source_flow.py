"""The prepare-source flow runs audit then stage through Prefect and reports the identity."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_staging import LOCATION, PATIENT


def test_prepare_source_flow(prefect_harness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from flows.source import SourceParams, prepare_source

    export = tmp_path / "export"
    export.mkdir()
    (export / "LOCATION.CSV").write_bytes(LOCATION)
    (export / "PATIENT.CSV").write_bytes(PATIENT)
    result = prepare_source(SourceParams(source=str(export), run_dir=str(tmp_path / "run"),
                                         audit_dir=str(tmp_path / "audit"), shards=2))
    assert result["balanced"] is True
    assert result["staged"] == "43 records = 42 clean + 0 repaired + 1 quarantined"
    assert (tmp_path / "audit" / "audit.md").exists()
    manifest = json.loads((tmp_path / "run" / "staged" / "manifest.json").read_text())
    assert manifest["totals"]["records"] == 43


def test_tasks_are_thin_wrappers(tmp_path: Path) -> None:
    from tasks.source import stage_to_parquet

    export = tmp_path / "export"
    export.mkdir()
    (export / "LOCATION.CSV").write_bytes(LOCATION)
    (export / "PATIENT.CSV").write_bytes(PATIENT)
    manifest = stage_to_parquet.fn(str(export), str(tmp_path / "staged"), "reference", 2, None)
    assert manifest["balanced"] and manifest["totals"]["quarantined"] == 1


def test_demo_flow_generates_then_prepares(prefect_harness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dos2hl.generate import GenerateParams
    from flows.demo import DemoParams, demo_practice

    result = demo_practice(
        DemoParams(
            out=str(tmp_path / "demo"),
            practice=GenerateParams(patients=150, seed=5, mess="typical", images="none"),
        )
    )
    assert result["balanced"] is True
    manifest = json.loads((tmp_path / "demo" / "run" / "staged" / "manifest.json").read_text())
    assert manifest["export_date"] == "2024-06-28"
    assert manifest["totals"]["records"] > 5000
