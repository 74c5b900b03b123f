"""Tier volumes (GENERATOR.md volume table) - a full group-tier run, so marked slow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dos2hl.generate import GenerateParams, generate


@pytest.mark.slow
def test_group_tier_volumes(tmp_path: Path) -> None:
    s = generate(tmp_path, GenerateParams(tier="group", images="none"))
    f = s["files"]
    assert 18_000 <= f["PATIENT.CSV"] <= 22_000
    assert 140_000 <= f["APPT.CSV"] <= 185_000  # table: 160k
    assert 700_000 <= f["LEDGER.CSV"] <= 1_000_000  # table: 900k (15 years there, 12 here)
    assert 170_000 <= f["DOCUMENT.CSV"] <= 230_000  # table: 200k
    status = json.loads((tmp_path / "truth" / "recon.json").read_text())["status_counts"]["patient"]
    assert 4_500 <= status["A"] <= 7_500  # table: 6k active
    assert s["seconds"] < 240
