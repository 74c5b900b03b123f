"""Issue 18 where the proposer meets the reader: each vendor-shaped export of a generated practice goes
propose -> confirm -> stage and stages every record (balanced, nothing quarantined), its one office named
by the proposed map (none of these exports carries a location column on its rows)."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from dos2hl.api import stage_export
from dos2hl.generate.vendors import STYLES, write_style
from dos2hl.mapping.model import save_mapping
from dos2hl.mapping.propose import DEFAULT_LOCATION, propose


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dos2hl.generate import GenerateParams, generate

    out = tmp_path_factory.mktemp("practice")
    generate(out, GenerateParams(seed=3, patients=40, locations=2, images="none"))  # typical mess
    return out / "export"


def _rows(export: Path, name: str) -> int:
    with (export / name).open(encoding="utf-8", newline="") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


# one style whose patients are one file, one that splits them over two, and the proposer's holdout
@pytest.mark.parametrize("style", ["pascal_crm", "snake_split", "camel_holdout"])
def test_a_vendor_style_stages_every_record_through_its_proposed_map(export: Path, tmp_path: Path,
                                                                    style: str) -> None:
    src = tmp_path / style
    write_style(export, src, STYLES[style])
    m = propose(src)
    assert m.export.location == DEFAULT_LOCATION
    profile = save_mapping(m.confirm("t"), tmp_path / "m.yaml")
    man = stage_export(src, tmp_path / "staged", profile=str(profile)).manifest
    files = man["files"]
    assert isinstance(files, dict)
    assert man["balanced"] is True, {k: v["error"] for k, v in files.items()}
    assert man["totals"]["quarantined"] == 0  # type: ignore[index]
    assert not any(v["derived_quarantined"] for v in files.values())
    tables = man["tables"]
    assert isinstance(tables, dict)
    assert tables["patient"]["rows"] == _rows(export, "PATIENT.CSV")
    assert tables["appt"]["rows"] > 0 and tables["apptproc"]["rows"] > tables["appt"]["rows"]
    assert tables["patins"]["rows"] > 0 and tables["insco"]["rows"] > 0
    locs = ds.dataset(tmp_path / "staged" / "patient").to_table(columns=["loc_id"])["loc_id"]
    assert set(locs.to_pylist()) == {DEFAULT_LOCATION}
