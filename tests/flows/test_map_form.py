"""The map gate's Prefect form: the map's summary as its description, a table artifact of the proposals,
and a reviewer name the form itself requires (blank refused)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pydantic
import pytest
from prefect.input.run_input import run_input_subclass_from_type

import flows.migrate as fm
from dos2hl.mapping.model import require_confirmed
from dos2hl.params import MigrateParams
from dos2hl.pipeline import MapConfirmation
from tests.mapping.review_fixture import CANARIES, write_export


def test_the_form_describes_the_map_and_refuses_a_blank_name(tmp_path: Path) -> None:
    _, path = write_export(tmp_path)
    form = fm.map_form(str(path))
    text = form._description
    assert isinstance(text, str)
    assert "below confidence 0.80" in text and "`Patients.MedAlert` encrypt" in text
    assert "Fields to create in HighLevel: 9" in text and "dos2hl map review" in text
    assert not any(c in text for c in CANARIES)
    assert form.model_json_schema()["properties"]["by"]["minLength"] == 1
    for blank in ("", "   "):
        with pytest.raises(pydantic.ValidationError):
            form(confirm=True, by=blank)
    assert form(confirm=True, by=" Dr. Rivera ").by == "Dr. Rivera"
    # the same input keys as pausing for MapConfirmation itself: an API client answering it still works
    assert form.keyset_from_type() == run_input_subclass_from_type(MapConfirmation).keyset_from_type()


def test_the_gate_publishes_the_proposals_and_pauses_with_the_form(tmp_path: Path, monkeypatch) -> None:
    _, path = write_export(tmp_path)
    seen: dict[str, Any] = {}
    monkeypatch.setattr(fm, "get_run_logger", lambda: logging.getLogger("test"))
    monkeypatch.setattr(fm, "_in_deployment", lambda: True)
    monkeypatch.setattr(fm, "create_table_artifact", lambda **kw: seen.update(table=kw))

    def pause(wait_for_input: Any, timeout: int) -> Any:
        seen["form"] = wait_for_input
        return wait_for_input(confirm=True, by="Dr. Rivera")

    monkeypatch.setattr(fm, "pause_flow_run", pause)
    params = MigrateParams(source=str(tmp_path), mapping=str(path), locations="locations.yaml")
    fm.FlowGates(params).map_confirmed(str(path))
    assert seen["table"]["key"] == "map-proposals"
    assert {r["source"] for r in seen["table"]["table"]} >= {"Patients.PostCode", "Patients.MedAlert"}
    assert "Low-confidence entries" in seen["form"]._description
    m = require_confirmed(path)
    assert m.confirmed is not None and m.confirmed.by == "Dr. Rivera"
