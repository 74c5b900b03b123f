"""The workflow reference: recall types and counts from the export, exact pipeline names, no PHI, missing
tables reported instead of failing, deterministic output."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dos2hl.api import stage_export
from dos2hl.mapping.objectmap import PIPELINES
from dos2hl.storage import Store, open_store
from dos2hl.workflows import workflow_facts, workflow_reference, write_workflow_reference

LOCS = ["L001", "L002"]
EXPORT_DATE = dt.date(2024, 6, 28)


@dataclass
class Practice:
    export: Path
    staged: Path
    no_commlog: Path


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Practice:
    from dos2hl.generate import GenerateParams, generate

    root = tmp_path_factory.mktemp("workflows")
    generate(
        root / "practice", GenerateParams(seed=3, patients=40, locations=2, images="none", history_years=2)
    )
    export = root / "practice" / "export"
    stage_export(export, root / "staged", export_date=EXPORT_DATE)
    # the same export without COMMLOG.CSV (an optional file)
    bare = root / "bare"
    shutil.copytree(export, bare, ignore=shutil.ignore_patterns("COMMLOG.CSV"))
    stage_export(bare, root / "staged_no_commlog", export_date=EXPORT_DATE)
    return Practice(export, root / "staged", root / "staged_no_commlog")


@pytest.fixture(scope="module")
def store(practice: Practice) -> Store:
    return open_store(practice.staged)


@pytest.fixture(scope="module")
def doc(store: Store) -> str:
    return workflow_reference(store, LOCS)


def _section(doc: str, loc: str) -> str:
    start = doc.index(f"## Location {loc}")
    nxt = doc.find("\n## Location ", start + 1)
    return doc[start:] if nxt < 0 else doc[start:nxt]


def _recall_table(section: str) -> dict[str, list[str]]:
    """Recall type -> the cells of its row in the section's recall table."""
    part = section[section.index("### 3.") : section.index("### 4.")]
    rows = [
        line for line in part.splitlines() if line.startswith("| ") and not line.startswith("| Recall type")
    ]
    cells = [[c.strip() for c in r.strip("|").split(" | ")] for r in rows]
    return {c[0]: c for c in cells}


def _raw_rows(staged: Path, table: str, loc: str, columns: list[str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for f in sorted((staged / table / f"location={loc}").glob("*.parquet")):
        rows += pq.read_table(f, columns=columns).to_pylist()
    return rows


def test_recall_types_are_the_exports_recalltyp_codes(practice: Practice, store: Store, doc: str) -> None:
    with (practice.export / "RECALLTYP.CSV").open(newline="", encoding="utf-8") as fh:
        codes = {r["RECALL_TYPE"].strip() for r in csv.DictReader(fh)}
    assert codes
    facts = workflow_facts(store, LOCS)
    for loc in LOCS:
        assert set(_recall_table(_section(doc, loc))) == codes
        assert set(facts["locations"][loc]["recall"]["types"]) == codes


def test_patient_counts_per_recall_type_match_the_staged_rows(
    practice: Practice, store: Store, doc: str
) -> None:
    facts = workflow_facts(store, LOCS)
    for loc in LOCS:
        patients: dict[str, set[object]] = defaultdict(set)
        for r in _raw_rows(practice.staged, "recall", loc, ["pat_id", "recall_type"]):
            if r["pat_id"] is not None:
                patients[str(r["recall_type"])].add(r["pat_id"])
        assert patients, "the generated practice has recalls"
        table = _recall_table(_section(doc, loc))
        for code, row in table.items():
            assert int(row[4]) == len(patients.get(code, ())), (loc, code)
            assert facts["locations"][loc]["recall"]["types"][code]["patients"] == len(patients.get(code, ()))


def test_pipelines_and_stages_are_named_exactly_as_the_object_map(store: Store, doc: str) -> None:
    for loc in LOCS:
        section = _section(doc, loc)
        for p in PIPELINES.values():
            assert f"- Pipeline **{p.name}**: " + " → ".join(p.stages) + "\n" in section
    assert workflow_facts(store, LOCS)["pipelines"] == {p.name: list(p.stages) for p in PIPELINES.values()}
    assert "`opportunity.recall_due_date`" in doc and "`opportunity.recall_type`" in doc


def test_no_patient_identifiers_in_the_document_or_the_facts(
    practice: Practice, store: Store, tmp_path: Path
) -> None:
    out = open_store(tmp_path / "out")
    key = write_workflow_reference(store, out, LOCS, key="reference/workflows.md")
    assert key == "reference/workflows.md"
    text = (tmp_path / "out" / key).read_text() + (
        tmp_path / "out" / "reference" / "workflows.json"
    ).read_text()
    canaries: set[str] = set()
    for loc in LOCS:
        for r in _raw_rows(
            practice.staged,
            "patient",
            loc,
            ["fname", "lname", "pref_name", "email", "cphone", "hphone", "wphone"],
        ):
            for col in ("fname", "lname", "pref_name", "email"):
                if r[col] and len(str(r[col]).strip()) >= 3:
                    canaries.add(str(r[col]).strip())
            for col in ("cphone", "hphone", "wphone"):
                if r[col]:
                    canaries.add(str(r[col]))
                    canaries.add(re.sub(r"\D", "", str(r[col])))
    assert len(canaries) > 50
    lower = text.lower()
    leaked = sorted(c for c in canaries if re.search(rf"(?<![\w@.]){re.escape(c.lower())}(?![\w@])", lower))
    assert leaked == []


def test_missing_commlog_is_reported_not_fatal(practice: Practice) -> None:
    store = open_store(practice.no_commlog)
    doc = workflow_reference(store, LOCS)
    facts = workflow_facts(store, LOCS)
    for loc in LOCS:
        section = _section(doc, loc)
        reminders = section[section.index("### 4.") : section.index("### 5.")]
        assert "COMMLOG (not in the export)" in reminders
        assert "COMMLOG is missing" in reminders
        assert "COMMLOG is missing" in section[section.index("### 3.") : section.index("### 4.")]
        assert "commlog" in facts["locations"][loc]["missing_tables"]
        assert "commlog" not in facts["locations"][loc]["appointments"]
        assert "### 7. Checklist" in section  # the rest of the document is still there
    # the full export has it
    full = workflow_reference(open_store(practice.staged), LOCS)
    assert "COMMLOG is missing" not in full and "Typical days before" in full


def test_output_is_deterministic(store: Store, doc: str, tmp_path: Path) -> None:
    assert workflow_reference(store, LOCS) == doc
    assert workflow_reference(store, list(reversed(LOCS))) == doc
    a, b = open_store(tmp_path / "a"), open_store(tmp_path / "b")
    write_workflow_reference(store, a, LOCS)
    write_workflow_reference(store, b, LOCS)
    for name in ("workflows.md", "workflows.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert json.loads((tmp_path / "a" / "workflows.json").read_text()) == workflow_facts(store, LOCS)
