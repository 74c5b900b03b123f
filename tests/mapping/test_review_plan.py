"""The review page's request plan: before and after the edits, by the quota planner (``dos2hl plan``'s
code, staging the export), summed over locations; the loaded map is planned once."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dos2hl.cli.review import request_plan
from dos2hl.mapping.model import Mapping
from dos2hl.mapping.propose import reference_mapping
from dos2hl.mapping.review import apply_edits, read_export
from dos2hl.mapping.review_server import ReviewServer
from tests.mapping.review_fixture import write_export

TWO_ZONES = Path(__file__).resolve().parents[1] / "fixtures" / "two_zones"


def test_the_plan_before_is_computed_once_and_after_only_for_changed_edits(tmp_path: Path) -> None:
    export, path = write_export(tmp_path)
    calls: list[str] = []

    def planner(m: Mapping) -> dict[str, Any]:
        calls.append(m.content_hash())
        skipped = sum(e.target == "skip" for e in m.fields)
        return {"locations": 1, "objects": {"contact": 4 - skipped},
                "requests": {"api_path": 10 - skipped, "with_bulk_path": 9}}

    shapes, _ = read_export(export)
    server = ReviewServer(path, shapes, {}, planner=planner)
    try:
        assert server.state()["can_plan"]
        same = server.plan({"edits": []})
        assert same["before"] == same["after"] and len(calls) == 1
        out = server.plan({"edits": [{"source": "Patients.PostCode", "option": "skip"}]})
        assert out["before"]["requests"]["api_path"] == 9 and out["after"]["requests"]["api_path"] == 8
        assert len(calls) == 2  # the loaded map's plan was kept
    finally:
        server.httpd.server_close()


def test_the_real_plan_drops_the_notes_of_a_skipped_comm_log(tmp_path: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(TWO_ZONES, export, ignore=shutil.ignore_patterns("*.md"))
    m = reference_mapping()
    plan = request_plan(str(export))
    before = plan(m)
    skip_log = [{"source": e.source, "option": "skip"} for e in m.fields if e.file == "COMMLOG"]
    after = plan(apply_edits(m, skip_log))
    assert before["locations"] == after["locations"] == 2
    assert before["objects"]["note:activity"] == 2 and "note:activity" not in after["objects"]
    assert after["requests"]["api_path"] == before["requests"]["api_path"] - 6  # 2 notes + their reads
    assert after["objects"]["contact"] == before["objects"]["contact"] == 3
